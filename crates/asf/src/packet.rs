//! Fixed-size ASF data packets (ASF specification 1.20.03, section 5.2).
//!
//! Every packet this module writes has the same layout, the one Windows Media encoders use for
//! live streams and that ffmpeg's `asfdec` and MMS clients expect:
//!
//! | field | bytes | value |
//! |---|---|---|
//! | error correction flags | 1 | 0x82: present, 2 bytes of data |
//! | error correction data | 2 | 0, 0 |
//! | length type flags | 1 | 0x11: multiple payloads, padding length is a WORD, no packet length (it is the fixed size) |
//! | property flags | 1 | 0x5D: replicated data length BYTE, offset DWORD, media object number BYTE, stream number BYTE |
//! | padding length | 2 | bytes of zero padding at the end |
//! | send time | 4 | ms |
//! | duration | 2 | 0 |
//! | payload flags | 1 | 0x80 + number of payloads (payload length is a WORD) |
//!
//! Each payload then has a 17-byte header (stream number with the keyframe bit, media object
//! number, offset into the media object, 8 bytes of replicated data: object size and presentation
//! time, payload length) before its bytes. A media object larger than the room left is split
//! across packets as fragments with increasing offsets.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

use crate::header::TIMING_EXT_LEN;

/// Bytes before the first payload in every packet.
pub const PACKET_HEADER_LEN: usize = 14;
/// Bytes of each payload header.
pub const PAYLOAD_HEADER_LEN: usize = 17;
/// Smallest packet size accepted: room for the headers and a useful amount of media.
pub const MIN_PACKET_SIZE: usize = 256;
/// Largest packet size accepted: MMSH and MMST carry a packet length in 16 bits that includes an
/// 8-byte prefix (MS-WMSP 2.2.3.1.2, MS-MMSP 2.2.2).
pub const MAX_PACKET_SIZE: usize = 65_000;
/// Largest media object accepted; ffmpeg's `asfdec` refuses objects of 2^24 bytes or more.
pub const MAX_OBJECT_SIZE: usize = (1 << 24) - 1;
/// The payload count lives in 6 bits of the payload flags.
const MAX_PAYLOADS: usize = 63;

/// One finished data packet, shared by every viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPacket {
    /// Exactly the packet size of the header.
    pub data: Bytes,
    /// Send time in milliseconds (the decode time of its first payload).
    pub send_time_ms: u32,
    /// A viewer may start here: the packet opens with the first fragment of a video keyframe (or
    /// of any object when the stream has no video), so nothing before it is needed.
    pub random_access: bool,
}

/// One media object to packetize.
#[derive(Debug, Clone)]
pub struct MediaObject {
    /// ASF stream number, 1 to 127.
    pub stream: u8,
    pub keyframe: bool,
    /// Decode time in milliseconds, used as the send time.
    pub send_time_ms: u32,
    /// Presentation time in milliseconds, preroll included.
    pub presentation_time_ms: u32,
    /// Set when the stream declared the DVR-MS timing payload extension: the decode time in
    /// milliseconds, preroll included. The replicated-data time field then carries this decode
    /// time and the extension carries the presentation time (see [`crate::header`] for why).
    pub timing_extension_dts_ms: Option<u32>,
    pub data: Bytes,
}

impl MediaObject {
    fn payload_header_len(&self) -> usize {
        PAYLOAD_HEADER_LEN
            + if self.timing_extension_dts_ms.is_some() {
                TIMING_EXT_LEN
            } else {
                0
            }
    }
}

/// Turns media objects into fixed-size packets.
#[derive(Debug)]
pub struct Packetizer {
    packet_size: usize,
    /// Payload area of the packet being filled.
    body: BytesMut,
    payloads: usize,
    send_time_ms: u32,
    random_access: bool,
    last_send_time_ms: u32,
    object_numbers: [u8; 128],
    out: VecDeque<DataPacket>,
}

impl Packetizer {
    /// A packetizer for `packet_size`-byte packets, clamped to the supported range.
    pub fn new(packet_size: usize) -> Packetizer {
        let packet_size = packet_size.clamp(MIN_PACKET_SIZE, MAX_PACKET_SIZE);
        Packetizer {
            packet_size,
            body: BytesMut::with_capacity(packet_size),
            payloads: 0,
            send_time_ms: 0,
            random_access: false,
            last_send_time_ms: 0,
            object_numbers: [0; 128],
            out: VecDeque::new(),
        }
    }

    /// The fixed packet size.
    pub fn packet_size(&self) -> usize {
        self.packet_size
    }

    /// Send time of the first payload in the open packet, if any is open.
    pub fn open_since_ms(&self) -> Option<u32> {
        (self.payloads > 0).then_some(self.send_time_ms)
    }

