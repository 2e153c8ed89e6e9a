//! A streaming FLV framer for HTTP-FLV bodies: it walks tag headers and counts, copying only
//! the first [`HEAD_CAP`] bytes of each video tag (where the latency stamp sits).

use crate::{sei, ViewError};

/// Bytes of each video tag body kept for the stamp scan: the AVC header, AUD, SPS, PPS and
/// our SEI all fit well inside.
pub const HEAD_CAP: usize = 512;
/// Largest FLV header `DataOffset` accepted (the spec's is 9).
const MAX_DATA_OFFSET: usize = 1024;
const FILE_HEADER_LEN: usize = 9;
const TAG_HEADER_LEN: usize = 11;
const PREVIOUS_TAG_SIZE_LEN: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    FileHeader,
    Skip,
    TagHeader,
    Body,
}

/// Counts media bytes and video tags in an FLV byte stream fed in arbitrary pieces.
#[derive(Debug)]
pub struct FlvScanner {
    state: State,
    header: [u8; TAG_HEADER_LEN],
    header_len: usize,
    skip: usize,
    body_left: usize,
    tag_type: u8,
    head: Vec<u8>,
    /// Set by the caller when it wants the next stamp found.
    pub want_stamp: bool,
    /// Audio and video tag body bytes so far.
    pub media_bytes: u64,
    /// Complete video tags so far.
    pub video_tags: u64,
    /// The most recent stamp found while `want_stamp` was set; taken by the caller.
    pub stamp: Option<u64>,
}

impl Default for FlvScanner {
    fn default() -> Self {
        FlvScanner {
            state: State::FileHeader,
            header: [0; TAG_HEADER_LEN],
            header_len: 0,
            skip: 0,
            body_left: 0,
            tag_type: 0,
            head: Vec::with_capacity(HEAD_CAP),
            want_stamp: false,
            media_bytes: 0,
            video_tags: 0,
            stamp: None,
        }
    }
}

impl FlvScanner {
    /// Consumes `data`; an error means the stream is not FLV.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), ViewError> {
        while !data.is_empty() {
            data = match self.state {
                State::FileHeader | State::TagHeader => self.header_bytes(data)?,
                State::Skip => {
                    let n = self.skip.min(data.len());
                    self.skip -= n;
                    if self.skip == 0 {
                        self.state = State::TagHeader;
                    }
                    &data[n..]
                }
                State::Body => self.body(data),
            };
        }
        Ok(())
    }

    fn header_bytes<'a>(&mut self, data: &'a [u8]) -> Result<&'a [u8], ViewError> {
        let want = if self.state == State::FileHeader {
            FILE_HEADER_LEN
        } else {
            TAG_HEADER_LEN
        };
        let n = (want - self.header_len).min(data.len());
        self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
        self.header_len += n;
        if self.header_len == want {
            self.header_len = 0;
            if self.state == State::FileHeader {
                self.file_header()?;
            } else {
                self.tag_header();
            }
        }
        Ok(&data[n..])
    }

    fn file_header(&mut self) -> Result<(), ViewError> {
        let h = &self.header;
        if &h[..3] != b"FLV" {
            return Err(ViewError::Protocol(format!(
                "HTTP-FLV body does not start with FLV: {:02x?}",
                &h[..3]
            )));
        }
        let offset = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) as usize;
        if !(FILE_HEADER_LEN..=MAX_DATA_OFFSET).contains(&offset) {
            return Err(ViewError::Protocol(format!("FLV DataOffset {offset}")));
        }
        self.skip = offset - FILE_HEADER_LEN + PREVIOUS_TAG_SIZE_LEN;
        self.state = State::Skip;
        Ok(())
    }

    fn tag_header(&mut self) {
        let h = &self.header;
        self.tag_type = h[0] & 0x1f;
        self.body_left = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
        self.head.clear();
        self.state = State::Body;
        if self.body_left == 0 {
            self.end_tag();
        }
    }

    fn body<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        let n = self.body_left.min(data.len());
        if self.tag_type == 9 && self.want_stamp && self.head.len() < HEAD_CAP {
            let take = n.min(HEAD_CAP - self.head.len());
            self.head.extend_from_slice(&data[..take]);
        }
        if matches!(self.tag_type, 8 | 9) {
            self.media_bytes += n as u64;
        }
        self.body_left -= n;
        if self.body_left == 0 {
            self.end_tag();
        }
        &data[n..]
    }

    fn end_tag(&mut self) {
        if self.tag_type == 9 {
            self.video_tags += 1;
            if self.want_stamp {
                if let Some(t) = sei::find(&self.head) {
                    self.stamp = Some(t);
                }
            }
        }
        self.skip = PREVIOUS_TAG_SIZE_LEN;
        self.state = State::Skip;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Vec<u8> {
        let mut out = flv::writer::file_header(true, true).to_vec();
        let video = sei::stamp_flv_video(&[0x27, 1, 0, 0, 0, 0, 0, 0, 2, 0x41, 0], 4, 77)
            .expect("an AVC NALU tag");
        for (t, body) in [(18, &b"meta"[..]), (8, &[0xaf, 1, 5][..]), (9, &video[..])] {
            out.extend_from_slice(&flv::writer::encode_tag(t, 40, body));
        }
        out
    }

    #[test]
    fn counts_and_finds_the_stamp_in_any_split() {
        let data = stream();
        for piece in [1, 2, 7, 11, 100, data.len()] {
            let mut s = FlvScanner {
                want_stamp: true,
                ..Default::default()
            };
            for chunk in data.chunks(piece) {
                s.feed(chunk).expect("valid FLV");
            }
            assert_eq!(s.video_tags, 1, "piece {piece}");
            assert_eq!(
                s.media_bytes,
                3 + 11 + 4 + sei::NAL_LEN as u64,
                "piece {piece}"
            );
            assert_eq!(s.stamp, Some(77), "piece {piece}");
        }
    }

    #[test]
    fn rejects_what_is_not_flv() {
        let mut s = FlvScanner::default();
        assert!(s.feed(b"HTTP/1.1 200 OK\r\n").is_err());
    }
}
