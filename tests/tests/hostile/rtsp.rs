//! RTSP attacks: giant and missing headers, requests out of order, interleaved frames,
//! hostile paths, UDP garbage, slowloris, repeated SETUP.

use super::*;

pub(crate) fn rtsp_exchange(env: &Env, data: &[u8], wait: Duration) -> (SocketAddr, Reply) {
    let mut s = connect(rtsp_addr(env.gateway()));
    let me = s.local_addr().expect("a connected socket has an address");
    (me, send_and_read(&mut s, data, wait))
}

pub(crate) fn rtsp_url(env: &Env) -> String {
    format!("rtsp://{}/{}", rtsp_addr(env.gateway()), Live::KEY)
}

/// Expects an error response with `status` and the connection closed.
pub(crate) fn rtsp_refused(env: &Env, data: &[u8], status: u16, reason: &'static str) -> Attack {
    let (me, reply) = rtsp_exchange(env, data, REACT);
    let got = reply.status();
    expect_closed(Attack::new(vec![me], Some(reason)), &reply).check(got == Some(status), || {
        format!("answered {got:?}, expected {status}: {:?}", reply.text())
    })
}

pub(crate) fn rtsp_giant_header(env: &Env) -> Attack {
    let req = format!(
        "OPTIONS {} RTSP/1.0\r\nCSeq: 1\r\nX-Long: {}\r\n\r\n",
        rtsp_url(env),
        "a".repeat(100 * 1024)
    );
    rtsp_refused(env, req.as_bytes(), 400, "larger than")
}

pub(crate) fn rtsp_many_headers(env: &Env) -> Attack {
    let mut req = format!("OPTIONS {} RTSP/1.0\r\nCSeq: 1\r\n", rtsp_url(env));
    for i in 0..1000 {
        req.push_str(&format!("X-H{i}: v\r\n"));
    }
    req.push_str("\r\n");
    rtsp_refused(env, req.as_bytes(), 400, "larger than")
}

/// Sends one request and expects an answer with `status` (the connection may stay open: a bad
/// request is not lost framing). The log must name the peer when it disconnects.
pub(crate) fn rtsp_answered(env: &Env, req: &str, status: u16) -> Attack {
    let mut s = connect(rtsp_addr(env.gateway()));
    let me = s.local_addr().expect("a connected socket has an address");
    let _ = s.write_all(req.as_bytes());
    let reply = read_response(&mut s, REACT);
    drop(s);
    let got = reply.status();
    Attack::new(vec![me], Some("RTSP disconnect")).check(got == Some(status), || {
        format!("answered {got:?}, expected {status}: {:?}", reply.text())
    })
}

pub(crate) fn rtsp_missing_cseq(env: &Env) -> Attack {
    let req = format!(
        "OPTIONS {} RTSP/1.0\r\nUser-Agent: x\r\n\r\n",
        rtsp_url(env)
    );
    rtsp_answered(env, &req, 400)
}

pub(crate) fn rtsp_play_without_setup(env: &Env) -> Attack {
    let req = format!(
        "PLAY {} RTSP/1.0\r\nCSeq: 1\r\nSession: 12345678\r\nRange: npt=0-\r\n\r\n",
        rtsp_url(env)
    );
    rtsp_answered(env, &req, 454)
}

pub(crate) fn rtsp_garbage(env: &Env) -> Attack {
    let mut data = noise(8 * 1024, 7);
    data[0] = 0x01;
    rtsp_refused(env, &data, 400, "malformed request line")
}

/// DESCRIBE and SETUP of paths that try to leave their app, cut a string short or are too long:
/// each is answered 4xx on the same connection, never with a stream.
pub(crate) fn rtsp_hostile_paths(env: &Env) -> Attack {
    let host = rtsp_addr(env.gateway());
    let mut s = connect(host);
    let me = s.local_addr().expect("a connected socket has an address");
    let mut attack = Attack::new(vec![me], Some("RTSP disconnect"));
    let mut names = hostile_names();
    names.retain(|n| n.len() < 1000);
    names.push("a".repeat(4000));
    let mut cseq = 0;
    for n in &names {
        for path in [
            format!("/live/{n}"),
            format!("/{n}/test"),
            format!("/live/test/{n}"),
            format!("/live/test/../../{n}"),
        ] {
            for method in ["DESCRIBE", "SETUP"] {
                cseq += 1;
                let transport = "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n";
                let req = format!(
                    "{method} rtsp://{host}{path} RTSP/1.0\r\nCSeq: {cseq}\r\n{transport}\r\n"
                );
                let _ = s.write_all(req.as_bytes());
                let reply = read_response(&mut s, REACT);
                let status = reply.status();
                let shown = &path[..path.len().min(60)];
                attack = attack.check(matches!(status, Some(400..=499)), || {
                    format!("{method} {shown} answered {status:?}, expected 4xx")
                });
                if reply.closed {
                    return attack
                        .check(false, || format!("{method} {shown} closed the connection"));
                }
            }
        }
    }
    attack
}

