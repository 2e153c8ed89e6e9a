//! AMF0 values (AMF0 File Format Specification, section 2).

use crate::amf3::{encode_amf3_into, Amf3Decoder, Amf3Value};
use crate::{AmfEncodeError, AmfError, Reader, MAX_DEPTH, MAX_ELEMENTS};

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
const MOVIECLIP: u8 = 0x04;
const NULL: u8 = 0x05;
const UNDEFINED: u8 = 0x06;
const REFERENCE: u8 = 0x07;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const STRICT_ARRAY: u8 = 0x0A;
const DATE: u8 = 0x0B;
const LONG_STRING: u8 = 0x0C;
const UNSUPPORTED: u8 = 0x0D;
const RECORDSET: u8 = 0x0E;
const XML_DOCUMENT: u8 = 0x0F;
const TYPED_OBJECT: u8 = 0x10;
const AVMPLUS_OBJECT: u8 = 0x11;

/// One AMF0 value. Object-like values keep their properties in wire order,
/// because some peers (and our golden tests) care about the order.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0Value {
    /// IEEE-754 double (2.2).
    Number(f64),
    /// Boolean (2.3).
    Boolean(bool),
    /// UTF-8 string; encoded as a short string (2.4) when it fits in 16 bits,
    /// otherwise as a long string (2.14).
    String(String),
    /// Anonymous object (2.5).
    Object(Vec<(String, Amf0Value)>),
    /// Null (2.7).
    Null,
    /// Undefined (2.8).
    Undefined,
    /// Reference to an earlier complex value by index (2.9); kept as is.
    Reference(u16),
    /// ECMA (associative) array (2.10); the count on the wire is only a hint.
    EcmaArray(Vec<(String, Amf0Value)>),
    /// Strict (dense) array (2.12).
    StrictArray(Vec<Amf0Value>),
    /// Date (2.13): milliseconds since the epoch and a time zone that the
    /// spec says must be 0 (kept so that round trips are exact).
    Date {
        /// Milliseconds since 1970-01-01 UTC.
        millis: f64,
        /// Reserved time zone field.
        time_zone: i16,
    },
    /// A string explicitly marked as long (2.14).
    LongString(String),
    /// The `unsupported` marker (2.15).
    Unsupported,
    /// XML document (2.17), a long string body.
    XmlDocument(String),
    /// Typed object (2.18): a class name and properties.
    TypedObject {
        /// The registered class name.
        class_name: String,
        /// Properties in wire order.
        properties: Vec<(String, Amf0Value)>,
    },
    /// An AMF3 value introduced by the `avmplus-object` marker (3.1).
    Amf3(Amf3Value),
}

