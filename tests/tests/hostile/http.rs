//! HTTP attacks: giant headers, hostile names on every route, WebSocket frames, slowloris.

use super::*;

pub(crate) fn http_exchange(env: &Env, req: &[u8]) -> (SocketAddr, Reply) {
    let mut s = connect(env.gateway().http_addr());
    let me = s.local_addr().expect("a connected socket has an address");
    (me, send_and_read(&mut s, req, REACT))
}

/// A header far beyond any real client's (hyper's own limit is about 400 KB).
pub(crate) fn http_huge_header(env: &Env) -> Attack {
    http_header_of(env, 1024 * 1024)
}

/// A 100 KB header: well past what real clients send (nginx refuses header lines over 8 KB by
/// default), but under hyper's default buffer limit, so the listener must set its own.
pub(crate) fn http_giant_header(env: &Env) -> Attack {
    http_header_of(env, 100 * 1024)
}

pub(crate) fn http_header_of(env: &Env, size: usize) -> Attack {
    let req = format!(
        "GET /{}.flv HTTP/1.1\r\nHost: x\r\nX-Long: {}\r\n\r\n",
        Live::KEY,
        "a".repeat(size)
    );
    let (_, reply) = http_exchange(env, req.as_bytes());
    let got = reply.status();
    expect_closed(Attack::new(vec![], None), &reply).check(got == Some(431), || {
        format!("answered {got:?}, expected 431")
    })
}

pub(crate) fn http_many_headers(env: &Env) -> Attack {
    let mut req = format!("GET /{}.flv HTTP/1.1\r\nHost: x\r\n", Live::KEY);
    for i in 0..1000 {
        req.push_str(&format!("X-H{i}: v\r\n"));
    }
    req.push_str("\r\n");
    let (_, reply) = http_exchange(env, req.as_bytes());
    let got = reply.status();
    expect_closed(Attack::new(vec![], None), &reply).check(got == Some(431), || {
        format!("answered {got:?}, expected 431")
    })
}

/// Stream keys and file names that try to leave their directory, cut a string short, or are
/// simply too long.
pub(crate) fn hostile_names() -> Vec<String> {
    vec![
        "..".into(),
        "%2e%2e".into(),
        "..%2f..%2f..%2fetc%2fpasswd".into(),
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd".into(),
        "test%00".into(),
        "%00".into(),
        "test%00.flv".into(),
        "....%2f%2f".into(),
        "%252e%252e".into(),
        "a".repeat(10 * 1024),
    ]
}

/// Every HTTP route with each hostile name in each variable position: nothing is served but the
/// page's own files, nothing answers 5xx, nothing outside the web root leaks.
pub(crate) fn http_hostile_paths(env: &Env) -> Attack {
    let mut paths = vec![
        "/../../../../etc/passwd".to_owned(),
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd".to_owned(),
        "/live/../../../etc/passwd".to_owned(),
        "/vendor/..%2f..%2fpackage.json".to_owned(),
        "/vendor/%2e%2e%2fpackage.json".to_owned(),
        "/..%2fCargo.toml".to_owned(),
    ];
    for n in hostile_names() {
        paths.extend([
            format!("/live/{n}.flv"),
            format!("/{n}/test.flv"),
            format!("/live/{n}/index.m3u8"),
            format!("/{n}/test/index.m3u8"),
            format!("/live/test/{n}"),
            format!("/live/test/{n}.ts"),
            format!("/live/test/seg{n}.ts"),
            format!("/live/test/{n}.key"),
            format!("/api/streams/live/{n}/rtsp"),
            format!("/api/streams/{n}/test/rtsp"),
            format!("/live/{n}.asx"),
            format!("/{n}"),
            format!("/{n}.html"),
            format!("/vendor/{n}"),
        ]);
    }
    let mut attack = Attack::new(vec![], None);
    let mut served = 0;
    for path in &paths {
        for mmsh in [false, true] {
            // MMSH is recognised by its headers on any path.
            let extra = if mmsh {
                "User-Agent: NSPlayer/7.10.0.3059\r\nPragma: xClientGUID={00000000-0000-0000-0000-000000000000}\r\n"
            } else {
                ""
            };
            let req = format!("GET {path} HTTP/1.0\r\nHost: x\r\n{extra}\r\n");
            let (_, reply) = http_exchange(env, req.as_bytes());
            served += 1;
            let status = reply.status();
            let text = reply.text();
            let shown = &path[..path.len().min(80)];
            // An ASX is a pointer file, served for any name shaped `{app}/{stream}` (a page may
            // embed it before the stream starts); its text is XML-escaped, never a file.
            let asx =
                path.ends_with(".asx") && status == Some(200) && text.contains("\r\n\r\n<ASX");
            let ok = asx || matches!(status, Some(400..=499));
            attack = attack
                .check(ok, || {
                    format!("GET {shown} (mmsh {mmsh}) answered {status:?}, expected 4xx")
                })
                .check(
                    !text.contains("root:") && !text.contains("[workspace]"),
                    || format!("GET {shown} leaked a file outside the web root"),
                );
        }
    }
    println!("http: {served} hostile requests answered");
    attack
}

/// A WebSocket-FLV viewer that sends a frame announcing 16 MB (the gateway needs nothing from a
/// viewer but pings and a close): the gateway must close at the header, not buffer the frame.
pub(crate) fn ws_huge_frame(env: &Env) -> Attack {
    let mut s = connect(env.gateway().http_addr());
    let me = s.local_addr().expect("a connected socket has an address");
    let req = format!(
        "GET /{}.flv HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        Live::KEY
    );
    let _ = s.write_all(req.as_bytes());
    let head = read_response(&mut s, REACT);
    let mut attack = Attack::new(vec![me], Some("bad client message"))
        .check(head.status() == Some(101), || {
            format!("the upgrade answered {:?}", head.status())
        });
    // FIN + binary, masked, 64-bit length 16 MB, a mask key, then the first 1 MB.
    let mut frame = vec![0x82, 0x80 | 127];
    frame.extend((16u64 << 20).to_be_bytes());
    frame.extend([1, 2, 3, 4]);
    frame.extend(noise(1 << 20, 18));
    let _ = s.write_all(&frame);
    let reply = read_reply(&mut s, REACT);
    attack = attack.check(reply.closed, || {
        format!("a viewer sending a 16 MB frame was still connected after {REACT:?}")
    });
    attack
}

/// Slowloris: many connections each sending a request header a byte at a time; the gateway must
/// close them after its header timeout and name each peer in its log.
pub(crate) fn http_slowloris(env: &Env) -> Attack {
    let n = env_count("HOSTILE_SLOW_CONNS", 50);
    let addr = env.gateway().http_addr();
    let mut conns: Vec<TcpStream> = (0..n).map(|_| slow_connect(addr)).collect();
    let peers = conns.iter().filter_map(|s| s.local_addr().ok()).collect();
    let began = Instant::now();
    let limit = Duration::from_secs(HTTP_HEADER_SECS) + REACT;
    let head = b"GET /live/test.flv HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    for s in &mut conns {
        let _ = s.write_all(head);
    }
    let mut open = conns.len();
    while open > 0 && began.elapsed() < limit {
        open = 0;
        for s in &mut conns {
            if s.write_all(b"a").is_ok() && !read_reply(s, Duration::from_millis(1)).closed {
                open += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Attack::new(peers, Some("request head not received in time")).check(open == 0, || {
        format!("{open} of {n} slowloris connections were still open after {limit:?}")
    })
}
