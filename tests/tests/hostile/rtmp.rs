//! RTMP attacks: handshakes, chunk streams, AMF nesting, from raw sockets.

use super::*;

/// Connects and completes a plain handshake (C1 version field zero), as librtmp does.
pub(crate) fn rtmp_handshaken(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(REACT))?;
    s.set_write_timeout(Some(REACT))?;
    let mut c0c1 = vec![3u8];
    c0c1.extend([0u8; 8]);
    c0c1.extend(noise(1528, addr.port().into()));
    s.write_all(&c0c1)?;
    let mut s0s1s2 = vec![0u8; 1 + 1536 + 1536];
    s.read_exact(&mut s0s1s2)?;
    s.write_all(&s0s1s2[1..1537])?;
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    Ok(s)
}

/// A type 0 chunk header on chunk stream `csid` (2..=63) followed by `body`, which the caller
/// keeps within the chunk size.
pub(crate) fn chunk0(csid: u8, type_id: u8, stream_id: u32, length: u32, body: &[u8]) -> Vec<u8> {
    let mut out = vec![csid & 0x3f];
    out.extend([0, 0, 0]);
    out.extend(&length.to_be_bytes()[1..]);
    out.push(type_id);
    out.extend(stream_id.to_le_bytes());
    out.extend(body);
    out
}

/// A whole message in chunks of the default 128 bytes.
pub(crate) fn message(csid: u8, type_id: u8, payload: &[u8]) -> Vec<u8> {
    let mut parts = payload.chunks(128);
    let first = parts.next().unwrap_or_default();
    let mut out = chunk0(csid, type_id, 0, payload.len() as u32, first);
    for part in parts {
        out.push(0xC0 | (csid & 0x3f));
        out.extend(part);
    }
    out
}

/// After a handshake, sends `data` and expects the gateway to close with `reason` logged.
pub(crate) fn rtmp_after_handshake(env: &Env, data: &[u8], reason: &'static str) -> Attack {
    let addr = env.gateway().rtmp_addr();
    let mut s = match rtmp_handshaken(addr) {
        Ok(s) => s,
        Err(e) => return Attack::new(vec![], None).check(false, || format!("handshake: {e}")),
    };
    let me = s.local_addr().expect("a connected socket has an address");
    let reply = send_and_read(&mut s, data, REACT);
    expect_closed(Attack::new(vec![me], Some(reason)), &reply)
}

pub(crate) fn rtmp_garbage_c0(env: &Env) -> Attack {
    let mut data = vec![0x42];
    data.extend(noise(1536, 1));
    let (me, reply) = closes_after(env.gateway().rtmp_addr(), &data);
    expect_closed(
        Attack::new(vec![me], Some("unsupported RTMP version")),
        &reply,
    )
}

pub(crate) fn rtmp_http_request(env: &Env) -> Attack {
    let data = b"GET / HTTP/1.1\r\nHost: scanner\r\n\r\n".repeat(64);
    let (me, reply) = closes_after(env.gateway().rtmp_addr(), &data);
    expect_closed(
        Attack::new(vec![me], Some("unsupported RTMP version")),
        &reply,
    )
}

pub(crate) fn rtmp_truncated_handshake(env: &Env) -> Attack {
    let mut s = connect(env.gateway().rtmp_addr());
    let me = s.local_addr().expect("a connected socket has an address");
    let mut data = vec![3u8];
    data.extend(noise(700, 2));
    let _ = s.write_all(&data);
    drop(s);
    Attack::new(vec![me], Some("truncated handshake"))
}

pub(crate) fn rtmp_stalled_handshake(env: &Env) -> Attack {
    let mut s = connect(env.gateway().rtmp_addr());
    let me = s.local_addr().expect("a connected socket has an address");
    let mut data = vec![3u8];
    data.extend(noise(700, 3));
    let wait = Duration::from_secs(HANDSHAKE_TIMEOUT_SECS) + REACT;
    let reply = send_and_read(&mut s, &data, wait);
    Attack::new(vec![me], Some("handshake not completed")).check(reply.closed, || {
        format!("a stalled handshake was still open after {wait:?}")
    })
}

pub(crate) fn set_chunk_size(size: u32) -> Vec<u8> {
    chunk0(2, 1, 0, 4, &size.to_be_bytes())
}

pub(crate) fn rtmp_chunk_size_zero(env: &Env) -> Attack {
    rtmp_after_handshake(env, &set_chunk_size(0), "chunk size")
}

pub(crate) fn rtmp_chunk_size_top_bit(env: &Env) -> Attack {
    rtmp_after_handshake(env, &set_chunk_size(0x8000_0000), "chunk size")
}

pub(crate) fn rtmp_huge_message(env: &Env) -> Attack {
    let mut data = set_chunk_size(0x7fff_ffff);
    data.extend(chunk0(6, 9, 1, 0xff_ffff, &noise(4096, 4)));
    rtmp_after_handshake(env, &data, "exceeds the maximum")
}