impl Amf0Value {
    /// Returns the string if this is a string-like value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) | Amf0Value::LongString(s) => Some(s),
            Amf0Value::Amf3(Amf3Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// Returns the number if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            Amf0Value::Amf3(Amf3Value::Double(n)) => Some(*n),
            Amf0Value::Amf3(Amf3Value::Integer(n)) => Some(f64::from(*n)),
            _ => None,
        }
    }

    /// Returns the property list of an object, ECMA array or typed object.
    pub fn properties(&self) -> Option<&[(String, Amf0Value)]> {
        match self {
            Amf0Value::Object(p) | Amf0Value::EcmaArray(p) => Some(p),
            Amf0Value::TypedObject { properties, .. } => Some(properties),
            _ => None,
        }
    }

    /// Looks a property up by name in an object-like value.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Builds an anonymous object from `(name, value)` pairs.
    pub fn object<I, K>(props: I) -> Amf0Value
    where
        I: IntoIterator<Item = (K, Amf0Value)>,
        K: Into<String>,
    {
        Amf0Value::Object(props.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

impl From<&str> for Amf0Value {
    fn from(s: &str) -> Self {
        Amf0Value::String(s.to_owned())
    }
}

impl From<f64> for Amf0Value {
    fn from(n: f64) -> Self {
        Amf0Value::Number(n)
    }
}

impl From<bool> for Amf0Value {
    fn from(b: bool) -> Self {
        Amf0Value::Boolean(b)
    }
}

/// Decodes a sequence of AMF0 values from one buffer.
#[derive(Debug, Clone)]
pub struct Amf0Decoder<'a> {
    r: Reader<'a>,
    elements: usize,
}

impl<'a> Amf0Decoder<'a> {
    /// Creates a decoder over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Amf0Decoder {
            r: Reader::new(buf),
            elements: 0,
        }
    }

    /// True when every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.r.remaining() == 0
    }

    /// The number of bytes consumed so far.
    pub fn position(&self) -> usize {
        self.r.pos()
    }

    /// Decodes the next value, or returns `Ok(None)` at the end of the input.
    pub fn next_value(&mut self) -> Result<Option<Amf0Value>, AmfError> {
        if self.is_empty() {
            return Ok(None);
        }
        self.value(0).map(Some)
    }

    fn count(&mut self, n: usize) -> Result<(), AmfError> {
        self.elements = self.elements.saturating_add(n);
        if self.elements > MAX_ELEMENTS {
            return Err(AmfError::TooManyElements {
                count: self.elements,
                offset: self.r.pos(),
            });
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Amf0Value, AmfError> {
        if depth > MAX_DEPTH {
            return Err(AmfError::TooDeep {
                offset: self.r.pos(),
            });
        }
        self.count(1)?;
        let offset = self.r.pos();
        let marker = self.r.u8()?;
        Ok(match marker {
            NUMBER => Amf0Value::Number(self.r.f64()?),
            BOOLEAN => Amf0Value::Boolean(self.r.u8()? != 0),
            STRING => Amf0Value::String(self.short_string()?),
            OBJECT => Amf0Value::Object(self.properties(depth)?),
            NULL => Amf0Value::Null,
            UNDEFINED => Amf0Value::Undefined,
            REFERENCE => Amf0Value::Reference(self.r.u16()?),
            ECMA_ARRAY => {
                // The count is only a hint (2.10): encoders such as ffmpeg write
                // it, but the array still ends with an object-end marker.
                let _hint = self.r.u32()?;
                Amf0Value::EcmaArray(self.properties(depth)?)
            }
            STRICT_ARRAY => Amf0Value::StrictArray(self.strict_array(depth)?),
            DATE => Amf0Value::Date {
                millis: self.r.f64()?,
                time_zone: self.r.u16()? as i16,
            },
            LONG_STRING => Amf0Value::LongString(self.long_string()?),
            UNSUPPORTED => Amf0Value::Unsupported,
            XML_DOCUMENT => Amf0Value::XmlDocument(self.long_string()?),
            TYPED_OBJECT => Amf0Value::TypedObject {
                class_name: self.short_string()?,
                properties: self.properties(depth)?,
            },
            AVMPLUS_OBJECT => self.avmplus(depth)?,
            MOVIECLIP | RECORDSET => {
                return Err(AmfError::Unsupported {
                    version: 0,
                    marker,
                    offset,
                })
            }
            _ => {
                return Err(AmfError::UnknownMarker {
                    version: 0,
                    marker,
                    offset,
                })
            }
        })
    }

    fn short_string(&mut self) -> Result<String, AmfError> {
        let len = usize::from(self.r.u16()?);
        self.r.utf8(len)
    }

    fn long_string(&mut self) -> Result<String, AmfError> {
        let len = self.r.u32()? as usize;
        self.r.utf8(len)
    }

    /// Reads `name value` pairs up to the empty-name + object-end terminator.
    fn properties(&mut self, depth: usize) -> Result<Vec<(String, Amf0Value)>, AmfError> {
        let mut props = Vec::new();
        loop {
            let name = self.short_string()?;
            if name.is_empty() && self.r.peek() == Some(OBJECT_END) {
                self.r.u8()?;
                return Ok(props);
            }
            if self.r.peek().is_none() {
                return Err(AmfError::MissingObjectEnd {
                    offset: self.r.pos(),
                });
            }
            let value = self.value(depth + 1)?;
            props.push((name, value));
        }
    }

    fn strict_array(&mut self, depth: usize) -> Result<Vec<Amf0Value>, AmfError> {
        let offset = self.r.pos();
        let count = self.r.u32()? as usize;
        // Every element takes at least one byte, so a count above the bytes
        // left is a lie; check it before reserving anything.
        if count > MAX_ELEMENTS || count > self.r.remaining() {
            return Err(AmfError::TooManyElements { count, offset });
        }
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(self.value(depth + 1)?);
        }
        Ok(items)
    }

    fn avmplus(&mut self, depth: usize) -> Result<Amf0Value, AmfError> {
        // Each avmplus-object starts a fresh AMF3 context (AMF0 spec 3.1).
        let start = self.r.pos();
        let budget = MAX_ELEMENTS.saturating_sub(self.elements);
        let mut d3 = Amf3Decoder::with_budget(self.r.rest(), depth, budget);
        let v = d3.next_value().map_err(|e| shift_offset(e, start))?;
        self.count(d3.elements())?;
        self.r.take(d3.position())?;
        Ok(Amf0Value::Amf3(v))
    }
}

