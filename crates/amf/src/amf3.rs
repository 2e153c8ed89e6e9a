//! AMF3 values (AMF3 File Format Specification, section 3).
//!
//! The decoder resolves string, object and traits references into values, so
//! callers see plain trees. Because a reference clones a subtree, every clone
//! is charged against the decode's element budget ([`crate::MAX_ELEMENTS`]),
//! which stops a few bytes of references from expanding into gigabytes. A
//! reference to an object that is still being decoded (a cycle) is rejected.

use std::collections::HashMap;

use crate::{AmfEncodeError, AmfError, Reader, MAX_DEPTH, MAX_ELEMENTS};

const UNDEFINED: u8 = 0x00;
const NULL: u8 = 0x01;
const FALSE: u8 = 0x02;
const TRUE: u8 = 0x03;
const INTEGER: u8 = 0x04;
const DOUBLE: u8 = 0x05;
const STRING: u8 = 0x06;
const XML_DOC: u8 = 0x07;
const DATE: u8 = 0x08;
const ARRAY: u8 = 0x09;
const OBJECT: u8 = 0x0A;
const XML: u8 = 0x0B;
const BYTE_ARRAY: u8 = 0x0C;
const DICTIONARY: u8 = 0x11;

/// Largest value a U29 can hold (1.3.1).
const U29_MAX: u32 = (1 << 29) - 1;
/// Integers outside this range are encoded as doubles (3.6).
const INT_MIN: i32 = -(1 << 28);
const INT_MAX: i32 = (1 << 28) - 1;

/// One AMF3 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf3Value {
    /// undefined (3.2).
    Undefined,
    /// null (3.3).
    Null,
    /// false / true (3.4, 3.5).
    Boolean(bool),
    /// 29-bit signed integer (3.6).
    Integer(i32),
    /// IEEE-754 double (3.7).
    Double(f64),
    /// UTF-8 string (3.8).
    String(String),
    /// Legacy XMLDocument (3.9).
    XmlDocument(String),
    /// Date in milliseconds since the epoch (3.10).
    Date(f64),
    /// Array with an associative part and a dense part (3.11).
    Array {
        /// Named entries in wire order.
        assoc: Vec<(String, Amf3Value)>,
        /// Dense entries.
        dense: Vec<Amf3Value>,
    },
    /// Object (3.12): sealed members named by its traits, then dynamic members.
    Object {
        /// Class name; empty for anonymous objects.
        class_name: String,
        /// Sealed members in traits order.
        sealed: Vec<(String, Amf3Value)>,
        /// Whether the traits are dynamic.
        is_dynamic: bool,
        /// Dynamic members in wire order.
        dynamic: Vec<(String, Amf3Value)>,
    },
    /// E4X XML (3.13).
    Xml(String),
    /// ByteArray (3.14).
    ByteArray(Vec<u8>),
}

impl Amf3Value {
    fn nodes(&self) -> usize {
        let pairs = |p: &[(String, Amf3Value)]| p.iter().map(|(_, v)| v.nodes()).sum::<usize>();
        1 + match self {
            Amf3Value::Array { assoc, dense } => {
                pairs(assoc) + dense.iter().map(Self::nodes).sum::<usize>()
            }
            Amf3Value::Object {
                sealed, dynamic, ..
            } => pairs(sealed) + pairs(dynamic),
            _ => 0,
        }
    }

    /// Levels of nesting below this value (0 for a scalar).
    fn height(&self) -> usize {
        let pairs = |p: &[(String, Amf3Value)]| p.iter().map(|(_, v)| v.height()).max();
        match self {
            Amf3Value::Array { assoc, dense } => {
                let d = dense.iter().map(Self::height).max();
                pairs(assoc).max(d).map_or(0, |h| h + 1)
            }
            Amf3Value::Object {
                sealed, dynamic, ..
            } => pairs(sealed).max(pairs(dynamic)).map_or(0, |h| h + 1),
            _ => 0,
        }
    }
}

