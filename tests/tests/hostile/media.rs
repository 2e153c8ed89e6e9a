//! A publisher of malformed media, played on every egress.

use super::*;

/// The first tags of the committed fixture: metadata and both sequence headers, then the first
/// keyframe, so that every egress's muxer starts on real configuration before the garbage.
pub(crate) fn fixture_start() -> Vec<flv::FlvTag> {
    let data = std::fs::read(gateway_tests::fixture("av.flv")).expect("the fixture is readable");
    let mut reader = flv::FlvReader::new();
    reader.push(&data);
    let mut tags = Vec::new();
    while let Ok(Some(t)) = reader.next_tag() {
        let key = t.tag_type == 9 && t.body.first() == Some(&0x17) && t.body.get(1) == Some(&1);
        tags.push(t);
        if key {
            break;
        }
    }
    tags
}

/// Audio, video and script bodies a broken encoder could send: lying lengths, empty bodies,
/// impossible configurations, unknown codecs.
pub(crate) fn malformed_bodies() -> Vec<(u8, Vec<u8>)> {
    let mut meta = amf0_string("onMetaData");
    meta.extend([0x08, 0xff, 0xff, 0xff, 0xff]);
    meta.extend(noise(32, 10));
    vec![
        (18, meta),
        (18, vec![0x02, 0xff, 0xff]),
        (9, vec![]),
        (9, vec![0x17]),
        // An AVC configuration record whose SPS claims 65,535 bytes.
        (
            9,
            vec![
                0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0xff, 0xff, 0x67,
            ],
        ),
        // NAL units whose length prefix lies, is zero, or overruns the tag.
        (
            9,
            vec![0x17, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x65, 1, 2, 3],
        ),
        (9, vec![0x17, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        (9, vec![0x27, 1, 0xff, 0xff, 0xff, 0, 0, 0, 9, 0x41, 1, 2]),
        (9, [vec![0x17, 1, 0, 0, 0], noise(3000, 11)].concat()),
        // Enhanced RTMP: an HEVC sequence start and frames of garbage, an unknown FourCC.
        (
            9,
            [vec![0x90, b'h', b'v', b'c', b'1'], noise(40, 12)].concat(),
        ),
        (
            9,
            [vec![0x91, b'h', b'v', b'c', b'1'], noise(400, 13)].concat(),
        ),
        (
            9,
            [vec![0x91, b'x', b'x', b'x', b'x'], noise(40, 14)].concat(),
        ),
        // Codec ids nobody uses.
        (9, vec![0x1f, 1, 2, 3]),
        (8, vec![]),
        (8, vec![0xAF]),
        // AAC configurations: garbage, sampling index 15 without the escape, zero channels.
        (8, vec![0xAF, 0, 0xff, 0xff]),
        (8, vec![0xAF, 0, 0x17, 0x80]),
        (8, vec![0xAF, 0, 0x12, 0x00]),
        (8, [vec![0xAF, 1], noise(2000, 15)].concat()),
        (8, vec![0xAF, 1]),
        (8, [vec![0x2F, 0xff, 0xfb], noise(500, 16)].concat()),
        (8, [vec![0xBF], noise(100, 17)].concat()),
    ]
}

/// A publisher that sends real sequence headers and a keyframe, then every malformed body, in a
/// loop, while something plays the stream on every egress (so the HLS, RTSP and ASF muxers and
/// the FLV writers all see the garbage). Only that stream may suffer.
pub(crate) fn rtmp_bad_media(env: &Env) -> Attack {
    let g = env.gateway();
    let key = "live/hostile";
    let mark = env.logs.mark();
    let mut tags = fixture_start();
    let mut ts = tags.iter().map(|t| t.timestamp).max().unwrap_or(0);
    for (i, (tag_type, body)) in malformed_bodies().into_iter().enumerate() {
        ts += 40;
        // One step back in time, as a restarted encoder does.
        let timestamp = if i == 7 { ts - 200 } else { ts };
        tags.push(flv::FlvTag {
            tag_type,
            filtered: false,
            timestamp,
            stream_id: 0,
            body: body.into(),
        });
    }
    let publisher = gateway_tests::RtmpPublisher::publish(&tags, &g.rtmp_url(key));
    let mut attack = Attack::new(vec![], Some(key));
    if !g.wait_live(key, Duration::from_secs(10)) {
        return attack.check(false, || {
            format!(
                "the malformed publisher never went live: {:?}",
                publisher.ended()
            )
        });
    }
    // Something plays the stream on each egress for a while; what they get does not matter.
    let hls = g.http_url(&format!("/{key}/index.m3u8"));
    let _ = http_get(&hls, Duration::from_secs(5));
    let players: Vec<(SocketAddr, Vec<u8>)> = vec![
        (
            g.http_addr(),
            format!("GET /{key}.flv HTTP/1.0\r\nHost: x\r\n\r\n").into_bytes(),
        ),
        (
            g.http_addr(),
            format!(
                "GET /{key} HTTP/1.0\r\nHost: x\r\nUser-Agent: NSPlayer/7.10.0.3059\r\n\
                 Pragma: xPlayStrm=1\r\n\r\n"
            )
            .into_bytes(),
        ),
        (
            rtsp_addr(g),
            format!(
                "DESCRIBE rtsp://{}/{key} RTSP/1.0\r\nCSeq: 1\r\n\r\n",
                rtsp_addr(g)
            )
            .into_bytes(),
        ),
    ];
    let mut conns: Vec<TcpStream> = players
        .iter()
        .map(|(addr, req)| {
            let mut s = connect(*addr);
            let _ = s.write_all(req);
            s
        })
        .collect();
    let rtsp_play = rtsp_play_tcp(g, key);
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let _ = http_get(&hls, Duration::from_secs(2));
        for s in &mut conns {
            let _ = read_reply(s, Duration::from_millis(50));
        }
    }
    drop(conns);
    drop(rtsp_play);
    drop(publisher);
    let gone = gateway_tests::wait_until(Duration::from_secs(10), || g.bus().stream(key).is_none());
    attack = attack.check(gone, || {
        format!("{key} stayed on the bus after its publisher left")
    });
    for line in env.logs.lines_with(mark, &[key]) {
        println!("  {line}");
    }
    attack
}

/// DESCRIBE, SETUP of track 0 over TCP and PLAY of `key`; the connection is returned open (or
/// `None` if the gateway refused, which is its right for a stream of garbage).
pub(crate) fn rtsp_play_tcp(g: &TestGateway, key: &str) -> Option<TcpStream> {
    let url = format!("rtsp://{}/{key}", rtsp_addr(g));
    let mut s = connect(rtsp_addr(g));
    let mut session = String::new();
    for (i, req) in [
        format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
        format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        ),
        format!("PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: SESSION\r\n\r\n"),
    ]
    .into_iter()
    .enumerate()
    {
        let _ = s.write_all(req.replace("SESSION", &session).as_bytes());
        let reply = read_response(&mut s, REACT);
        if reply.status() != Some(200) {
            return None;
        }
        if i == 1 {
            let text = reply.text();
            let line = text.lines().find(|l| l.starts_with("Session:"))?;
            session = line["Session:".len()..].trim().split(';').next()?.to_owned();
        }
    }
    Some(s)
}