fn shift_offset(e: AmfError, by: usize) -> AmfError {
    use AmfError::*;
    match e {
        Truncated { offset } => Truncated {
            offset: offset + by,
        },
        UnknownMarker {
            version,
            marker,
            offset,
        } => UnknownMarker {
            version,
            marker,
            offset: offset + by,
        },
        Unsupported {
            version,
            marker,
            offset,
        } => Unsupported {
            version,
            marker,
            offset: offset + by,
        },
        TooDeep { offset } => TooDeep {
            offset: offset + by,
        },
        TooManyElements { count, offset } => TooManyElements {
            count,
            offset: offset + by,
        },
        InvalidUtf8 { offset } => InvalidUtf8 {
            offset: offset + by,
        },
        BadReference {
            table,
            index,
            offset,
        } => BadReference {
            table,
            index,
            offset: offset + by,
        },
        MissingObjectEnd { offset } => MissingObjectEnd {
            offset: offset + by,
        },
    }
}

/// Decodes one AMF0 value from the start of `buf`, returning it and the
/// number of bytes it used.
pub fn decode_amf0(buf: &[u8]) -> Result<(Amf0Value, usize), AmfError> {
    let mut d = Amf0Decoder::new(buf);
    let v = d.value(0)?;
    Ok((v, d.position()))
}

/// Decodes every AMF0 value in `buf` (an RTMP command or data message body).
pub fn decode_amf0_all(buf: &[u8]) -> Result<Vec<Amf0Value>, AmfError> {
    let mut d = Amf0Decoder::new(buf);
    let mut out = Vec::new();
    while let Some(v) = d.next_value()? {
        out.push(v);
    }
    Ok(out)
}

