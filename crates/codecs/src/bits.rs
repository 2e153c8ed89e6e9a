//! A big-endian bit reader with Exp-Golomb decoding, and RBSP unescaping.
//!
//! H.264 (ITU-T H.264 7.2, 9.1) and H.265 (ITU-T H.265 7.2, 9.2) parameter sets are
//! bit-packed with `u(n)`, `ue(v)` and `se(v)` fields; AAC's AudioSpecificConfig
//! (ISO 14496-3 1.6.2.1) uses plain `u(n)` fields. Both use this reader.

use thiserror::Error;

/// An error while reading a bit-packed structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum BitError {
    /// The structure ended before a field did.
    #[error("bitstream ended at bit {bit_offset} while reading {wanted} more bits")]
    EndOfData {
        /// Bit offset (from the start of the structure) of the failed read.
        bit_offset: usize,
        /// How many bits the read wanted.
        wanted: usize,
    },
    /// An Exp-Golomb code had more than 31 leading zero bits, so its value exceeds `u32`.
    #[error("Exp-Golomb code at bit {bit_offset} has more than 31 leading zeros")]
    ExpGolombOverflow {
        /// Bit offset of the code's first bit.
        bit_offset: usize,
    },
}

/// Reads bits most-significant first from a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// Starts reading at the first bit of `data`.
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// Returns how many bits remain unread.
    pub(crate) fn bits_left(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    fn need(&self, n: usize) -> Result<(), BitError> {
        if self.bits_left() < n {
            return Err(BitError::EndOfData {
                bit_offset: self.pos,
                wanted: n,
            });
        }
        Ok(())
    }

    /// Reads one bit as a flag.
    pub(crate) fn read_bit(&mut self) -> Result<bool, BitError> {
        self.need(1)?;
        let byte = self.data[self.pos / 8];
        let bit = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// Reads `n` bits (at most 64) as an unsigned integer.
    pub(crate) fn read_u64(&mut self, n: usize) -> Result<u64, BitError> {
        debug_assert!(n <= 64, "read_u64 reads at most 64 bits");
        self.need(n)?;
        let mut value = 0u64;
        for _ in 0..n {
            value = (value << 1) | u64::from(self.read_bit()?);
        }
        Ok(value)
    }

    /// Reads `n` bits (at most 32) as an unsigned integer.
    pub(crate) fn read_bits(&mut self, n: usize) -> Result<u32, BitError> {
        debug_assert!(n <= 32, "read_bits reads at most 32 bits");
        // The cast cannot truncate because at most 32 bits were read.
        Ok(self.read_u64(n)? as u32)
    }

    /// Reads `n` bits (at most 8) as a byte.
    pub(crate) fn read_u8(&mut self, n: usize) -> Result<u8, BitError> {
        debug_assert!(n <= 8, "read_u8 reads at most 8 bits");
        Ok(self.read_u64(n)? as u8)
    }

    /// Skips `n` bits.
    pub(crate) fn skip(&mut self, n: usize) -> Result<(), BitError> {
        self.need(n)?;
        self.pos += n;
        Ok(())
    }

    /// Reads an unsigned Exp-Golomb code, `ue(v)` (H.264 9.1).
    pub(crate) fn read_ue(&mut self) -> Result<u32, BitError> {
        let start = self.pos;
        let mut zeros = 0usize;
        while !self.read_bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err(BitError::ExpGolombOverflow { bit_offset: start });
            }
        }
        let suffix = self.read_u64(zeros)?;
        let value = (1u64 << zeros) - 1 + suffix;
        u32::try_from(value).map_err(|_| BitError::ExpGolombOverflow { bit_offset: start })
    }

    /// Reads a signed Exp-Golomb code, `se(v)` (H.264 9.1.1).
    pub(crate) fn read_se(&mut self) -> Result<i32, BitError> {
        let k = i64::from(self.read_ue()?);
        let value = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        // |value| <= 2^31, and only +2^31 does not fit; clamp that one pathological code.
        Ok(value.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
    }
}

/// Removes emulation-prevention bytes (`00 00 03` becomes `00 00`), turning a NAL unit
/// payload into its RBSP (H.264 7.4.1, H.265 7.4.2).
pub(crate) fn unescape_rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0usize;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_table() {
        // (bits, expected ue values in order). Codes from H.264 Table 9-2.
        let cases: &[(&[u8], &[u32])] = &[
            (&[0b1000_0000], &[0]),
            (&[0b0100_0000], &[1]),
            (&[0b0110_0000], &[2]),
            (&[0b0010_0000], &[3]),
            (&[0b0011_1000], &[6]),
            (&[0b1010_0110, 0b0000_0000], &[0, 1, 2]),
        ];
        for (bits, want) in cases {
            let mut r = BitReader::new(bits);
            let got: Vec<u32> = want.iter().map(|_| r.read_ue().unwrap()).collect();
            assert_eq!(&got[..], *want, "bits {bits:02x?}");
        }
    }

    #[test]
    fn signed_exp_golomb() {
        // ue 1 -> +1, ue 2 -> -1, ue 3 -> +2, ue 4 -> -2 (H.264 Table 9-3).
        let mut r = BitReader::new(&[0b0100_1100, 0b1000_0101, 0]);
        let got: Vec<i32> = (0..4).map(|_| r.read_se().unwrap()).collect();
        assert_eq!(got, vec![1, -1, 2, -2]);
    }

    #[test]
    fn reads_past_end_fail_cleanly() {
        let mut r = BitReader::new(&[0xff]);
        assert_eq!(r.read_bits(8), Ok(0xff));
        assert_eq!(
            r.read_bit(),
            Err(BitError::EndOfData {
                bit_offset: 8,
                wanted: 1
            })
        );
        let mut zeros = BitReader::new(&[0; 8]);
        assert!(matches!(
            zeros.read_ue(),
            Err(BitError::ExpGolombOverflow { .. })
        ));
    }

    #[test]
    fn rbsp_unescape_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (&[0, 0, 3, 1], &[0, 0, 1]),
            (&[0, 0, 3, 0, 0, 3], &[0, 0, 0, 0]),
            (&[1, 0, 3], &[1, 0, 3]),
            (&[0, 0, 0, 3], &[0, 0, 0]),
        ];
        for (input, want) in cases {
            assert_eq!(unescape_rbsp(input), *want, "input {input:02x?}");
        }
    }
}
