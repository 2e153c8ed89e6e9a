//! RTP and RTCP from RTSP clients (UDP datagrams and interleaved frames): the parsers validate
//! every length against the buffer; a packet with a plain 12-byte header re-writes to the same
//! header bytes.

use rtp::rtcp::{parse_compound, RtcpPacket};
use rtp::RtpPacketRef;

pub fn run(data: &[u8]) {
    if let Ok(p) = RtpPacketRef::parse(data) {
        assert!(p.payload.len() + rtp::header::HEADER_LEN <= data.len());
        if data[0] == 0x80 {
            let mut head = Vec::new();
            p.header.write(&mut head);
            assert_eq!(
                &head[..],
                &data[..rtp::header::HEADER_LEN],
                "header re-writes"
            );
        }
    }
    if let Ok(packets) = parse_compound(data) {
        let blocks: usize = packets
            .iter()
            .map(|p| match p {
                RtcpPacket::Report { blocks, .. } => blocks.len(),
                _ => 0,
            })
            .sum();
        // Each report block takes 24 bytes of the input.
        assert!(
            blocks * 24 <= data.len(),
            "no more report blocks than bytes allow"
        );
    }
}
