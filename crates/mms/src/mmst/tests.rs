//! Table tests: the commands ffmpeg 5.1's `mmst.c` sends, built independently here, and the
//! checks its reader applies to what comes back.

use super::*;

/// A client command laid out as ffmpeg's `start_command_packet` + `send_command_packet` do.
fn client_command(mid: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.put_u32_le(1);
    b.put_u32_le(0xB00B_FACE);
    b.put_u32_le(0); // length, patched below
    b.put_slice(b"MMS ");
    b.put_u32_le(0);
    b.put_u32_le(seq);
    b.put_u64_le(0);
    b.put_u32_le(0);
    b.put_u16_le(mid);
    b.put_u16_le(3);
    b.put_slice(body);
    let exact = b.len().div_ceil(8) * 8;
    b.resize(exact, 0);
    let first = (exact - 16) as u32;
    b[8..12].copy_from_slice(&first.to_le_bytes());
    b[16..20].copy_from_slice(&(first / 8).to_le_bytes());
    b[32..36].copy_from_slice(&(first / 8 - 2).to_le_bytes());
    b
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain([0])
        .flat_map(|u| u.to_le_bytes())
        .collect()
}

fn u32s(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// What ffmpeg's `get_tcp_server_response` makes of the server's bytes: (report type, hr) for
/// commands, (incarnation, flags, payload length) for data packets.
#[derive(Debug, PartialEq)]
enum Seen {
    Report(u16, u32),
    Data(u8, u8, usize),
}

fn read_all(mut b: &[u8]) -> Vec<Seen> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if le32(b, 4) == 0xB00B_FACE {
            let total = le32(b, 8) as usize + 16;
            assert_eq!(total % 8, 0, "reports are padded to 8 bytes");
            assert_eq!(&b[12..16], b"MMS ");
            assert_eq!(le16(b, 38), 4, "direction to client");
            out.push(Seen::Report(le16(b, 36), le32(b, 40)));
            b = &b[total..];
        } else {
            let len = le16(b, 6) as usize;
            out.push(Seen::Data(b[4], b[5], len - 8));
            b = &b[len..];
        }
    }
    out
}

fn drain(s: &mut ServerSession) -> Vec<Seen> {
    let bytes: Vec<u8> = std::iter::from_fn(|| s.poll_transmit()).flatten().collect();
    read_all(&bytes)
}

fn events(s: &mut ServerSession) -> Vec<SessionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn connect() -> Vec<u8> {
    let mut body = u32s(&[0, 0x0004_000b, 0x0003_001c]);
    body.extend(utf16(
        "NSPlayer/7.0.0.1956; {7E667F5D-A661-495E-A512-F55686DDA178}; Host: x",
    ));
    client_command(cmd::CONNECT, 0, &body)
}

fn open_file(path: &str) -> Vec<u8> {
    let mut body = u32s(&[1, 0xffff_ffff, 0, 0]);
    body.extend(utf16(path));
    client_command(cmd::OPEN_FILE, 3, &body)
}

fn read_block() -> Vec<u8> {
    let body = u32s(&[
        1,
        0,
        0,
        0x0080_0000,
        0xffff_ffff,
        0,
        0,
        0,
        0,
        0x40AC_2000,
        2,
        0,
    ]);
    client_command(cmd::READ_BLOCK, 4, &body)
}

fn start_playing() -> Vec<u8> {
    let mut body = u32s(&[1, 0x0001_FFFF, 0, 0, 0xffff_ffff, 0xffff_ffff]);
    body.extend([0xff, 0xff, 0xff, 0x00]);
    body.extend(u32s(&[4]));
    client_command(cmd::START_PLAYING, 6, &body)
}

#[test]
fn ffmpeg_command_sequence() {
    let mut s = ServerSession::new();
    let steps: Vec<(Vec<u8>, Vec<Seen>)> = vec![
        (connect(), vec![Seen::Report(report::CONNECTED_EX, 0)]),
        (
            client_command(cmd::FUNNEL_INFO, 1, &u32s(&[0x00f0_f0f0, 0x0004_000b])),
            vec![Seen::Report(report::FUNNEL_INFO, 0)],
        ),
        (
            client_command(
                cmd::CONNECT_FUNNEL,
                2,
                &[
                    u32s(&[0, 0xffff_ffff, 0, 0x0098_9680, 2]),
                    utf16("\\\\192.168.0.129\\TCP\\1037"),
                ]
                .concat(),
            ),
            vec![Seen::Report(report::CONNECTED_FUNNEL, 0)],
        ),
        (open_file("LiveEvents"), vec![]),
    ];
    for (input, expect) in steps {
        s.handle_input(&input).expect("valid command");
        assert_eq!(drain(&mut s), expect);
    }
    let ev = events(&mut s);
    assert!(
        matches!(&ev[0], SessionEvent::Connected { player } if player.starts_with("NSPlayer/7.0"))
    );
    assert_eq!(
        ev[1],
        SessionEvent::OpenFile {
            path: "LiveEvents".into()
        }
    );

    // Commands pipelined behind an undecided OpenFile wait for the decision.
    s.handle_input(&read_block()).expect("valid command");
    assert_eq!(drain(&mut s), vec![]);
    s.accept_open(Bytes::from(vec![0xAB; 300]), 4096)
        .expect("accept");
    assert_eq!(
        drain(&mut s),
        vec![
            Seen::Report(report::OPEN_FILE, 0),
            Seen::Report(report::READ_BLOCK, 0),
            Seen::Data(2, 0x0C, 300)
        ]
    );

    let switch = client_command(
        cmd::STREAM_SWITCH,
        5,
        &[
            u32s(&[2]),
            vec![0xff, 0xff, 1, 0, 0, 0, 0xff, 0xff, 2, 0, 0, 0],
        ]
        .concat(),
    );
    s.handle_input(&switch).expect("valid command");
    assert_eq!(drain(&mut s), vec![Seen::Report(report::STREAM_SWITCH, 0)]);
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::StreamSwitch {
            streams: vec![(1, 0), (2, 0)]
        }]
    );

    s.handle_input(&start_playing()).expect("valid command");
    assert_eq!(drain(&mut s), vec![Seen::Report(report::START_PLAYING, 0)]);
    assert_eq!(events(&mut s), vec![SessionEvent::Play]);
    assert!(s.is_playing());
    assert_eq!(
        s.media_prefix(4096),
        [0, 0, 0, 0, 4, 0, 0x08, 0x10],
        "incarnation of StartPlaying"
    );
    assert_eq!(s.media_prefix(4096)[0], 1, "location ids count up");

    s.handle_input(&client_command(cmd::CLOSE_FILE, 7, &u32s(&[1, 1])))
        .expect("valid command");
    assert_eq!(events(&mut s), vec![SessionEvent::Close]);
}

