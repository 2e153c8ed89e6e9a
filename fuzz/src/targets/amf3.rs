//! AMF3 bytes from the network (RTMP type 17/15 messages, `avmplus-object` in AMF0): decode,
//! re-encode, and check the re-encoding decodes to the same value.

use amf::{decode_amf3, encode_amf3};

pub fn run(data: &[u8]) {
    let Ok((v, used)) = decode_amf3(data) else {
        return;
    };
    assert!(used <= data.len());
    let Ok(bytes) = encode_amf3(&v) else {
        return;
    };
    let (again, used) = decode_amf3(&bytes).expect("a re-encoded AMF3 value decodes");
    assert_eq!(used, bytes.len(), "the re-encoding is consumed exactly");
    assert!(super::same(&v, &again), "{v:?} != {again:?}");
}
