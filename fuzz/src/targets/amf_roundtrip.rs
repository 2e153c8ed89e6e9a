//! Structure-aware AMF: an arbitrary AMF0 or AMF3 tree is encoded, and whatever the encoder
//! accepts must decode back to the same tree (after the encoder's documented normalisations).

use amf::{decode_amf0, decode_amf3, encode_amf0, encode_amf3, Amf0Value, Amf3Value, MAX_DEPTH};
use arbitrary::{Arbitrary, Unstructured};

use crate::arb::{ArbAmf0, ArbAmf3};

pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(amf3) = bool::arbitrary(&mut u) else {
        return;
    };
    if amf3 {
        let Ok(ArbAmf3(v)) = ArbAmf3::arbitrary(&mut u) else {
            return;
        };
        let Ok(bytes) = encode_amf3(&v) else {
            return;
        };
        check(depth3(&v), &norm3(v), decode_amf3(&bytes), bytes.len());
    } else {
        let Ok(ArbAmf0(v)) = ArbAmf0::arbitrary(&mut u) else {
            return;
        };
        let mut bytes = Vec::new();
        if encode_amf0(&v, &mut bytes).is_err() {
            return;
        }
        check(depth0(&v), &norm0(v), decode_amf0(&bytes), bytes.len());
    }
}

fn check<T: std::fmt::Debug>(
    depth: usize,
    want: &T,
    got: Result<(T, usize), amf::AmfError>,
    len: usize,
) {
    match got {
        Ok((got, used)) => {
            assert!(super::same(want, &got), "{want:?} decoded as {got:?}");
            assert_eq!(used, len, "the encoding is consumed exactly");
        }
        // The decoder counts depth from its own start; allow the limit a level of slack.
        Err(amf::AmfError::TooDeep { .. }) if depth + 2 > MAX_DEPTH => {}
        Err(e) => panic!("encoded {want:?} (depth {depth}) does not decode: {e}"),
    }
}

/// What the AMF0 encoder writes a value as: a short string over 65535 bytes becomes a long one.
fn norm0(v: Amf0Value) -> Amf0Value {
    let props = |p: Vec<(String, Amf0Value)>| p.into_iter().map(|(k, v)| (k, norm0(v))).collect();
    match v {
        Amf0Value::String(s) if s.len() > usize::from(u16::MAX) => Amf0Value::LongString(s),
        Amf0Value::Object(p) => Amf0Value::Object(props(p)),
        Amf0Value::EcmaArray(p) => Amf0Value::EcmaArray(props(p)),
        Amf0Value::StrictArray(a) => Amf0Value::StrictArray(a.into_iter().map(norm0).collect()),
        Amf0Value::TypedObject {
            class_name,
            properties,
        } => Amf0Value::TypedObject {
            class_name,
            properties: props(properties),
        },
        Amf0Value::Amf3(v) => Amf0Value::Amf3(norm3(v)),
        v => v,
    }
}

/// What the AMF3 encoder writes a value as: an integer outside 29 bits becomes a double, and a
/// sealed (non-dynamic) object has no dynamic members.
fn norm3(v: Amf3Value) -> Amf3Value {
    let props = |p: Vec<(String, Amf3Value)>| p.into_iter().map(|(k, v)| (k, norm3(v))).collect();
    match v {
        Amf3Value::Integer(i) if !(-(1 << 28)..(1 << 28)).contains(&i) => {
            Amf3Value::Double(f64::from(i))
        }
        Amf3Value::Array { assoc, dense } => Amf3Value::Array {
            assoc: props(assoc),
            dense: dense.into_iter().map(norm3).collect(),
        },
        Amf3Value::Object {
            class_name,
            sealed,
            is_dynamic,
            dynamic,
        } => Amf3Value::Object {
            class_name,
            sealed: props(sealed),
            is_dynamic,
            dynamic: if is_dynamic {
                props(dynamic)
            } else {
                Vec::new()
            },
        },
        v => v,
    }
}

fn depth0(v: &Amf0Value) -> usize {
    let props = |p: &[(String, Amf0Value)]| p.iter().map(|(_, v)| depth0(v)).max().unwrap_or(0);
    match v {
        Amf0Value::Object(p) | Amf0Value::EcmaArray(p) => 1 + props(p),
        Amf0Value::TypedObject { properties, .. } => 1 + props(properties),
        Amf0Value::StrictArray(a) => 1 + a.iter().map(depth0).max().unwrap_or(0),
        Amf0Value::Amf3(v) => 1 + depth3(v),
        _ => 0,
    }
}

fn depth3(v: &Amf3Value) -> usize {
    let props = |p: &[(String, Amf3Value)]| p.iter().map(|(_, v)| depth3(v)).max().unwrap_or(0);
    match v {
        Amf3Value::Array { assoc, dense } => {
            1 + props(assoc).max(dense.iter().map(depth3).max().unwrap_or(0))
        }
        Amf3Value::Object {
            sealed, dynamic, ..
        } => 1 + props(sealed).max(props(dynamic)),
        _ => 0,
    }
}