/// Two UDP sockets on consecutive ports, the first even (RTP, then RTCP).
pub(crate) fn udp_pair() -> (std::net::UdpSocket, std::net::UdpSocket) {
    loop {
        let rtp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        let port = rtp.local_addr().expect("bound").port();
        if !port.is_multiple_of(2) || port == u16::MAX {
            continue;
        }
        if let Ok(rtcp) = std::net::UdpSocket::bind(("127.0.0.1", port + 1)) {
            return (rtp, rtcp);
        }
    }
}

/// Datagrams received on `sock` within `wait`.
pub(crate) fn udp_count(sock: &std::net::UdpSocket, wait: Duration) -> usize {
    let _ = sock.set_read_timeout(Some(Duration::from_millis(50)));
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 2048];
    let mut n = 0;
    while Instant::now() < deadline {
        if sock.recv(&mut buf).is_ok() {
            n += 1;
        }
    }
    n
}

/// A UDP session plays while garbage, lying RTCP headers, empty and maximal datagrams hit its
/// server RTP and RTCP ports, from the session's own client ports and from a stranger: the
/// session keeps playing and its control connection keeps answering.
pub(crate) fn rtsp_udp_garbage(env: &Env) -> Attack {
    let host = rtsp_addr(env.gateway());
    let url = format!("rtsp://{host}/{}", Live::KEY);
    let (rtp, rtcp) = udp_pair();
    let port = rtp.local_addr().expect("bound").port();
    let mut s = connect(host);
    let me = s.local_addr().expect("a connected socket has an address");
    let mut attack = Attack::new(vec![me], Some("RTSP disconnect"));
    let ask = |s: &mut TcpStream, req: String| {
        let _ = s.write_all(req.as_bytes());
        read_response(s, REACT)
    };
    let d = ask(
        &mut s,
        format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
    );
    let setup = ask(
        &mut s,
        format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\n\
             Transport: RTP/AVP;unicast;client_port={port}-{}\r\n\r\n",
            port + 1
        ),
    );
    let text = setup.text();
    let header = |name: &str| {
        text.lines()
            .find(|l| l.to_ascii_lowercase().starts_with(name))
            .map(|l| l[name.len()..].trim().to_owned())
    };
    let session = header("session:").and_then(|v| v.split(';').next().map(str::to_owned));
    let server_port = header("transport:").and_then(|t| {
        let ports = t.split(';').find_map(|p| p.strip_prefix("server_port="))?;
        ports.split('-').next()?.parse::<u16>().ok()
    });
    let (Some(session), Some(server_port), Some(200)) = (session, server_port, d.status()) else {
        return attack.check(false, || {
            format!("the UDP session was not set up: {text:?}")
        });
    };
    let play = ask(
        &mut s,
        format!("PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n"),
    );
    attack = attack.check(play.status() == Some(200), || {
        format!("PLAY answered {:?}", play.status())
    });
    let before = udp_count(&rtp, Duration::from_millis(1000));
    let stranger = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
    let mut datagrams: Vec<Vec<u8>> = (0..300).map(|i| noise(i * 5 % 1500, i as u64)).collect();
    datagrams.extend([
        vec![],
        vec![0x81, 201, 0xff, 0xff],
        vec![0x81, 200, 0, 6, 0, 0, 0, 1],
        vec![0x80, 203, 0, 1, 0, 0, 0, 0],
        noise(65_000, 99),
    ]);
    for target in [server_port, server_port + 1] {
        for d in &datagrams {
            let _ = rtcp.send_to(d, ("127.0.0.1", target));
            let _ = stranger.send_to(d, ("127.0.0.1", target));
        }
    }
    let after = udp_count(&rtp, Duration::from_millis(1500));
    let alive = ask(
        &mut s,
        format!("GET_PARAMETER {url} RTSP/1.0\r\nCSeq: 4\r\nSession: {session}\r\n\r\n"),
    );
    println!("udp session: {before} RTP packets before the garbage, {after} after");
    attack
        .check(before > 0 && after > 0, || {
            format!("RTP packets before the garbage: {before}, after: {after}")
        })
        .check(alive.status() == Some(200), || {
            format!(
                "GET_PARAMETER after the garbage answered {:?}",
                alive.status()
            )
        })
}

/// Interleaved frames with honest lengths on channels no session uses, then a request: the
/// frames are skipped and the request is answered on the same connection.
pub(crate) fn rtsp_interleaved_garbage(env: &Env) -> Attack {
    let mut data = Vec::new();
    for ch in [0u8, 1, 7, 200, 255] {
        let body = noise(1000, ch.into());
        data.extend([b'$', ch]);
        data.extend((body.len() as u16).to_be_bytes());
        data.extend(body);
    }
    data.extend(format!("OPTIONS {} RTSP/1.0\r\nCSeq: 9\r\n\r\n", rtsp_url(env)).as_bytes());
    let mut s = connect(rtsp_addr(env.gateway()));
    let me = s.local_addr().expect("a connected socket has an address");
    let _ = s.write_all(&data);
    let reply = read_response(&mut s, REACT);
    drop(s);
    let got = reply.status();
    Attack::new(vec![me], Some("RTSP disconnect")).check(got == Some(200), || {
        format!(
            "OPTIONS after interleaved frames answered {got:?}: {:?}",
            reply.text()
        )
    })
}