#[test]
fn unknown_publishing_point_is_refused_with_an_hresult() {
    let mut s = ServerSession::new();
    s.handle_input(&[connect(), open_file("nope")].concat())
        .expect("valid commands");
    drain(&mut s);
    s.reject_open(NS_E_FILE_NOT_FOUND).expect("reject");
    assert_eq!(
        drain(&mut s),
        vec![Seen::Report(report::OPEN_FILE, NS_E_FILE_NOT_FOUND)]
    );
    // Reading or playing without an open file fails the same clear way.
    s.handle_input(&[read_block(), start_playing()].concat())
        .expect("valid commands");
    assert_eq!(
        drain(&mut s),
        vec![
            Seen::Report(report::READ_BLOCK, E_FAIL),
            Seen::Report(report::START_PLAYING, E_FAIL)
        ]
    );
    assert!(!s.is_playing());
}

#[test]
fn large_headers_are_split_with_continuation_flags() {
    let mut s = ServerSession::new();
    s.handle_input(&[connect(), open_file("x")].concat())
        .expect("valid");
    s.accept_open(Bytes::from(vec![1; MAX_DATA_PAYLOAD + 10]), 4096)
        .expect("accept");
    s.handle_input(&read_block()).expect("valid");
    let seen = drain(&mut s);
    assert_eq!(
        seen[3..],
        [
            Seen::Data(2, 0x04, MAX_DATA_PAYLOAD),
            Seen::Data(2, 0x08, 10)
        ]
    );
}

#[test]
fn framing_errors() {
    let good = connect();
    let mut bad_session = good.clone();
    bad_session[4] = 0;
    let mut bad_seal = good.clone();
    bad_seal[12] = b'X';
    let mut too_long = good.clone();
    too_long[8..12].copy_from_slice(&(MAX_COMMAND_LEN as u32 + 8).to_le_bytes());
    let mut too_short = good.clone();
    too_short[8..12].copy_from_slice(&8u32.to_le_bytes());
    let mut wrong_direction = good.clone();
    wrong_direction[38] = 4;
    let cases: Vec<(&str, Vec<u8>, Result<(), MmstError>)> = vec![
        ("good", good.clone(), Ok(())),
        ("partial is not an error", good[..20].to_vec(), Ok(())),
        (
            "bad session id",
            bad_session,
            Err(MmstError::BadSessionId {
                offset: 0,
                session_id: 0xB00B_FA00,
            }),
        ),
        (
            "bad seal",
            bad_seal,
            Err(MmstError::BadSeal {
                offset: 0,
                seal: u32::from_le_bytes(*b"XMS "),
            }),
        ),
        (
            "too long",
            too_long,
            Err(MmstError::BadLength {
                offset: 0,
                len: MAX_COMMAND_LEN + 8,
                max: MAX_COMMAND_LEN,
            }),
        ),
        (
            "too short",
            too_short,
            Err(MmstError::BadLength {
                offset: 0,
                len: 8,
                max: MAX_COMMAND_LEN,
            }),
        ),
        (
            "wrong direction",
            wrong_direction,
            Err(MmstError::BadDirection {
                offset: 0,
                mid: 1,
                direction: 4,
            }),
        ),
        (
            "HTTP on the MMS port",
            b"GET / HTTP/1.0\r\n\r\n".to_vec(),
            Err(MmstError::BadSessionId {
                offset: 0,
                session_id: u32::from_le_bytes(*b"/ HT"),
            }),
        ),
    ];
    for (name, input, expect) in cases {
        let mut s = ServerSession::new();
        assert_eq!(s.handle_input(&input), expect, "{name}");
    }
}

#[test]
fn unknown_commands_are_ignored_not_fatal() {
    let mut s = ServerSession::new();
    s.handle_input(&client_command(0x77, 0, &[0; 8]))
        .expect("valid framing");
    assert_eq!(events(&mut s), vec![SessionEvent::Ignored { mid: 0x77 }]);
    assert_eq!(drain(&mut s), vec![]);
}
