//! AMF0 bytes from the network (RTMP commands and data messages, FLV script tags): decode,
//! re-encode what decoded, and check the re-encoding decodes to the same values.

use amf::{decode_amf0, encode_amf0, Amf0Decoder};

pub fn run(data: &[u8]) {
    let mut d = Amf0Decoder::new(data);
    let mut values = Vec::new();
    while let Ok(Some(v)) = d.next_value() {
        assert!(d.position() <= data.len());
        values.push(v);
    }
    for v in &values {
        let mut bytes = Vec::new();
        if encode_amf0(v, &mut bytes).is_err() {
            continue;
        }
        let (again, used) = decode_amf0(&bytes).expect("a re-encoded AMF0 value decodes");
        assert_eq!(used, bytes.len(), "the re-encoding is consumed exactly");
        assert!(super::same(v, &again), "{v:?} != {again:?}");
    }
    // The RTMP command layer and the FLV metadata parser on the same bytes.
    let _ = rtmp::command::Command::decode(20, data);
    let _ = rtmp::command::Command::decode(17, data);
    let _ = flv::Metadata::parse(data);
}