    /// Adds one media object. `random_access` says whether a packet that starts with it is a
    /// point where a viewer may join; such objects always start a new packet.
    pub fn push(&mut self, obj: &MediaObject, random_access: bool) {
        if obj.data.is_empty() || obj.data.len() > MAX_OBJECT_SIZE {
            return;
        }
        if random_access {
            self.finish();
        }
        let number = self.object_numbers[usize::from(obj.stream & 0x7F)];
        self.object_numbers[usize::from(obj.stream & 0x7F)] = number.wrapping_add(1);
        let mut offset = 0;
        while offset < obj.data.len() {
            if self.room() <= obj.payload_header_len() || self.payloads == MAX_PAYLOADS {
                self.finish();
            }
            if self.payloads == 0 {
                self.open(obj.send_time_ms, random_access && offset == 0);
            }
            let take = (self.room() - obj.payload_header_len()).min(obj.data.len() - offset);
            self.put_payload(obj, number, offset, take);
            offset += take;
        }
    }

    /// Closes the open packet, padding it to the fixed size.
    pub fn finish(&mut self) {
        if self.payloads == 0 {
            return;
        }
        let padding = self.room();
        let mut p = BytesMut::with_capacity(self.packet_size);
        p.put_slice(&[0x82, 0x00, 0x00, 0x11, 0x5D]);
        p.put_u16_le(padding as u16);
        p.put_u32_le(self.send_time_ms);
        p.put_u16_le(0); // duration
        p.put_u8(0x80 | self.payloads as u8);
        p.put_slice(&self.body);
        p.put_bytes(0, padding);
        debug_assert_eq!(p.len(), self.packet_size);
        self.out.push_back(DataPacket {
            data: p.freeze(),
            send_time_ms: self.send_time_ms,
            random_access: self.random_access,
        });
        self.body.clear();
        self.payloads = 0;
    }

    /// The next finished packet.
    pub fn poll_packet(&mut self) -> Option<DataPacket> {
        self.out.pop_front()
    }

    fn room(&self) -> usize {
        self.packet_size - PACKET_HEADER_LEN - self.body.len()
    }

    fn open(&mut self, send_time_ms: u32, random_access: bool) {
        // Send times must not go backwards within the stream (section 5.2.2).
        self.send_time_ms = send_time_ms.max(self.last_send_time_ms);
        self.last_send_time_ms = self.send_time_ms;
        self.random_access = random_access;
    }

    fn put_payload(&mut self, obj: &MediaObject, number: u8, offset: usize, take: usize) {
        let key = if obj.keyframe { 0x80 } else { 0 };
        self.body.put_u8(key | (obj.stream & 0x7F));
        self.body.put_u8(number);
        self.body.put_u32_le(offset as u32);
        self.body
            .put_u8((obj.payload_header_len() - PAYLOAD_HEADER_LEN + 8) as u8);
        self.body.put_u32_le(obj.data.len() as u32);
        match obj.timing_extension_dts_ms {
            None => self.body.put_u32_le(obj.presentation_time_ms),
            Some(dts) => {
                self.body.put_u32_le(dts);
                put_timing_extension(&mut self.body, obj.presentation_time_ms);
            }
        }
        self.body.put_u16_le(take as u16);
        self.body.put_slice(&obj.data[offset..offset + take]);
        self.payloads += 1;
    }
}

