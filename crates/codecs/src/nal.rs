//! NAL unit framing shared by H.264 and H.265: length-prefixed samples (ISO 14496-15
//! "AVCC"/"HVCC" form, as carried in FLV and MP4) and Annex B byte streams (start codes,
//! as carried in MPEG-TS and raw `.h264` files).

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// The four-byte Annex B start code written before every NAL unit.
pub const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// The largest NAL length prefix, in bytes, that ISO 14496-15 allows (`lengthSizeMinusOne` = 3).
pub const MAX_NAL_LENGTH_SIZE: u8 = 4;

/// An error in NAL unit framing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NalError {
    /// The NAL length prefix size is not 1 to 4 bytes.
    #[error("invalid NAL length size {0}; ISO 14496-15 allows 1, 2 or 4 bytes")]
    LengthSize(u8),
    /// The sample ended inside a length prefix.
    #[error("NAL length prefix at offset {offset} truncated: {remaining} bytes left, prefix is {length_size}")]
    PrefixTruncated {
        /// Byte offset of the prefix within the sample.
        offset: usize,
        /// Bytes left in the sample at that offset.
        remaining: usize,
        /// The configured prefix size.
        length_size: u8,
    },
    /// A length prefix claims more bytes than the sample holds.
    #[error("NAL unit at offset {offset} claims {len} bytes but only {remaining} remain")]
    UnitTruncated {
        /// Byte offset of the NAL unit payload within the sample.
        offset: usize,
        /// The length the prefix claims.
        len: usize,
        /// Bytes actually left.
        remaining: usize,
    },
}

/// Iterates the NAL units of a length-prefixed sample (an FLV video tag's payload after its
/// header, or an MP4 sample).
///
/// Each item is a zero-copy slice of `sample` without its prefix. Zero-length units carry
/// nothing and are skipped. After the first error the iterator ends.
pub fn nal_units(sample: &Bytes, nal_length_size: u8) -> NalUnits {
    NalUnits {
        data: sample.clone(),
        pos: 0,
        length_size: nal_length_size,
        done: false,
    }
}

/// The iterator returned by [`nal_units`].
#[derive(Debug, Clone)]
pub struct NalUnits {
    data: Bytes,
    pos: usize,
    length_size: u8,
    done: bool,
}

impl NalUnits {
    fn next_unit(&mut self) -> Result<Option<Bytes>, NalError> {
        if !(1..=MAX_NAL_LENGTH_SIZE).contains(&self.length_size) {
            return Err(NalError::LengthSize(self.length_size));
        }
        let size = usize::from(self.length_size);
        loop {
            let remaining = self.data.len() - self.pos;
            if remaining == 0 {
                return Ok(None);
            }
            if remaining < size {
                return Err(NalError::PrefixTruncated {
                    offset: self.pos,
                    remaining,
                    length_size: self.length_size,
                });
            }
            let len = read_be(&self.data[self.pos..self.pos + size]);
            let start = self.pos + size;
            let left = self.data.len() - start;
            if len > left {
                return Err(NalError::UnitTruncated {
                    offset: start,
                    len,
                    remaining: left,
                });
            }
            self.pos = start + len;
            if len > 0 {
                return Ok(Some(self.data.slice(start..start + len)));
            }
        }
    }
}

