//! A streaming MPEG-TS scanner for HLS segments (ISO/IEC 13818-1 2.4.3): it strips the 4-byte
//! packet headers and adaptation fields, counts video PES starts as frames, and looks for the
//! latency stamp in the first [`HEAD_CAP`] bytes of each video PES payload, which may span
//! several packets.

use crate::sei;

/// TS packet size.
pub const PACKET_LEN: usize = 188;
const SYNC: u8 = 0x47;
/// Bytes of each video PES kept for the stamp scan (PES header, AUD, SPS, PPS, our SEI).
pub const HEAD_CAP: usize = 1024;

/// Counts frames and finds stamps in TS bytes fed in arbitrary pieces.
#[derive(Debug)]
pub struct TsScanner {
    carry: Vec<u8>,
    video_pid: Option<u16>,
    head: Vec<u8>,
    head_open: bool,
    /// Video PES packets started (frames).
    pub frames: u64,
    /// Bytes skipped to regain packet sync.
    pub resync_bytes: u64,
    /// The first stamp found since [`TsScanner::take_stamp`].
    stamp: Option<u64>,
}

impl Default for TsScanner {
    fn default() -> Self {
        TsScanner {
            carry: Vec::with_capacity(PACKET_LEN),
            video_pid: None,
            head: Vec::with_capacity(HEAD_CAP),
            head_open: false,
            frames: 0,
            resync_bytes: 0,
            stamp: None,
        }
    }
}

impl TsScanner {
    /// Consumes `data`.
    pub fn feed(&mut self, mut data: &[u8]) {
        if !self.carry.is_empty() {
            let n = (PACKET_LEN - self.carry.len()).min(data.len());
            self.carry.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.carry.len() < PACKET_LEN {
                return;
            }
            let packet = std::mem::take(&mut self.carry);
            self.packet(&packet);
            self.carry = packet;
            self.carry.clear();
        }
        while let Some(&first) = data.first() {
            if first != SYNC {
                self.resync_bytes += 1;
                data = &data[1..];
            } else if let Some(packet) = data.get(..PACKET_LEN) {
                self.packet(packet);
                data = &data[PACKET_LEN..];
            } else {
                self.carry.extend_from_slice(data);
                return;
            }
        }
    }

    /// Ends a segment: scans a still-open PES head and drops a partial packet.
    pub fn finish(&mut self) {
        self.close_head();
        self.carry.clear();
    }

    /// The first stamp found since the last call.
    pub fn take_stamp(&mut self) -> Option<u64> {
        self.stamp.take()
    }

    fn packet(&mut self, p: &[u8]) {
        let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        let start = p[1] & 0x40 != 0;
        let payload = match (p[3] >> 4) & 0x3 {
            0b01 => &p[4..],
            0b11 => match p.get(5 + usize::from(p[4])..) {
                Some(rest) => rest,
                None => return,
            },
            _ => return,
        };
        if start && self.video_pid.is_none() && is_video_pes(payload) {
            self.video_pid = Some(pid);
        }
        if Some(pid) != self.video_pid {
            return;
        }
        if start {
            self.close_head();
            self.frames += 1;
            self.head_open = self.stamp.is_none();
        }
        if self.head_open {
            let take = payload.len().min(HEAD_CAP - self.head.len());
            self.head.extend_from_slice(&payload[..take]);
            if self.head.len() == HEAD_CAP {
                self.close_head();
            }
        }
    }

    fn close_head(&mut self) {
        if self.head_open && self.stamp.is_none() {
            self.stamp = sei::find(&self.head);
        }
        self.head_open = false;
        self.head.clear();
    }
}

/// A PES packet of a video stream (stream_id 0xE0..=0xEF, 2.4.3.7 table 2-22).
fn is_video_pes(payload: &[u8]) -> bool {
    matches!(payload.get(..4), Some([0, 0, 1, id]) if (0xe0..=0xef).contains(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TS packets carrying `pes` on `pid`, the first with an adaptation field of `af` bytes.
    fn packets(pid: u16, pes: &[u8], af: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = pes;
        let mut first = true;
        while !rest.is_empty() {
            let mut p = vec![SYNC, (pid >> 8) as u8 & 0x1f, pid as u8, 0x10];
            if first {
                p[1] |= 0x40;
                if af > 0 {
                    p[3] = 0x30;
                    p.push((af - 1) as u8);
                    p.extend(std::iter::repeat_n(0xff, af - 1));
                }
            }
            let n = rest.len().min(PACKET_LEN - p.len());
            p.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            // Pad with stuffing in an adaptation field would be exact; trailing 0xff is enough
            // for a scanner that does not parse PES lengths.
            p.resize(PACKET_LEN, 0xff);
            out.extend_from_slice(&p);
            first = false;
        }
        out
    }

    fn video_pes(stamp_at: usize) -> Vec<u8> {
        let mut pes = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1];
        pes.resize(pes.len() + stamp_at, 0x11);
        pes.extend_from_slice(&[0, 0, 0, 1]);
        pes.extend_from_slice(&sei::nal(987_654_321));
        pes.resize(pes.len() + 400, 0x22);
        pes
    }

    fn check(stamp_at: usize, af: usize, piece: usize) {
        let mut data = packets(0x100, &[0, 0, 1, 0xc0, 0, 0, 0x80, 0x80, 5], 0);
        data.extend(packets(0x101, &video_pes(stamp_at), af));
        data.extend(packets(0x101, &video_pes(0), 0));
        let mut s = TsScanner::default();
        for chunk in data.chunks(piece) {
            s.feed(chunk);
        }
        s.finish();
        let case = format!("stamp_at {stamp_at} af {af} piece {piece}");
        assert_eq!(s.frames, 2, "{case}");
        assert_eq!(s.take_stamp(), Some(987_654_321), "{case}");
        assert_eq!(s.take_stamp(), None, "{case}");
        assert_eq!(s.resync_bytes, 0, "{case}");
    }

    #[test]
    fn finds_stamps_that_span_packet_boundaries() {
        // 184 - 14 = 170 payload bytes after the PES header fit in the first packet; stamps
        // starting near there straddle two packets.
        for stamp_at in [0, 150, 160, 166, 170, 300] {
            for af in [0, 8] {
                for piece in [1, 100, 188, 4096] {
                    check(stamp_at, af, piece);
                }
            }
        }
    }

    #[test]
    fn regains_sync_after_garbage() {
        let mut data = vec![1, 2, 3];
        data.extend(packets(0x101, &video_pes(0), 0));
        let mut s = TsScanner::default();
        s.feed(&data);
        s.finish();
        assert_eq!((s.frames, s.resync_bytes), (1, 3));
        assert!(s.take_stamp().is_some());
    }
}