/// A frame announcing 65,535 bytes of which 100 arrive, then the client leaves: nothing is
/// answered (the rest would be frame data) and the disconnect is logged.
pub(crate) fn rtsp_interleaved_lying(env: &Env) -> Attack {
    let mut data = vec![b'$', 0, 0xff, 0xff];
    data.extend(noise(100, 8));
    data.extend(format!("OPTIONS {} RTSP/1.0\r\nCSeq: 2\r\n\r\n", rtsp_url(env)).as_bytes());
    let mut s = connect(rtsp_addr(env.gateway()));
    let me = s.local_addr().expect("a connected socket has an address");
    let reply = send_and_read(&mut s, &data, Duration::from_millis(1000));
    drop(s);
    Attack::new(vec![me], Some("RTSP disconnect")).check(reply.bytes.is_empty(), || {
        format!("answered bytes inside a frame: {:?}", reply.text())
    })
}

/// Slowloris: connections that send a request a byte at a time and never finish it. The gateway
/// closes a connection without a session once it has gone a session timeout without a complete
/// request.
pub(crate) fn rtsp_slowloris(env: &Env) -> Attack {
    let n = env_count("HOSTILE_SLOW_CONNS", 50);
    let addr = rtsp_addr(env.gateway());
    let mut conns: Vec<TcpStream> = (0..n).map(|_| slow_connect(addr)).collect();
    let head = format!("OPTIONS {} RTSP/1.0\r\nCSeq: 1\r\nX-Slow: ", rtsp_url(env));
    for s in &mut conns {
        let _ = s.write_all(head.as_bytes());
    }
    let peers: Vec<SocketAddr> = conns
        .iter()
        .step_by(n.div_ceil(5).max(1))
        .filter_map(|s| s.local_addr().ok())
        .collect();
    let began = Instant::now();
    let limit = Duration::from_secs(RTSP_SESSION_SECS) + REACT;
    let mut open = n;
    while open > 0 && began.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(500));
        open = 0;
        for s in &mut conns {
            // A closed connection fails the write or reads end of stream.
            if s.write_all(b"a").is_ok() && !read_reply(s, Duration::from_millis(1)).closed {
                open += 1;
            }
        }
    }
    Attack::new(peers, Some("no complete request")).check(open == 0, || {
        format!("{open} of {n} slowloris connections were still open after {limit:?}")
    })
}

/// 1,000 SETUPs on one connection, each with new client ports: the gateway answers each (a
/// success replacing the transport, or an error) without running out of server ports, and a new
/// UDP viewer can still set up afterwards.
pub(crate) fn rtsp_many_setups(env: &Env) -> Attack {
    let n = env_count("HOSTILE_SETUPS", 1000);
    let url = rtsp_url(env);
    let mut s = connect(rtsp_addr(env.gateway()));
    let me = s.local_addr().expect("a connected socket has an address");
    let mut answered = 0;
    let mut session = String::new();
    for i in 0..n {
        let port = 20_000 + 2 * (i % 10_000);
        let mut req = format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: {i}\r\n\
             Transport: RTP/AVP;unicast;client_port={port}-{}\r\n",
            port + 1
        );
        if !session.is_empty() {
            req.push_str(&format!("Session: {session}\r\n"));
        }
        req.push_str("\r\n");
        let _ = s.write_all(req.as_bytes());
        let reply = read_response(&mut s, Duration::from_secs(2));
        if reply.status().is_some() {
            answered += 1;
        }
        if session.is_empty() {
            if let Some(line) = reply.text().lines().find(|l| l.starts_with("Session:")) {
                let value = line.trim_start_matches("Session:").trim();
                session = value.split(';').next().unwrap_or("").to_owned();
            }
        }
        if reply.closed {
            break;
        }
    }
    drop(s);
    let mut attack = Attack::new(vec![me], Some("RTSP disconnect")).check(answered == n, || {
        format!("{answered} of {n} SETUPs answered")
    });
    // A fresh UDP SETUP must still get server ports.
    let fresh = format!(
        "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port=40000-40001\r\n\r\n"
    );
    let mut s = connect(rtsp_addr(env.gateway()));
    let _ = s.write_all(fresh.as_bytes());
    let reply = read_response(&mut s, REACT);
    let status = reply.status();
    attack = attack.check(status == Some(200), || {
        format!(
            "a fresh UDP SETUP after {n} SETUPs answered {status:?}: {:?}",
            reply.text()
        )
    });
    attack
}
