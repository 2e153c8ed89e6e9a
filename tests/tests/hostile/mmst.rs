//! MMST attacks: command packets with lying lengths, bad seals and directions, garbage.

use super::*;

/// An MMST command packet (MS-MMSP 2.2.3) with a chosen length field, seal and direction.
pub(crate) fn mmst_command(
    length: u32,
    seal: &[u8; 4],
    mid: u16,
    direction: u16,
    body: &[u8],
) -> Vec<u8> {
    let mut out = vec![1, 0, 0, 0];
    out.extend(0xB00B_FACEu32.to_le_bytes());
    out.extend(length.to_le_bytes());
    out.extend(seal);
    out.extend((length / 8).to_le_bytes());
    out.extend([0u8; 4]);
    out.extend([0u8; 8]);
    out.extend((length / 8).saturating_sub(2).to_le_bytes());
    out.extend(mid.to_le_bytes());
    out.extend(direction.to_le_bytes());
    out.extend(body);
    out
}

pub(crate) fn mmst_closes(env: &Env, data: &[u8], reason: &'static str) -> Attack {
    let (me, reply) = closes_after(mms_addr(env.gateway()), data);
    expect_closed(Attack::new(vec![me], Some(reason)), &reply)
}

pub(crate) fn mmst_huge_length(env: &Env) -> Attack {
    let data = mmst_command(0xffff_fff0, b"MMS ", 1, 3, &[0; 64]);
    mmst_closes(env, &data, "malformed command")
}

/// A command claiming 8,000 bytes of which 64 arrive, then the client leaves.
pub(crate) fn mmst_lying_length(env: &Env) -> Attack {
    let mut s = connect(mms_addr(env.gateway()));
    let me = s.local_addr().expect("a connected socket has an address");
    let _ = s.write_all(&mmst_command(8000, b"MMS ", 1, 3, &[0; 64]));
    std::thread::sleep(Duration::from_millis(200));
    drop(s);
    Attack::new(vec![me], Some("MMST"))
}

pub(crate) fn mmst_truncated(env: &Env) -> Attack {
    let mut s = connect(mms_addr(env.gateway()));
    let me = s.local_addr().expect("a connected socket has an address");
    let data = mmst_command(32, b"MMS ", 1, 3, &[0; 8]);
    let _ = s.write_all(&data[..10]);
    std::thread::sleep(Duration::from_millis(200));
    drop(s);
    Attack::new(vec![me], Some("MMST"))
}

pub(crate) fn mmst_bad_seal(env: &Env) -> Attack {
    let data = mmst_command(32, b"XXXX", 1, 3, &[0; 8]);
    mmst_closes(env, &data, "malformed command")
}

pub(crate) fn mmst_bad_direction(env: &Env) -> Attack {
    let data = mmst_command(32, b"MMS ", 1, 4, &[0; 8]);
    mmst_closes(env, &data, "malformed command")
}

pub(crate) fn mmst_garbage(env: &Env) -> Attack {
    mmst_closes(env, &noise(4096, 9), "malformed command")
}
