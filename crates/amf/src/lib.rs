//! Sans-IO codec for Action Message Format values, as carried in RTMP command
//! messages (types 20 and 17), RTMP data messages (types 18 and 15) and FLV
//! script tags.
//!
//! This crate turns bytes into [`Amf0Value`] / [`Amf3Value`] trees and back. It
//! does no I/O, knows nothing about RTMP framing, and never allocates more than
//! the input can justify: every count read from the wire is checked against
//! [`MAX_ELEMENTS`] and against the bytes that remain, and nesting is bounded by
//! [`MAX_DEPTH`].
//!
//! | spec | section | what is implemented |
//! |---|---|---|
//! | AMF0 File Format Specification (Adobe, 2007) | 2.1-2.18 | every marker except movieclip/recordset (reserved); `avmplus-object` (0x11) switches to AMF3 |
//! | AMF3 File Format Specification (Adobe, 2013) | 1.3, 3.1-3.14 | undefined, null, false, true, integer (U29), double, string, xml-doc, date, array, object (sealed, dynamic, externalizable rejected), xml, byte-array, with the string / object / traits reference tables |
//!
//! Not implemented: AMF3 vectors and dictionaries (markers 0x0D-0x11) and
//! externalizable objects; decoding them returns [`AmfError::Unsupported`],
//! which an RTMP session treats as a malformed command, not a fatal error.

mod amf0;
mod amf3;

pub use amf0::{decode_amf0, decode_amf0_all, encode_amf0, Amf0Decoder, Amf0Value};
pub use amf3::{decode_amf3, encode_amf3, Amf3Decoder, Amf3Encoder, Amf3Value};

/// Deepest nesting of containers (objects, arrays) accepted by a decoder.
///
/// Real RTMP commands nest two or three levels; the bound exists so that a
/// hostile peer cannot exhaust the stack with a deeply nested value.
pub const MAX_DEPTH: usize = 32;

/// Largest element count accepted for one container (object properties, array
/// entries) and the largest total number of values one top-level decode may
/// produce, including values cloned from AMF3 reference tables.
pub const MAX_ELEMENTS: usize = 65_536;

/// Errors produced while decoding AMF data.
///
/// Running out of input is an error here, not a "need more bytes" state: AMF
/// is always decoded from a complete RTMP message or FLV tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmfError {
    /// The input ended inside a value.
    #[error("AMF value truncated at byte {offset}")]
    Truncated {
        /// Byte offset where more input was needed.
        offset: usize,
    },
    /// A type marker this codec does not know.
    #[error("unknown AMF{version} marker 0x{marker:02x} at byte {offset}")]
    UnknownMarker {
        /// 0 or 3.
        version: u8,
        /// The marker byte.
        marker: u8,
        /// Byte offset of the marker.
        offset: usize,
    },
    /// A known marker whose value this codec deliberately does not decode.
    #[error("unsupported AMF{version} marker 0x{marker:02x} at byte {offset}")]
    Unsupported {
        /// 0 or 3.
        version: u8,
        /// The marker byte.
        marker: u8,
        /// Byte offset of the marker.
        offset: usize,
    },
    /// Containers nested deeper than [`MAX_DEPTH`].
    #[error("AMF nesting deeper than {MAX_DEPTH} at byte {offset}")]
    TooDeep {
        /// Byte offset where the limit was hit.
        offset: usize,
    },
    /// A container or a whole decode with more than [`MAX_ELEMENTS`] values.
    #[error("AMF element count {count} above limit {MAX_ELEMENTS} at byte {offset}")]
    TooManyElements {
        /// The count declared or reached.
        count: usize,
        /// Byte offset where the limit was hit.
        offset: usize,
    },
    /// A string that is not UTF-8.
    #[error("AMF string at byte {offset} is not UTF-8")]
    InvalidUtf8 {
        /// Byte offset of the string bytes.
        offset: usize,
    },
    /// An AMF3 reference to a table entry that does not exist (or is still
    /// being decoded, which would make the value cyclic).
    #[error("AMF3 {table} reference {index} out of range at byte {offset}")]
    BadReference {
        /// "string", "object" or "traits".
        table: &'static str,
        /// The index read from the wire.
        index: usize,
        /// Byte offset of the reference.
        offset: usize,
    },
    /// An AMF0 object body that is not closed by an object-end marker.
    #[error("AMF0 object property without an end marker at byte {offset}")]
    MissingObjectEnd {
        /// Byte offset where a value was expected.
        offset: usize,
    },
}

/// Errors produced while encoding AMF data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmfEncodeError {
    /// A string too long for its length prefix (16 bits for AMF0 short
    /// strings and property names, 28 bits for AMF3).
    #[error("string of {len} bytes does not fit its length prefix")]
    StringTooLong {
        /// The string's length in bytes.
        len: usize,
    },
    /// An AMF3 associative-array entry or dynamic member named "", which AMF3 cannot
    /// express: the empty name is the end-of-members marker.
    #[error("AMF3 member with an empty name (the empty name ends a member list)")]
    EmptyMemberName,
    /// A container with more entries than its length prefix can express.
    #[error("container of {len} entries does not fit its length prefix")]
    TooManyEntries {
        /// The entry count.
        len: usize,
    },
}

/// A little cursor over a byte slice shared by both decoders.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], AmfError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or(AmfError::Truncated { offset: self.pos })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    pub(crate) fn u8(&mut self) -> Result<u8, AmfError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, AmfError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, AmfError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn f64(&mut self) -> Result<f64, AmfError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    pub(crate) fn utf8(&mut self, n: usize) -> Result<String, AmfError> {
        let offset = self.pos;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| AmfError::InvalidUtf8 { offset })
    }
}