/// DVR-MS timing rep data (48 bytes): a reserved 64-bit field, the presentation time in 100 ns
/// units, an end time (-1: unknown), and 24 reserved bytes. ffmpeg reads the second field; VLC
/// checks the size.
fn put_timing_extension(out: &mut BytesMut, presentation_time_ms: u32) {
    out.put_u64_le(0);
    out.put_u64_le(u64::from(presentation_time_ms) * 10_000);
    out.put_i64_le(-1);
    out.put_bytes(0, TIMING_EXT_LEN - 24);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(stream: u8, key: bool, t: u32, len: usize) -> MediaObject {
        MediaObject {
            stream,
            keyframe: key,
            send_time_ms: t,
            presentation_time_ms: t,
            timing_extension_dts_ms: None,
            data: Bytes::from(vec![stream; len]),
        }
    }

    /// (stream, keyframe, object number, offset, object size, length) of one payload.
    type Payload = (u8, bool, u8, u32, u32, usize);

    /// A minimal independent reader of the layout above: returns, per packet, the payloads as
    /// (stream, keyframe, object number, offset, object size, length).
    fn parse(p: &[u8]) -> Vec<Payload> {
        assert_eq!(&p[..5], &[0x82, 0, 0, 0x11, 0x5D]);
        let padding = usize::from(u16::from_le_bytes([p[5], p[6]]));
        let count = usize::from(p[13] & 0x3F);
        let mut at = PACKET_HEADER_LEN;
        let mut out = Vec::new();
        for _ in 0..count {
            let rep = usize::from(p[at + 6]);
            let len_at = at + 7 + rep;
            let len = usize::from(u16::from_le_bytes([p[len_at], p[len_at + 1]]));
            let offset = u32::from_le_bytes(p[at + 2..at + 6].try_into().expect("4"));
            let size = u32::from_le_bytes(p[at + 7..at + 11].try_into().expect("4"));
            out.push((
                p[at] & 0x7F,
                p[at] & 0x80 != 0,
                p[at + 1],
                offset,
                size,
                len,
            ));
            at = len_at + 2 + len;
        }
        assert_eq!(
            at + padding,
            p.len(),
            "payloads and padding fill the packet exactly"
        );
        out
    }

    fn check(objects: &[(MediaObject, bool)], expect: &[Vec<Payload>]) {
        let mut pk = Packetizer::new(MIN_PACKET_SIZE);
        for (o, ra) in objects {
            pk.push(o, *ra);
        }
        pk.finish();
        let got: Vec<_> = std::iter::from_fn(|| pk.poll_packet())
            .inspect(|p| assert_eq!(p.data.len(), MIN_PACKET_SIZE))
            .map(|p| parse(&p.data))
            .collect();
        assert_eq!(got, expect);
    }

    #[test]
    fn packet_layouts() {
        // Room per packet for one payload: 256 - 14 - 17 = 225 bytes.
        check(
            &[(obj(1, true, 0, 10), true)],
            &[vec![(1, true, 0, 0, 10, 10)]],
        );
        check(
            &[(obj(1, true, 0, 10), true), (obj(2, true, 5, 20), false)],
            &[vec![(1, true, 0, 0, 10, 10), (2, true, 0, 0, 20, 20)]],
        );
        check(
            &[(obj(1, true, 0, 300), true)],
            &[
                vec![(1, true, 0, 0, 300, 225)],
                vec![(1, true, 0, 225, 300, 75)],
            ],
        );
        // A random-access object closes the open packet first.
        check(
            &[
                (obj(2, true, 0, 10), false),
                (obj(1, true, 5, 10), true),
                (obj(1, false, 9, 10), false),
            ],
            &[
                vec![(2, true, 0, 0, 10, 10)],
                vec![(1, true, 0, 0, 10, 10), (1, false, 1, 0, 10, 10)],
            ],
        );
        // Less than a payload header plus one byte left: the packet is closed with padding.
        check(
            &[(obj(1, false, 0, 208), false), (obj(1, false, 1, 5), false)],
            &[
                vec![(1, false, 0, 0, 208, 208)],
                vec![(1, false, 1, 0, 5, 5)],
            ],
        );
    }

    #[test]
    fn random_access_and_send_time_are_reported() {
        let mut pk = Packetizer::new(MIN_PACKET_SIZE);
        pk.push(&obj(2, true, 100, 10), false);
        pk.push(&obj(1, true, 90, 10), true);
        pk.finish();
        let a = pk.poll_packet().expect("first packet");
        let b = pk.poll_packet().expect("second packet");
        assert_eq!((a.random_access, a.send_time_ms), (false, 100));
        // Send time never goes backwards.
        assert_eq!((b.random_access, b.send_time_ms), (true, 100));
    }

    #[test]
    fn timing_extension_carries_the_presentation_time() {
        let mut pk = Packetizer::new(MIN_PACKET_SIZE);
        let mut o = obj(1, true, 40, 300);
        o.timing_extension_dts_ms = Some(40);
        o.presentation_time_ms = 120;
        pk.push(&o, true);
        pk.finish();
        let p = pk.poll_packet().expect("packet");
        let at = PACKET_HEADER_LEN;
        assert_eq!(p.data[at + 6], 56, "replicated data: 8 + 48 bytes");
        let time_field = u32::from_le_bytes(p.data[at + 11..at + 15].try_into().expect("4"));
        assert_eq!(time_field, 40, "the time field carries the decode time");
        let pts = u64::from_le_bytes(p.data[at + 7 + 16..at + 7 + 24].try_into().expect("8"));
        assert_eq!(
            pts, 1_200_000,
            "the extension carries the presentation time in 100 ns"
        );
        // Room for one payload: 256 - 14 - 17 - 48 = 177 bytes.
        assert_eq!(parse(&p.data), vec![(1, true, 0, 0, 300, 177)]);
    }

    #[test]
    fn empty_and_oversized_objects_are_ignored() {
        let mut pk = Packetizer::new(MIN_PACKET_SIZE);
        pk.push(&obj(1, true, 0, 0), true);
        pk.finish();
        assert!(pk.poll_packet().is_none());
    }
}
