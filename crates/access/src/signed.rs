//! Signed, expiring URLs, as CDNs hand them out: a web page (or its back end) that knows the
//! secret appends `expires=<unix seconds>&sig=<hex>` to a stream URL, and the gateway checks
//! the signature and the time.
//!
//! `sig` is the lowercase hex HMAC-SHA256, under the shared secret, of
//!
//! ```text
//! {action}:/{app}/{stream}:{expires}
//! ```
//!
//! where `action` is `play` or `publish`. The signature covers the stream, not a protocol's
//! path, so one link works for RTMP, HTTP-FLV, HLS (playlist, segments and keys) and RTSP alike,
//! and a play link cannot be used to publish. For example, with the shell tools:
//!
//! ```text
//! exp=$(( $(date +%s) + 3600 ))
//! sig=$(printf 'play:/live/cam:%s' "$exp" | openssl dgst -sha256 -hmac "$SECRET" -hex | sed 's/.* //')
//! echo "http://host:8080/live/cam.flv?expires=$exp&sig=$sig"
//! ```

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Action;

/// Why a signature did not admit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignError {
    /// Malformed, or not the signature of this stream and time.
    Bad,
    /// A valid signature whose time has passed.
    Expired,
}

/// The hex signature of `action` on `app/stream` until `expires`.
pub fn signature(secret: &[u8], action: Action, app: &str, stream: &str, expires: u64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(message(action, app, stream, expires).as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// `expires=...&sig=...` for a URL.
pub fn sign_query(secret: &[u8], action: Action, app: &str, stream: &str, expires: u64) -> String {
    format!(
        "expires={expires}&sig={}",
        signature(secret, action, app, stream, expires)
    )
}

fn message(action: Action, app: &str, stream: &str, expires: u64) -> String {
    format!("{}:/{app}/{stream}:{expires}", action.as_str())
}

/// Checks a URL's `expires` and `sig` at `now` (Unix seconds).
pub fn verify(
    secret: &[u8],
    action: Action,
    app: &str,
    stream: &str,
    expires: &str,
    sig: &str,
    now: u64,
) -> Result<(), SignError> {
    let exp: u64 = expires.parse().map_err(|_| SignError::Bad)?;
    let Some(sig) = unhex(sig) else {
        return Err(SignError::Bad);
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(message(action, app, stream, exp).as_bytes());
    // verify_slice compares in constant time.
    mac.verify_slice(&sig).map_err(|_| SignError::Bad)?;
    if exp < now {
        return Err(SignError::Expired);
    }
    Ok(())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Longest hex string decoded (a SHA-256 MAC is 64 digits).
const MAX_HEX: usize = 128;

pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > MAX_HEX {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_admits_its_stream_until_it_expires() {
        let q = signature(b"k", Action::Play, "live", "cam", 1000);
        assert_eq!(
            verify(b"k", Action::Play, "live", "cam", "1000", &q, 999),
            Ok(())
        );
        assert_eq!(
            verify(b"k", Action::Play, "live", "cam", "1000", &q, 1000),
            Ok(())
        );
        assert_eq!(
            verify(b"k", Action::Play, "live", "cam", "1000", &q, 1001),
            Err(SignError::Expired)
        );
    }

    #[test]
    fn a_signature_is_bound_to_action_stream_time_and_key() {
        let q = signature(b"k", Action::Play, "live", "cam", 1000);
        let bad = Err(SignError::Bad);
        assert_eq!(
            verify(b"k", Action::Publish, "live", "cam", "1000", &q, 0),
            bad
        );
        assert_eq!(
            verify(b"k", Action::Play, "live", "cam2", "1000", &q, 0),
            bad
        );
        assert_eq!(
            verify(b"k", Action::Play, "live", "cam", "2000", &q, 0),
            bad
        );
        assert_eq!(
            verify(b"other", Action::Play, "live", "cam", "1000", &q, 0),
            bad
        );
        assert_eq!(verify(b"k", Action::Play, "live", "cam", "x", &q, 0), bad);
        assert_eq!(
            verify(b"k", Action::Play, "live", "cam", "1000", "zz", 0),
            bad
        );
    }

    #[test]
    fn matches_the_documented_openssl_recipe() {
        // printf 'play:/live/cam:1700000000' | openssl dgst -sha256 -hmac secret -hex
        assert_eq!(
            signature(b"secret", Action::Play, "live", "cam", 1_700_000_000),
            "e1656a98f71e79610bdbf1e31206e58812f4e87ade7356e96e3d5faf1bc51f81"
        );
    }
}
