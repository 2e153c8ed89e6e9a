//! `Arbitrary` mirrors of the project's value types, for structure-aware targets.
//!
//! The protocol crates do not depend on `arbitrary`; these mirrors convert into their types.

use amf::{Amf0Value, Amf3Value};
use arbitrary::{Arbitrary, Result, Unstructured};

/// Deepest nesting generated; deeper than [`amf::MAX_DEPTH`] so the limit itself is exercised.
const MAX_GEN_DEPTH: usize = amf::MAX_DEPTH + 4;

/// An AMF0 value tree.
#[derive(Debug, Clone)]
pub struct ArbAmf0(pub Amf0Value);

/// An AMF3 value tree.
#[derive(Debug, Clone)]
pub struct ArbAmf3(pub Amf3Value);

impl<'a> Arbitrary<'a> for ArbAmf0 {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        amf0(u, 0).map(ArbAmf0)
    }
}

impl<'a> Arbitrary<'a> for ArbAmf3 {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        amf3(u, 0).map(ArbAmf3)
    }
}

fn list<'a, T>(
    u: &mut Unstructured<'a>,
    depth: usize,
    mut item: impl FnMut(&mut Unstructured<'a>, usize) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    if depth >= MAX_GEN_DEPTH {
        return Ok(out);
    }
    u.arbitrary_loop(Some(0), Some(8), |u| {
        out.push(item(u, depth + 1)?);
        Ok(std::ops::ControlFlow::Continue(()))
    })?;
    Ok(out)
}

fn props0(u: &mut Unstructured<'_>, depth: usize) -> Result<Vec<(String, Amf0Value)>> {
    list(u, depth, |u, d| Ok((String::arbitrary(u)?, amf0(u, d)?)))
}

fn props3(u: &mut Unstructured<'_>, depth: usize) -> Result<Vec<(String, Amf3Value)>> {
    list(u, depth, |u, d| Ok((String::arbitrary(u)?, amf3(u, d)?)))
}

fn amf0(u: &mut Unstructured<'_>, depth: usize) -> Result<Amf0Value> {
    Ok(match u.int_in_range(0u8..=14)? {
        0 => Amf0Value::Number(f64::arbitrary(u)?),
        1 => Amf0Value::Boolean(bool::arbitrary(u)?),
        2 => Amf0Value::String(String::arbitrary(u)?),
        3 => Amf0Value::Object(props0(u, depth)?),
        4 => Amf0Value::Null,
        5 => Amf0Value::Undefined,
        6 => Amf0Value::Reference(u16::arbitrary(u)?),
        7 => Amf0Value::EcmaArray(props0(u, depth)?),
        8 => Amf0Value::StrictArray(list(u, depth, amf0)?),
        9 => Amf0Value::Date {
            millis: f64::arbitrary(u)?,
            time_zone: i16::arbitrary(u)?,
        },
        10 => Amf0Value::LongString(String::arbitrary(u)?),
        11 => Amf0Value::Unsupported,
        12 => Amf0Value::XmlDocument(String::arbitrary(u)?),
        13 => Amf0Value::TypedObject {
            class_name: String::arbitrary(u)?,
            properties: props0(u, depth)?,
        },
        _ => Amf0Value::Amf3(amf3(u, depth)?),
    })
}

fn amf3(u: &mut Unstructured<'_>, depth: usize) -> Result<Amf3Value> {
    Ok(match u.int_in_range(0u8..=11)? {
        0 => Amf3Value::Undefined,
        1 => Amf3Value::Null,
        2 => Amf3Value::Boolean(bool::arbitrary(u)?),
        3 => Amf3Value::Integer(i32::arbitrary(u)?),
        4 => Amf3Value::Double(f64::arbitrary(u)?),
        5 => Amf3Value::String(String::arbitrary(u)?),
        6 => Amf3Value::XmlDocument(String::arbitrary(u)?),
        7 => Amf3Value::Date(f64::arbitrary(u)?),
        8 => Amf3Value::Array {
            assoc: props3(u, depth)?,
            dense: list(u, depth, amf3)?,
        },
        9 => Amf3Value::Object {
            class_name: String::arbitrary(u)?,
            sealed: props3(u, depth)?,
            is_dynamic: bool::arbitrary(u)?,
            dynamic: props3(u, depth)?,
        },
        10 => Amf3Value::Xml(String::arbitrary(u)?),
        _ => Amf3Value::ByteArray(Vec::arbitrary(u)?),
    })
}