/// Appends the AMF0 encoding of `value` to `out`.
pub fn encode_amf0(value: &Amf0Value, out: &mut Vec<u8>) -> Result<(), AmfEncodeError> {
    match value {
        Amf0Value::Number(n) => {
            out.push(NUMBER);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Amf0Value::Boolean(b) => out.extend_from_slice(&[BOOLEAN, u8::from(*b)]),
        Amf0Value::String(s) if s.len() <= usize::from(u16::MAX) => {
            out.push(STRING);
            put_short_string(s, out)?;
        }
        Amf0Value::String(s) | Amf0Value::LongString(s) => {
            out.push(LONG_STRING);
            put_long_string(s, out)?;
        }
        Amf0Value::Object(p) => {
            out.push(OBJECT);
            put_properties(p, out)?;
        }
        Amf0Value::Null => out.push(NULL),
        Amf0Value::Undefined => out.push(UNDEFINED),
        Amf0Value::Reference(i) => {
            out.push(REFERENCE);
            out.extend_from_slice(&i.to_be_bytes());
        }
        Amf0Value::EcmaArray(p) => {
            out.push(ECMA_ARRAY);
            out.extend_from_slice(&len_u32(p.len())?.to_be_bytes());
            put_properties(p, out)?;
        }
        Amf0Value::StrictArray(items) => {
            out.push(STRICT_ARRAY);
            out.extend_from_slice(&len_u32(items.len())?.to_be_bytes());
            for item in items {
                encode_amf0(item, out)?;
            }
        }
        Amf0Value::Date { millis, time_zone } => {
            out.push(DATE);
            out.extend_from_slice(&millis.to_be_bytes());
            out.extend_from_slice(&time_zone.to_be_bytes());
        }
        Amf0Value::Unsupported => out.push(UNSUPPORTED),
        Amf0Value::XmlDocument(s) => {
            out.push(XML_DOCUMENT);
            put_long_string(s, out)?;
        }
        Amf0Value::TypedObject {
            class_name,
            properties,
        } => {
            out.push(TYPED_OBJECT);
            put_short_string(class_name, out)?;
            put_properties(properties, out)?;
        }
        Amf0Value::Amf3(v) => {
            out.push(AVMPLUS_OBJECT);
            encode_amf3_into(v, out)?;
        }
    }
    Ok(())
}

fn len_u32(len: usize) -> Result<u32, AmfEncodeError> {
    u32::try_from(len).map_err(|_| AmfEncodeError::TooManyEntries { len })
}

fn put_short_string(s: &str, out: &mut Vec<u8>) -> Result<(), AmfEncodeError> {
    let len = u16::try_from(s.len()).map_err(|_| AmfEncodeError::StringTooLong { len: s.len() })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_long_string(s: &str, out: &mut Vec<u8>) -> Result<(), AmfEncodeError> {
    let len = u32::try_from(s.len()).map_err(|_| AmfEncodeError::StringTooLong { len: s.len() })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_properties(p: &[(String, Amf0Value)], out: &mut Vec<u8>) -> Result<(), AmfEncodeError> {
    for (k, v) in p {
        put_short_string(k, out)?;
        encode_amf0(v, out)?;
    }
    out.extend_from_slice(&[0, 0, OBJECT_END]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bytes: &[u8], want: Amf0Value) {
        let (got, used) = decode_amf0(bytes).expect("decodes");
        assert_eq!(got, want);
        assert_eq!(used, bytes.len());
        let mut enc = Vec::new();
        encode_amf0(&want, &mut enc).expect("encodes");
        assert_eq!(enc, bytes, "re-encoding {want:?}");
    }

    #[test]
    fn table() {
        let obj_bytes = [
            &[OBJECT, 0, 1, b'a', NUMBER][..],
            &1.0f64.to_be_bytes(),
            &[0, 0, OBJECT_END],
        ]
        .concat();
        let cases: Vec<(Vec<u8>, Amf0Value)> = vec![
            (
                [&[NUMBER][..], &2.5f64.to_be_bytes()].concat(),
                Amf0Value::Number(2.5),
            ),
            (vec![BOOLEAN, 1], Amf0Value::Boolean(true)),
            (vec![STRING, 0, 2, b'h', b'i'], "hi".into()),
            (vec![NULL], Amf0Value::Null),
            (vec![UNDEFINED], Amf0Value::Undefined),
            (vec![REFERENCE, 0, 7], Amf0Value::Reference(7)),
            (
                obj_bytes,
                Amf0Value::object([("a", Amf0Value::Number(1.0))]),
            ),
            (
                vec![ECMA_ARRAY, 0, 0, 0, 1, 0, 1, b'k', NULL, 0, 0, OBJECT_END],
                Amf0Value::EcmaArray(vec![("k".into(), Amf0Value::Null)]),
            ),
            (
                vec![STRICT_ARRAY, 0, 0, 0, 2, NULL, UNDEFINED],
                Amf0Value::StrictArray(vec![Amf0Value::Null, Amf0Value::Undefined]),
            ),
            (
                [&[DATE][..], &0.0f64.to_be_bytes(), &[0, 0]].concat(),
                Amf0Value::Date {
                    millis: 0.0,
                    time_zone: 0,
                },
            ),
            (
                vec![LONG_STRING, 0, 0, 0, 1, b'x'],
                Amf0Value::LongString("x".into()),
            ),
            (
                vec![XML_DOCUMENT, 0, 0, 0, 1, b'x'],
                Amf0Value::XmlDocument("x".into()),
            ),
            (
                vec![TYPED_OBJECT, 0, 1, b'C', 0, 0, OBJECT_END],
                Amf0Value::TypedObject {
                    class_name: "C".into(),
                    properties: vec![],
                },
            ),
            (
                vec![AVMPLUS_OBJECT, 0x04, 0x05],
                Amf0Value::Amf3(Amf3Value::Integer(5)),
            ),
        ];
        for (bytes, want) in cases {
            check(&bytes, want);
        }
    }

    #[test]
    fn errors() {
        let deep: Vec<u8> = std::iter::repeat_n([STRICT_ARRAY, 0, 0, 0, 1], MAX_DEPTH + 2)
            .flatten()
            .chain([NULL])
            .collect();
        let cases: Vec<(&[u8], AmfError)> = vec![
            (&[NUMBER, 0, 0], AmfError::Truncated { offset: 1 }),
            (
                &[0x42],
                AmfError::UnknownMarker {
                    version: 0,
                    marker: 0x42,
                    offset: 0,
                },
            ),
            (
                &[MOVIECLIP],
                AmfError::Unsupported {
                    version: 0,
                    marker: 4,
                    offset: 0,
                },
            ),
            (
                &[STRICT_ARRAY, 0xff, 0xff, 0xff, 0xff],
                AmfError::TooManyElements {
                    count: u32::MAX as usize,
                    offset: 1,
                },
            ),
            (&[STRING, 0, 1, 0xff], AmfError::InvalidUtf8 { offset: 3 }),
            (
                &[OBJECT, 0, 1, b'a'],
                AmfError::MissingObjectEnd { offset: 4 },
            ),
            (
                &deep,
                AmfError::TooDeep {
                    offset: (MAX_DEPTH + 1) * 5,
                },
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(decode_amf0(bytes).unwrap_err(), want, "{bytes:02x?}");
        }
    }

    #[test]
    fn ffmpeg_connect_command_decodes() {
        let mut body = Vec::new();
        for v in [
            Amf0Value::from("connect"),
            Amf0Value::Number(1.0),
            Amf0Value::object([
                ("app", Amf0Value::from("live")),
                ("type", "nonprivate".into()),
                ("tcUrl", "rtmp://127.0.0.1:1935/live".into()),
            ]),
        ] {
            encode_amf0(&v, &mut body).expect("encodes");
        }
        let vals = decode_amf0_all(&body).expect("decodes");
        assert_eq!(vals.len(), 3);
        assert_eq!(vals[0].as_str(), Some("connect"));
        assert_eq!(vals[2].get("app").and_then(Amf0Value::as_str), Some("live"));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn leaf() -> impl Strategy<Value = Amf0Value> {
        prop_oneof![
            any::<f64>()
                .prop_filter("NaN breaks equality", |f| !f.is_nan())
                .prop_map(Amf0Value::Number),
            any::<bool>().prop_map(Amf0Value::Boolean),
            ".{0,12}".prop_map(Amf0Value::String),
            Just(Amf0Value::Null),
            Just(Amf0Value::Undefined),
            any::<u16>().prop_map(Amf0Value::Reference),
            ".{0,12}".prop_map(Amf0Value::LongString),
            ".{0,12}".prop_map(Amf0Value::XmlDocument),
        ]
    }

    pub(crate) fn value() -> impl Strategy<Value = Amf0Value> {
        leaf().prop_recursive(4, 64, 6, |inner| {
            let props = prop::collection::vec(("[a-z]{1,6}", inner.clone()), 0..6);
            prop_oneof![
                props.clone().prop_map(Amf0Value::Object),
                props.clone().prop_map(Amf0Value::EcmaArray),
                prop::collection::vec(inner, 0..6).prop_map(Amf0Value::StrictArray),
                ("[A-Z][a-z]{0,5}", props).prop_map(|(class_name, properties)| {
                    Amf0Value::TypedObject {
                        class_name,
                        properties,
                    }
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trip(v in value()) {
            let mut enc = Vec::new();
            encode_amf0(&v, &mut enc).expect("encodes");
            let (got, used) = decode_amf0(&enc).expect("decodes");
            prop_assert_eq!(used, enc.len());
            prop_assert_eq!(got, v);
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_amf0_all(&bytes);
        }
    }
}