#[derive(Debug, Clone)]
struct Traits {
    class_name: String,
    is_dynamic: bool,
    names: Vec<String>,
}

/// Decodes AMF3 values, keeping the three reference tables of one context.
#[derive(Debug)]
pub struct Amf3Decoder<'a> {
    r: Reader<'a>,
    base_depth: usize,
    budget: usize,
    elements: usize,
    strings: Vec<String>,
    /// `None` marks an object whose body is still being decoded; else the value, its node count
    /// and its height (a reference to it must not nest past [`MAX_DEPTH`] where it is placed).
    objects: Vec<Option<(Amf3Value, usize, usize)>>,
    traits: Vec<Traits>,
}

impl<'a> Amf3Decoder<'a> {
    /// Creates a decoder with an empty context over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self::with_budget(buf, 0, MAX_ELEMENTS)
    }

    pub(crate) fn with_budget(buf: &'a [u8], base_depth: usize, budget: usize) -> Self {
        Amf3Decoder {
            r: Reader::new(buf),
            base_depth,
            budget,
            elements: 0,
            strings: Vec::new(),
            objects: Vec::new(),
            traits: Vec::new(),
        }
    }

    /// The number of bytes consumed so far.
    pub fn position(&self) -> usize {
        self.r.pos()
    }

    /// The number of values produced so far, clones from references included.
    pub fn elements(&self) -> usize {
        self.elements
    }

    /// Decodes the next value.
    pub fn next_value(&mut self) -> Result<Amf3Value, AmfError> {
        self.value(self.base_depth)
    }

    fn charge(&mut self, n: usize) -> Result<(), AmfError> {
        self.elements = self.elements.saturating_add(n);
        if self.elements > self.budget {
            return Err(AmfError::TooManyElements {
                count: self.elements,
                offset: self.r.pos(),
            });
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Amf3Value, AmfError> {
        if depth > MAX_DEPTH {
            return Err(AmfError::TooDeep {
                offset: self.r.pos(),
            });
        }
        let offset = self.r.pos();
        let marker = self.r.u8()?;
        let v = match marker {
            UNDEFINED => Amf3Value::Undefined,
            NULL => Amf3Value::Null,
            FALSE => Amf3Value::Boolean(false),
            TRUE => Amf3Value::Boolean(true),
            INTEGER => Amf3Value::Integer(sign_extend(self.u29()?)),
            DOUBLE => Amf3Value::Double(self.r.f64()?),
            STRING => Amf3Value::String(self.string()?),
            XML_DOC | XML | DATE | ARRAY | OBJECT | BYTE_ARRAY => {
                return self.complex(marker, depth)
            }
            0x0D..=DICTIONARY => {
                return Err(AmfError::Unsupported {
                    version: 3,
                    marker,
                    offset,
                })
            }
            _ => {
                return Err(AmfError::UnknownMarker {
                    version: 3,
                    marker,
                    offset,
                })
            }
        };
        self.charge(1)?;
        Ok(v)
    }

    fn u29(&mut self) -> Result<u32, AmfError> {
        let mut v: u32 = 0;
        for _ in 0..3 {
            let b = self.r.u8()?;
            v = (v << 7) | u32::from(b & 0x7f);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Ok((v << 8) | u32::from(self.r.u8()?))
    }

    /// Reads a U29 that is either a reference (low bit 0) or an inline value.
    fn u29_ref(&mut self) -> Result<Result<usize, u32>, AmfError> {
        let v = self.u29()?;
        Ok(if v & 1 == 0 {
            Ok((v >> 1) as usize)
        } else {
            Err(v >> 1)
        })
    }

    fn string(&mut self) -> Result<String, AmfError> {
        let offset = self.r.pos();
        match self.u29_ref()? {
            Ok(index) => self
                .strings
                .get(index)
                .cloned()
                .ok_or(AmfError::BadReference {
                    table: "string",
                    index,
                    offset,
                }),
            Err(len) => {
                let s = self.r.utf8(len as usize)?;
                // The empty string is never sent by reference (1.3.2).
                if !s.is_empty() {
                    self.strings.push(s.clone());
                }
                Ok(s)
            }
        }
    }

    fn complex(&mut self, marker: u8, depth: usize) -> Result<Amf3Value, AmfError> {
        let offset = self.r.pos();
        let header = match self.u29_ref()? {
            Ok(index) => return self.object_ref(index, offset, depth),
            Err(h) => h,
        };
        let slot = self.objects.len();
        self.objects.push(None);
        self.charge(1)?;
        let v = match marker {
            XML_DOC => Amf3Value::XmlDocument(self.r.utf8(header as usize)?),
            XML => Amf3Value::Xml(self.r.utf8(header as usize)?),
            DATE => Amf3Value::Date(self.r.f64()?),
            BYTE_ARRAY => Amf3Value::ByteArray(self.r.take(header as usize)?.to_vec()),
            ARRAY => self.array(header as usize, depth)?,
            _ => self.object(header, depth)?,
        };
        let (nodes, height) = (v.nodes(), v.height());
        self.objects[slot] = Some((v.clone(), nodes, height));
        Ok(v)
    }

    fn object_ref(
        &mut self,
        index: usize,
        offset: usize,
        depth: usize,
    ) -> Result<Amf3Value, AmfError> {
        let bad = AmfError::BadReference {
            table: "object",
            index,
            offset,
        };
        let (v, nodes, height) = self.objects.get(index).cloned().flatten().ok_or(bad)?;
        // The copy nests as deep as the original below this point: a chain of references to
        // ever deeper values must not build a tree the nesting limit would have refused.
        if depth + height > MAX_DEPTH {
            return Err(AmfError::TooDeep { offset });
        }
        self.charge(nodes)?;
        Ok(v)
    }

    fn check_count(&self, count: usize) -> Result<(), AmfError> {
        if count > MAX_ELEMENTS || count > self.r.remaining() {
            return Err(AmfError::TooManyElements {
                count,
                offset: self.r.pos(),
            });
        }
        Ok(())
    }

    fn array(&mut self, dense_len: usize, depth: usize) -> Result<Amf3Value, AmfError> {
        let assoc = self.dynamic_members(depth)?;
        self.check_count(dense_len)?;
        let mut dense = Vec::with_capacity(dense_len);
        for _ in 0..dense_len {
            dense.push(self.value(depth + 1)?);
        }
        Ok(Amf3Value::Array { assoc, dense })
    }

    /// Reads `name value` pairs up to the empty name.
    fn dynamic_members(&mut self, depth: usize) -> Result<Vec<(String, Amf3Value)>, AmfError> {
        let mut out = Vec::new();
        loop {
            let name = self.string()?;
            if name.is_empty() {
                return Ok(out);
            }
            if out.len() >= MAX_ELEMENTS {
                return Err(AmfError::TooManyElements {
                    count: out.len() + 1,
                    offset: self.r.pos(),
                });
            }
            out.push((name, self.value(depth + 1)?));
        }
    }

    fn object(&mut self, header: u32, depth: usize) -> Result<Amf3Value, AmfError> {
        // `header` is the U29O value with its low (inline-object) bit removed.
        let traits = self.traits(header)?;
        let mut sealed = Vec::with_capacity(traits.names.len());
        for name in &traits.names {
            sealed.push((name.clone(), self.value(depth + 1)?));
        }
        let dynamic = if traits.is_dynamic {
            self.dynamic_members(depth)?
        } else {
            Vec::new()
        };
        Ok(Amf3Value::Object {
            class_name: traits.class_name,
            sealed,
            is_dynamic: traits.is_dynamic,
            dynamic,
        })
    }

    fn traits(&mut self, header: u32) -> Result<Traits, AmfError> {
        let offset = self.r.pos();
        if header & 1 == 0 {
            let index = (header >> 1) as usize;
            let bad = AmfError::BadReference {
                table: "traits",
                index,
                offset,
            };
            return self.traits.get(index).cloned().ok_or(bad);
        }
        if header & 2 != 0 {
            // Externalizable traits need the class's own reader (3.12).
            return Err(AmfError::Unsupported {
                version: 3,
                marker: OBJECT,
                offset,
            });
        }
        let is_dynamic = header & 4 != 0;
        let count = (header >> 3) as usize;
        self.check_count(count)?;
        let class_name = self.string()?;
        let mut names = Vec::with_capacity(count);
        for _ in 0..count {
            names.push(self.string()?);
        }
        let t = Traits {
            class_name,
            is_dynamic,
            names,
        };
        self.traits.push(t.clone());
        Ok(t)
    }
}

fn sign_extend(v: u32) -> i32 {
    ((v << 3) as i32) >> 3
}

/// Decodes one AMF3 value from the start of `buf` with a fresh context,
/// returning it and the number of bytes used.
pub fn decode_amf3(buf: &[u8]) -> Result<(Amf3Value, usize), AmfError> {
    let mut d = Amf3Decoder::new(buf);
    let v = d.next_value()?;
    Ok((v, d.position()))
}

/// Encodes AMF3 values, sending repeated strings by reference.
#[derive(Debug, Default)]
pub struct Amf3Encoder {
    strings: HashMap<String, usize>,
}

impl Amf3Encoder {
    /// Creates an encoder with an empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the encoding of `v` to `out`.
    pub fn encode(&mut self, v: &Amf3Value, out: &mut Vec<u8>) -> Result<(), AmfEncodeError> {
        match v {
            Amf3Value::Undefined => out.push(UNDEFINED),
            Amf3Value::Null => out.push(NULL),
            Amf3Value::Boolean(false) => out.push(FALSE),
            Amf3Value::Boolean(true) => out.push(TRUE),
            Amf3Value::Integer(i) if (INT_MIN..=INT_MAX).contains(i) => {
                out.push(INTEGER);
                put_u29(*i as u32 & U29_MAX, out);
            }
            Amf3Value::Integer(i) => self.encode(&Amf3Value::Double(f64::from(*i)), out)?,
            Amf3Value::Double(d) => {
                out.push(DOUBLE);
                out.extend_from_slice(&d.to_be_bytes());
            }
            Amf3Value::String(s) => {
                out.push(STRING);
                self.string(s, out)?;
            }
            Amf3Value::XmlDocument(s) | Amf3Value::Xml(s) => {
                out.push(if matches!(v, Amf3Value::Xml(_)) {
                    XML
                } else {
                    XML_DOC
                });
                put_inline(s.len(), out)?;
                out.extend_from_slice(s.as_bytes());
            }
            Amf3Value::Date(ms) => {
                out.extend_from_slice(&[DATE, 0x01]);
                out.extend_from_slice(&ms.to_be_bytes());
            }
            Amf3Value::ByteArray(b) => {
                out.push(BYTE_ARRAY);
                put_inline(b.len(), out)?;
                out.extend_from_slice(b);
            }
            Amf3Value::Array { assoc, dense } => self.array(assoc, dense, out)?,
            Amf3Value::Object {
                class_name,
                sealed,
                is_dynamic,
                dynamic,
            } => self.object(class_name, sealed, *is_dynamic, dynamic, out)?,
        }
        Ok(())
    }

    fn string(&mut self, s: &str, out: &mut Vec<u8>) -> Result<(), AmfEncodeError> {
        if let Some(&i) = self.strings.get(s) {
            put_u29((i as u32) << 1, out);
            return Ok(());
        }
        put_inline(s.len(), out)?;
        out.extend_from_slice(s.as_bytes());
        if !s.is_empty() {
            let next = self.strings.len();
            self.strings.insert(s.to_owned(), next);
        }
        Ok(())
    }

    fn members(
        &mut self,
        p: &[(String, Amf3Value)],
        out: &mut Vec<u8>,
    ) -> Result<(), AmfEncodeError> {
        for (k, v) in p {
            // The empty name ends the member list (3.11, 3.12), so a member named "" cannot
            // be written: it would end the list early and desynchronise the decoder.
            if k.is_empty() {
                return Err(AmfEncodeError::EmptyMemberName);
            }
            self.string(k, out)?;
            self.encode(v, out)?;
        }
        self.string("", out)
    }

    fn array(
        &mut self,
        assoc: &[(String, Amf3Value)],
        dense: &[Amf3Value],
        out: &mut Vec<u8>,
    ) -> Result<(), AmfEncodeError> {
        out.push(ARRAY);
        put_inline(dense.len(), out)
            .map_err(|_| AmfEncodeError::TooManyEntries { len: dense.len() })?;
        self.members(assoc, out)?;
        for v in dense {
            self.encode(v, out)?;
        }
        Ok(())
    }

    fn object(
        &mut self,
        class_name: &str,
        sealed: &[(String, Amf3Value)],
        is_dynamic: bool,
        dynamic: &[(String, Amf3Value)],
        out: &mut Vec<u8>,
    ) -> Result<(), AmfEncodeError> {
        out.push(OBJECT);
        let count = u32::try_from(sealed.len())
            .ok()
            .filter(|&c| c <= U29_MAX >> 4)
            .ok_or(AmfEncodeError::TooManyEntries { len: sealed.len() })?;
        // Inline object, inline traits, not externalizable (3.12).
        put_u29((count << 4) | (u32::from(is_dynamic) << 3) | 0b011, out);
        self.string(class_name, out)?;
        for (k, _) in sealed {
            self.string(k, out)?;
        }
        for (_, v) in sealed {
            self.encode(v, out)?;
        }
        if is_dynamic {
            self.members(dynamic, out)?;
        }
        Ok(())
    }
}

/// Writes an inline length: `len << 1 | 1`.
fn put_inline(len: usize, out: &mut Vec<u8>) -> Result<(), AmfEncodeError> {
    let len32 = u32::try_from(len).ok().filter(|&l| l <= U29_MAX >> 1);
    let l = len32.ok_or(AmfEncodeError::StringTooLong { len })?;
    put_u29((l << 1) | 1, out);
    Ok(())
}

fn put_u29(v: u32, out: &mut Vec<u8>) {
    let v = v & U29_MAX;
    if v < 0x80 {
        out.push(v as u8);
    } else if v < 0x4000 {
        out.extend_from_slice(&[(v >> 7) as u8 | 0x80, (v & 0x7f) as u8]);
    } else if v < 0x20_0000 {
        out.extend_from_slice(&[
            (v >> 14) as u8 | 0x80,
            (v >> 7) as u8 | 0x80,
            (v & 0x7f) as u8,
        ]);
    } else {
        out.extend_from_slice(&[
            (v >> 22) as u8 | 0x80,
            (v >> 15) as u8 | 0x80,
            (v >> 8) as u8 | 0x80,
            v as u8,
        ]);
    }
}

/// Appends the encoding of `v` with a fresh context.
pub fn encode_amf3(v: &Amf3Value) -> Result<Vec<u8>, AmfEncodeError> {
    let mut out = Vec::new();
    Amf3Encoder::new().encode(v, &mut out)?;
    Ok(out)
}

pub(crate) fn encode_amf3_into(v: &Amf3Value, out: &mut Vec<u8>) -> Result<(), AmfEncodeError> {
    Amf3Encoder::new().encode(v, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bytes: &[u8], want: Amf3Value) {
        let (got, used) = decode_amf3(bytes).expect("decodes");
        assert_eq!(got, want, "{bytes:02x?}");
        assert_eq!(used, bytes.len());
    }

    #[test]
    fn table() {
        let s = |x: &str| Amf3Value::String(x.into());
        let cases: Vec<(Vec<u8>, Amf3Value)> = vec![
            (vec![UNDEFINED], Amf3Value::Undefined),
            (vec![NULL], Amf3Value::Null),
            (vec![TRUE], Amf3Value::Boolean(true)),
            (vec![INTEGER, 0x7f], Amf3Value::Integer(127)),
            (vec![INTEGER, 0x81, 0x00], Amf3Value::Integer(128)),
            (
                vec![INTEGER, 0xff, 0xff, 0xff, 0xff],
                Amf3Value::Integer(-1),
            ),
            (
                vec![INTEGER, 0xbf, 0xff, 0xff, 0xff],
                Amf3Value::Integer(INT_MAX),
            ),
            (vec![STRING, 0x07, b'a', b'b', b'c'], s("abc")),
            // An array whose second dense entry references the first string.
            (
                vec![ARRAY, 0x05, 0x01, STRING, 0x03, b'x', STRING, 0x00],
                Amf3Value::Array {
                    assoc: vec![],
                    dense: vec![s("x"), s("x")],
                },
            ),
            // An anonymous dynamic object {a: 1}.
            (
                vec![OBJECT, 0x0b, 0x01, 0x03, b'a', INTEGER, 0x01, 0x01],
                Amf3Value::Object {
                    class_name: String::new(),
                    sealed: vec![],
                    is_dynamic: true,
                    dynamic: vec![("a".into(), Amf3Value::Integer(1))],
                },
            ),
            (
                vec![BYTE_ARRAY, 0x05, 1, 2],
                Amf3Value::ByteArray(vec![1, 2]),
            ),
            (
                [&[DATE, 0x01][..], &5.0f64.to_be_bytes()].concat(),
                Amf3Value::Date(5.0),
            ),
        ];
        for (bytes, want) in cases {
            check(&bytes, want.clone());
            let enc = encode_amf3(&want).expect("encodes");
            assert_eq!(decode_amf3(&enc).expect("re-decodes").0, want);
        }
    }

    #[test]
    fn errors() {
        let cases: Vec<(&[u8], AmfError)> = vec![
            (
                &[STRING, 0x02],
                AmfError::BadReference {
                    table: "string",
                    index: 1,
                    offset: 1,
                },
            ),
            // An array whose only element references the array itself.
            (
                &[ARRAY, 0x03, 0x01, ARRAY, 0x00],
                AmfError::BadReference {
                    table: "object",
                    index: 0,
                    offset: 4,
                },
            ),
            (
                &[OBJECT, 0x07],
                AmfError::Unsupported {
                    version: 3,
                    marker: OBJECT,
                    offset: 2,
                },
            ),
            (
                &[0x10],
                AmfError::Unsupported {
                    version: 3,
                    marker: 0x10,
                    offset: 0,
                },
            ),
            (
                &[0x20],
                AmfError::UnknownMarker {
                    version: 3,
                    marker: 0x20,
                    offset: 0,
                },
            ),
            (&[STRING, 0x09, b'a'], AmfError::Truncated { offset: 2 }),
        ];
        for (bytes, want) in cases {
            assert_eq!(decode_amf3(bytes).unwrap_err(), want, "{bytes:02x?}");
        }
    }

    #[test]
    fn reference_expansion_is_bounded() {
        // Each array holds two references to the previous one, doubling the
        // expanded size per level: 40 levels would be 2^40 values.
        let mut bytes = vec![ARRAY, 0x05, 0x01, NULL, NULL];
        for i in 0..40u32 {
            bytes.extend_from_slice(&[ARRAY, 0x05, 0x01]);
            // Slot 0 is the outer array, still open; level i sits in slot i + 1.
            let r = ((i + 1) << 1) as u8;
            bytes.extend_from_slice(&[ARRAY, r, ARRAY, r]);
        }
        let mut outer = vec![ARRAY, 0x53, 0x01];
        outer.extend_from_slice(&bytes);
        let err = decode_amf3(&outer).unwrap_err();
        assert!(matches!(err, AmfError::TooManyElements { .. }), "{err:?}");
    }

    /// Found by the `amf3` fuzz target: a reference copies the referenced value where it stands,
    /// so a reference to a value nested near the limit, placed deeper than the value itself,
    /// built a tree deeper than [`MAX_DEPTH`] (which its own re-encoding then failed to decode).
    #[test]
    fn a_reference_may_not_nest_past_the_depth_limit() {
        // An array of `n` dense values and no associative part.
        let array = |n: u8| vec![ARRAY, (n << 1) | 1, 0x01];
        // A: MAX_DEPTH - 1 nested one-element arrays around a null (object index 1).
        let mut chain = Vec::new();
        for _ in 0..MAX_DEPTH - 1 {
            chain.extend(array(1));
        }
        chain.push(0x01);
        let reference_to_a = [ARRAY, 1 << 1];
        // outer = [A, ref(A)]: the copy sits where A did, at depth 1.
        let mut fits = array(2);
        fits.extend(&chain);
        fits.extend(reference_to_a);
        assert!(decode_amf3(&fits).is_ok());
        // outer = [A, [ref(A)]]: the copy would sit one level deeper than A.
        let mut deeper = array(2);
        deeper.extend(&chain);
        deeper.extend(array(1));
        deeper.extend(reference_to_a);
        assert!(
            matches!(decode_amf3(&deeper), Err(AmfError::TooDeep { .. })),
            "{:?}",
            decode_amf3(&deeper)
        );
    }

    /// Found by the `amf_roundtrip` fuzz target: a member named "" was written as the
    /// end-of-members marker, so the value after it was read as the next member's name.
    #[test]
    fn empty_member_names_are_refused_not_written() {
        let member = || vec![(String::new(), Amf3Value::Null)];
        let cases = [
            Amf3Value::Array {
                assoc: member(),
                dense: vec![Amf3Value::Null],
            },
            Amf3Value::Object {
                class_name: String::new(),
                sealed: vec![],
                is_dynamic: true,
                dynamic: member(),
            },
        ];
        for v in cases {
            assert_eq!(
                encode_amf3(&v),
                Err(AmfEncodeError::EmptyMemberName),
                "{v:?}"
            );
        }
        // A sealed member named "" is counted, not terminated, so it still round-trips.
        let sealed = Amf3Value::Object {
            class_name: String::new(),
            sealed: member(),
            is_dynamic: false,
            dynamic: vec![],
        };
        let bytes = encode_amf3(&sealed).expect("encodes");
        assert_eq!(decode_amf3(&bytes).expect("decodes"), (sealed, bytes.len()));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Amf3Value> {
        let leaf = prop_oneof![
            Just(Amf3Value::Undefined),
            Just(Amf3Value::Null),
            any::<bool>().prop_map(Amf3Value::Boolean),
            (INT_MIN..=INT_MAX).prop_map(Amf3Value::Integer),
            any::<f64>()
                .prop_filter("NaN", |f| !f.is_nan())
                .prop_map(Amf3Value::Double),
            "[a-c]{0,3}".prop_map(Amf3Value::String),
            prop::collection::vec(any::<u8>(), 0..8).prop_map(Amf3Value::ByteArray),
        ];
        leaf.prop_recursive(4, 64, 5, |inner| {
            let members = prop::collection::vec(("[a-c]{1,3}", inner.clone()), 0..4);
            prop_oneof![
                (members.clone(), prop::collection::vec(inner, 0..4))
                    .prop_map(|(assoc, dense)| Amf3Value::Array { assoc, dense }),
                ("[A-C]{0,2}", members.clone(), any::<bool>(), members).prop_map(
                    |(class_name, sealed, is_dynamic, dynamic)| Amf3Value::Object {
                        class_name,
                        sealed,
                        is_dynamic,
                        dynamic: if is_dynamic { dynamic } else { vec![] },
                    }
                ),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trip(v in value()) {
            let enc = encode_amf3(&v).expect("encodes");
            let (got, used) = decode_amf3(&enc).expect("decodes");
            prop_assert_eq!(used, enc.len());
            prop_assert_eq!(got, v);
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_amf3(&bytes);
        }
    }
}