/// A 7 MB message (under the limit) of which only 64 KB ever arrives: the gateway must not
/// reserve the rest up front, and the idle timeout must end the connection.
pub(crate) fn rtmp_unfinished_message(env: &Env) -> Attack {
    let addr = env.gateway().rtmp_addr();
    let mut s = match rtmp_handshaken(addr) {
        Ok(s) => s,
        Err(e) => return Attack::new(vec![], None).check(false, || format!("handshake: {e}")),
    };
    let me = s.local_addr().expect("a connected socket has an address");
    let mut data = set_chunk_size(0x7fff_ffff);
    data.extend(chunk0(6, 9, 1, 7 << 20, &noise(64 * 1024, 5)));
    let wait = Duration::from_secs(RTMP_IDLE_SECS) + REACT;
    let reply = send_and_read(&mut s, &data, wait);
    Attack::new(vec![me], Some("idle")).check(reply.closed, || {
        format!("a connection with an unfinished message was still open after {wait:?}")
    })
}

pub(crate) fn rtmp_unopened_fmt1(env: &Env) -> Attack {
    // Type 1: delta, length, type id; no message stream id, so it needs an earlier type 0.
    let data = [0x40 | 5, 0, 0, 0, 0, 0, 16, 9, 1, 2, 3];
    rtmp_after_handshake(env, &data, "before any fmt 0 header")
}

pub(crate) fn rtmp_unopened_fmt3(env: &Env) -> Attack {
    let data = [0xC0 | 7, 1, 2, 3, 4];
    rtmp_after_handshake(env, &data, "before any fmt 0 header")
}

pub(crate) fn rtmp_many_chunk_streams(env: &Env) -> Attack {
    let mut data = Vec::new();
    for csid in 3..=62u8 {
        data.extend(chunk0(csid, 9, 1, 1000, &noise(128, csid.into())));
    }
    // Chunk streams 64 and up take a two-byte basic header (fmt 0, csid field 0).
    for id in 0..40u8 {
        data.extend([0, id]);
        data.extend([0, 0, 0, 0, 0x03, 0xe8, 9, 1, 0, 0, 0]);
        data.extend(noise(128, id.into()));
    }
    rtmp_after_handshake(env, &data, "chunk streams")
}

pub(crate) fn amf0_string(s: &str) -> Vec<u8> {
    let mut out = vec![0x02];
    out.extend((s.len() as u16).to_be_bytes());
    out.extend(s.as_bytes());
    out
}

/// `connect`, transaction 1, then `body` as the command object.
pub(crate) fn connect_command(body: &[u8]) -> Vec<u8> {
    let mut out = amf0_string("connect");
    out.push(0x00);
    out.extend(1.0f64.to_be_bytes());
    out.extend(body);
    out
}

pub(crate) fn depth() -> usize {
    env_count("HOSTILE_AMF_DEPTH", 10_000)
}

pub(crate) fn rtmp_amf0_deep_objects(env: &Env) -> Attack {
    let n = depth();
    let mut obj = vec![0x03];
    for _ in 0..n {
        obj.extend([0, 1, b'a', 0x03]);
    }
    for _ in 0..=n {
        obj.extend([0, 0, 0x09]);
    }
    rtmp_after_handshake(
        env,
        &message(3, 20, &connect_command(&obj)),
        "nesting deeper than",
    )
}

pub(crate) fn rtmp_amf0_deep_arrays(env: &Env) -> Attack {
    let n = depth();
    let mut arr = Vec::new();
    for _ in 0..n {
        arr.extend([0x0A, 0, 0, 0, 1]);
    }
    arr.push(0x05);
    rtmp_after_handshake(
        env,
        &message(3, 20, &connect_command(&arr)),
        "nesting deeper than",
    )
}

pub(crate) fn rtmp_amf0_huge_count(env: &Env) -> Attack {
    let arr = [0x0A, 0xff, 0xff, 0xff, 0xff, 0x05];
    rtmp_after_handshake(env, &message(3, 20, &connect_command(&arr)), "AMF")
}

pub(crate) fn rtmp_amf3_deep_arrays(env: &Env) -> Attack {
    let n = depth();
    // An AMF3 command message starts with a format byte of 0, then AMF0 values; the command
    // object switches to AMF3 (0x11) and nests dense arrays of one element.
    let mut arr = vec![0x11];
    for _ in 0..n {
        arr.extend([0x09, 0x03, 0x01]);
    }
    arr.push(0x01);
    let mut payload = vec![0];
    payload.extend(connect_command(&arr));
    rtmp_after_handshake(env, &message(3, 17, &payload), "nesting deeper than")
}

pub(crate) fn rtmp_garbage_after_handshake(env: &Env) -> Attack {
    rtmp_after_handshake(env, &noise(64 * 1024, 6), "RTMP connection closed")
}