impl Iterator for NalUnits {
    type Item = Result<Bytes, NalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_unit() {
            Ok(Some(nal)) => Some(Ok(nal)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

fn read_be(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
}

/// Appends one NAL unit in Annex B form (start code, then the unit).
pub fn write_annex_b(out: &mut BytesMut, nal: &[u8]) {
    out.reserve(START_CODE.len() + nal.len());
    out.put_slice(&START_CODE);
    out.put_slice(nal);
}

/// Appends one NAL unit with a big-endian length prefix of `nal_length_size` bytes.
///
/// Fails if the size is not 1 to 4 bytes or the unit does not fit the prefix.
pub fn write_length_prefixed(
    out: &mut BytesMut,
    nal: &[u8],
    nal_length_size: u8,
) -> Result<(), NalError> {
    if !(1..=MAX_NAL_LENGTH_SIZE).contains(&nal_length_size) {
        return Err(NalError::LengthSize(nal_length_size));
    }
    let size = usize::from(nal_length_size);
    if size < 4 && nal.len() >= 1usize << (8 * size) {
        return Err(NalError::UnitTruncated {
            offset: 0,
            len: nal.len(),
            remaining: (1usize << (8 * size)) - 1,
        });
    }
    let len = u32::try_from(nal.len()).map_err(|_| NalError::UnitTruncated {
        offset: 0,
        len: nal.len(),
        remaining: u32::MAX as usize,
    })?;
    out.reserve(size + nal.len());
    out.put_slice(&len.to_be_bytes()[4 - size..]);
    out.put_slice(nal);
    Ok(())
}

/// Converts a whole length-prefixed sample to Annex B, unit by unit, with no insertions.
pub fn length_prefixed_to_annex_b(
    sample: &Bytes,
    nal_length_size: u8,
    out: &mut BytesMut,
) -> Result<(), NalError> {
    for nal in nal_units(sample, nal_length_size) {
        write_annex_b(out, &nal?);
    }
    Ok(())
}

/// Splits an Annex B byte stream into NAL units (zero-copy slices without start codes).
///
/// Both three- and four-byte start codes are recognised; bytes before the first start
/// code are ignored, and trailing zero bytes of each unit (`trailing_zero_8bits`,
/// H.264 B.1) are trimmed.
pub fn annex_b_units(stream: &Bytes) -> AnnexBUnits {
    AnnexBUnits {
        data: stream.clone(),
        pos: find_start_code(stream, 0).map_or(stream.len(), |(_, end)| end),
    }
}

/// The iterator returned by [`annex_b_units`].
#[derive(Debug, Clone)]
pub struct AnnexBUnits {
    data: Bytes,
    pos: usize,
}

impl Iterator for AnnexBUnits {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        while self.pos < self.data.len() {
            let start = self.pos;
            let (end, next) =
                find_start_code(&self.data, start).unwrap_or((self.data.len(), self.data.len()));
            self.pos = next;
            let mut stop = end;
            while stop > start && self.data[stop - 1] == 0 {
                stop -= 1;
            }
            if stop > start {
                return Some(self.data.slice(start..stop));
            }
        }
        None
    }
}

/// Finds the next `00 00 01` at or after `from`; returns (its offset, offset after it).
fn find_start_code(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let hay = data.get(from..)?;
    hay.windows(3)
        .position(|w| w == [0, 0, 1])
        .map(|i| (from + i, from + i + 3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(sample: &[u8], size: u8, want: &[&[u8]], want_err: Option<NalError>) {
        let sample = Bytes::copy_from_slice(sample);
        let mut got = Vec::new();
        let mut err = None;
        for item in nal_units(&sample, size) {
            match item {
                Ok(nal) => got.push(nal.to_vec()),
                Err(e) => err = Some(e),
            }
        }
        let want: Vec<Vec<u8>> = want.iter().map(|s| s.to_vec()).collect();
        assert_eq!(got, want, "sample {sample:02x?}");
        assert_eq!(err, want_err, "sample {sample:02x?}");
    }

    #[test]
    fn length_prefixed_table() {
        check(
            &[0, 0, 0, 2, 0x65, 1, 0, 0, 0, 1, 0x41],
            4,
            &[&[0x65, 1], &[0x41]],
            None,
        );
        check(&[2, 0x67, 1, 1, 0x68], 1, &[&[0x67, 1], &[0x68]], None);
        check(&[0, 1, 0x09], 2, &[&[0x09]], None);
        check(&[0, 0, 0, 0, 0, 0, 0, 1, 9], 4, &[&[9]], None);
        check(&[], 4, &[], None);
        check(
            &[0, 0, 0, 5, 0x65, 1],
            4,
            &[],
            Some(NalError::UnitTruncated {
                offset: 4,
                len: 5,
                remaining: 2,
            }),
        );
        check(
            &[0, 0, 0, 1, 0x65, 0, 0],
            4,
            &[&[0x65]],
            Some(NalError::PrefixTruncated {
                offset: 5,
                remaining: 2,
                length_size: 4,
            }),
        );
        check(&[1, 2], 0, &[], Some(NalError::LengthSize(0)));
        check(&[1, 2], 5, &[], Some(NalError::LengthSize(5)));
    }

    #[test]
    fn annex_b_round_trip() {
        let sample = Bytes::from_static(&[
            0, 0, 0, 2, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0, 0, 0, 3, 0x65, 0, 1,
        ]);
        let mut annex_b = BytesMut::new();
        length_prefixed_to_annex_b(&sample, 4, &mut annex_b).unwrap();
        assert_eq!(
            &annex_b[..],
            &[0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0, 0, 0, 1, 0x65, 0, 1]
        );
        let units: Vec<Bytes> = annex_b_units(&annex_b.freeze()).collect();
        let mut back = BytesMut::new();
        for u in &units {
            write_length_prefixed(&mut back, u, 4).unwrap();
        }
        assert_eq!(back.freeze(), sample);
    }

    #[test]
    fn annex_b_split_table() {
        let cases: &[(&[u8], &[&[u8]])] = &[
            (
                &[0, 0, 1, 9, 0xf0, 0, 0, 0, 1, 0x67, 1],
                &[&[9, 0xf0], &[0x67, 1]],
            ),
            (&[0xff, 0, 0, 1, 0x65, 0, 0], &[&[0x65]]),
            (&[0, 0, 1], &[]),
            (&[1, 2, 3], &[]),
        ];
        for (stream, want) in cases {
            let got: Vec<Vec<u8>> = annex_b_units(&Bytes::copy_from_slice(stream))
                .map(|b| b.to_vec())
                .collect();
            let want: Vec<Vec<u8>> = want.iter().map(|s| s.to_vec()).collect();
            assert_eq!(got, want, "stream {stream:02x?}");
        }
    }

    #[test]
    fn prefix_too_small_for_unit_is_rejected() {
        let mut out = BytesMut::new();
        assert!(write_length_prefixed(&mut out, &[0u8; 256], 1).is_err());
        assert!(write_length_prefixed(&mut out, &[0u8; 255], 1).is_ok());
        assert_eq!(out[0], 255);
    }
}
