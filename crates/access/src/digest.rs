//! RTSP/HTTP `Authorization`: basic (RFC 7617) and digest with MD5 (RFC 2617, the variant
//! ffmpeg, VLC/live555, GStreamer and IP cameras speak; with or without `qop=auth`).
//!
//! Nonces are stateless: `{expiry as 16 hex digits}{first 8 bytes of HMAC-SHA256(key, expiry) in
//! hex}`, so any connection can check any nonce the gateway issued and nothing is stored per
//! client. A nonce past its expiry is "stale": the client is challenged again with `stale=true`.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use md5::{Digest as _, Md5};
use sha2::Sha256;

use crate::signed::{hex, unhex};
use crate::{constant_eq, Authorization, User};

/// Longest `Authorization` header read.
const MAX_HEADER_LEN: usize = 4096;

/// A `WWW-Authenticate` header value.
pub type Challenge = String;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthError {
    /// Wrong user, password, realm or response, or a malformed header.
    Bad,
    /// A correct response to a nonce that has expired.
    Stale,
}

/// Digest and basic challenges with a nonce valid until `expiry` (Unix seconds).
pub(crate) fn challenges(realm: &str, key: &[u8], expiry: u64, stale: bool) -> [Challenge; 2] {
    let stale = if stale { ", stale=true" } else { "" };
    [
        format!(
            "Digest realm=\"{realm}\", nonce=\"{}\", algorithm=MD5, qop=\"auth\"{stale}",
            nonce(key, expiry)
        ),
        format!("Basic realm=\"{realm}\""),
    ]
}

pub(crate) fn nonce(key: &[u8], expiry: u64) -> String {
    format!("{expiry:016x}{}", hex(&nonce_mac(key, expiry)))
}

fn nonce_mac(key: &[u8], expiry: u64) -> [u8; 8] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(&expiry.to_be_bytes());
    let out = mac.finalize().into_bytes();
    let mut first = [0; 8];
    first.copy_from_slice(&out[..8]);
    first
}

/// The expiry of a nonce this gateway issued, or `None` for one it did not.
fn nonce_expiry(key: &[u8], nonce: &str) -> Option<u64> {
    if nonce.len() != 32 {
        return None;
    }
    let expiry = u64::from_str_radix(nonce.get(..16)?, 16).ok()?;
    let mac = unhex(nonce.get(16..)?)?;
    constant_eq(&mac, &nonce_mac(key, expiry)).then_some(expiry)
}

/// The user `auth` authenticates as, among `users`.
pub(crate) fn verify(
    auth: Authorization<'_>,
    users: &[User],
    realm: &str,
    key: &[u8],
    _lifetime: std::time::Duration,
    now: u64,
) -> Result<String, AuthError> {
    let header = auth.header.trim();
    if header.len() > MAX_HEADER_LEN {
        return Err(AuthError::Bad);
    }
    let (scheme, rest) = header.split_once(' ').ok_or(AuthError::Bad)?;
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| AuthError::Bad)?;
        let text = String::from_utf8(decoded).map_err(|_| AuthError::Bad)?;
        let (name, password) = text.split_once(':').ok_or(AuthError::Bad)?;
        return users
            .iter()
            .find(|u| {
                constant_eq(u.name.as_bytes(), name.as_bytes())
                    && constant_eq(u.password.as_bytes(), password.as_bytes())
            })
            .map(|u| u.name.clone())
            .ok_or(AuthError::Bad);
    }
    if !scheme.eq_ignore_ascii_case("digest") {
        return Err(AuthError::Bad);
    }
    let p = DigestParams::parse(rest).ok_or(AuthError::Bad)?;
    let (Some(name), Some(nonce), Some(uri), Some(response)) =
        (p.username, p.nonce, p.uri, p.response)
    else {
        return Err(AuthError::Bad);
    };
    if p.realm != Some(realm) || p.algorithm.is_some_and(|a| !a.eq_ignore_ascii_case("md5")) {
        return Err(AuthError::Bad);
    }
    if !same_target(uri, auth.uri) {
        return Err(AuthError::Bad);
    }
    let user = users
        .iter()
        .find(|u| u.name == name)
        .ok_or(AuthError::Bad)?;
    let expiry = nonce_expiry(key, nonce).ok_or(AuthError::Bad)?;
    let ha1 = md5_hex(&format!("{name}:{realm}:{}", user.password));
    let ha2 = md5_hex(&format!("{}:{uri}", auth.method));
    let want = match p.qop {
        None => md5_hex(&format!("{ha1}:{nonce}:{ha2}")),
        Some(q) if q.eq_ignore_ascii_case("auth") => {
            let (Some(nc), Some(cnonce)) = (p.nc, p.cnonce) else {
                return Err(AuthError::Bad);
            };
            md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{q}:{ha2}"))
        }
        Some(_) => return Err(AuthError::Bad),
    };
    if !constant_eq(want.as_bytes(), response.to_ascii_lowercase().as_bytes()) {
        return Err(AuthError::Bad);
    }
    if expiry < now {
        return Err(AuthError::Stale);
    }
    Ok(user.name.clone())
}

/// Whether a digest's `uri=` names the request's target (RFC 7616 §3.4.6): the same path and
/// query, with or without the `scheme://authority` in front (a client may write the absolute
/// form on one side and the origin form on the other).
fn same_target(digest_uri: &str, request_uri: &str) -> bool {
    fn origin_form(uri: &str) -> &str {
        match uri.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
            None => uri,
        }
    }
    origin_form(digest_uri) == origin_form(request_uri)
}

pub(crate) fn md5_hex(s: &str) -> String {
    hex(&Md5::digest(s.as_bytes()))
}

/// The fields of a `Digest` header that matter here.
#[derive(Debug, Default)]
struct DigestParams<'a> {
    username: Option<&'a str>,
    realm: Option<&'a str>,
    nonce: Option<&'a str>,
    uri: Option<&'a str>,
    response: Option<&'a str>,
    algorithm: Option<&'a str>,
    qop: Option<&'a str>,
    nc: Option<&'a str>,
    cnonce: Option<&'a str>,
}

impl<'a> DigestParams<'a> {
    /// `k=v, k="v", ...`; quoted values may contain commas. `None` if malformed.
    fn parse(mut s: &'a str) -> Option<DigestParams<'a>> {
        let mut p = DigestParams::default();
        loop {
            s = s.trim_start_matches([' ', '\t', ',']);
            if s.is_empty() {
                return Some(p);
            }
            let eq = s.find('=')?;
            let key = s[..eq].trim();
            s = s[eq + 1..].trim_start();
            let value;
            if let Some(rest) = s.strip_prefix('"') {
                let end = rest.find('"')?;
                value = &rest[..end];
                s = &rest[end + 1..];
            } else {
                let end = s.find(',').unwrap_or(s.len());
                value = s[..end].trim();
                s = &s[end..];
            }
            let slot = match key.to_ascii_lowercase().as_str() {
                "username" => &mut p.username,
                "realm" => &mut p.realm,
                "nonce" => &mut p.nonce,
                "uri" => &mut p.uri,
                "response" => &mut p.response,
                "algorithm" => &mut p.algorithm,
                "qop" => &mut p.qop,
                "nc" => &mut p.nc,
                "cnonce" => &mut p.cnonce,
                _ => continue,
            };
            *slot = Some(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const KEY: &[u8] = b"nonce key";

    fn users() -> Vec<User> {
        vec![User {
            name: "cam".into(),
            password: "s3cret".into(),
        }]
    }

    fn check(header: &str, method: &str, now: u64) -> Result<String, AuthError> {
        check_at(header, method, "rtsp://127.0.0.1/live/x", now)
    }

    fn check_at(header: &str, method: &str, uri: &str, now: u64) -> Result<String, AuthError> {
        verify(
            Authorization {
                header,
                method,
                uri,
            },
            &users(),
            "gateway",
            KEY,
            Duration::from_secs(300),
            now,
        )
    }

    /// A client's digest response, computed the way RFC 2617 section 3.2.2 says.
    fn respond(nonce: &str, qop: Option<(&str, &str)>, password: &str) -> String {
        let ha1 = md5_hex(&format!("cam:gateway:{password}"));
        let ha2 = md5_hex("DESCRIBE:rtsp://127.0.0.1/live/x");
        match qop {
            None => {
                let r = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
                format!("Digest username=\"cam\", realm=\"gateway\", nonce=\"{nonce}\", uri=\"rtsp://127.0.0.1/live/x\", response=\"{r}\"")
            }
            Some((nc, cnonce)) => {
                let r = md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
                format!("Digest username=\"cam\", realm=\"gateway\", nonce=\"{nonce}\", uri=\"rtsp://127.0.0.1/live/x\", response=\"{r}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"{cnonce}\"")
            }
        }
    }

    #[test]
    fn rfc2617_md5_of_the_rfc_example_inputs() {
        // RFC 2617 section 3.5: the response for Mufasa / "Circle Of Life".
        let ha1 = md5_hex("Mufasa:testrealm@host.com:Circle Of Life");
        let ha2 = md5_hex("GET:/dir/index.html");
        let r = md5_hex(&format!(
            "{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:0a4f113b:auth:{ha2}"
        ));
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn digest_with_and_without_qop() {
        let n = nonce(KEY, 1000);
        assert_eq!(
            check(&respond(&n, None, "s3cret"), "DESCRIBE", 10),
            Ok("cam".into())
        );
        assert_eq!(
            check(
                &respond(&n, Some(("00000001", "abc")), "s3cret"),
                "DESCRIBE",
                10
            ),
            Ok("cam".into())
        );
        assert_eq!(
            check(&respond(&n, None, "wrong"), "DESCRIBE", 10),
            Err(AuthError::Bad)
        );
        // The method is part of the hash.
        assert_eq!(
            check(&respond(&n, None, "s3cret"), "PLAY", 10),
            Err(AuthError::Bad)
        );
        assert_eq!(
            check(&respond(&n, None, "s3cret"), "DESCRIBE", 1001),
            Err(AuthError::Stale)
        );
    }

    #[test]
    fn a_response_counts_for_its_own_target_only() {
        let n = nonce(KEY, 1000);
        let header = respond(&n, None, "s3cret");
        // The same target in origin form (a proxy or a client writing it shorter) is that target.
        assert_eq!(
            check_at(&header, "DESCRIBE", "/live/x", 10),
            Ok("cam".into())
        );
        assert_eq!(
            check_at(
                &header,
                "DESCRIBE",
                "rtsp://gateway.example:8554/live/x",
                10
            ),
            Ok("cam".into())
        );
        // A response seen on one stream does not open another, nor the same with a query.
        for other in [
            "rtsp://127.0.0.1/live/y",
            "rtsp://127.0.0.1/live/x/trackID=0",
            "rtsp://127.0.0.1/live/x?token=a",
            "/other/x",
        ] {
            assert_eq!(
                check_at(&header, "DESCRIBE", other, 10),
                Err(AuthError::Bad),
                "{other}"
            );
        }
    }

    #[test]
    fn a_nonce_not_issued_here_is_refused() {
        let forged = format!("{:016x}{}", 1000u64, "00".repeat(8));
        assert_eq!(
            check(&respond(&forged, None, "s3cret"), "DESCRIBE", 10),
            Err(AuthError::Bad)
        );
        assert_eq!(
            check(&respond("short", None, "s3cret"), "DESCRIBE", 10),
            Err(AuthError::Bad)
        );
    }

    #[test]
    fn basic() {
        let b = base64::engine::general_purpose::STANDARD;
        assert_eq!(
            check(&format!("Basic {}", b.encode("cam:s3cret")), "PLAY", 0),
            Ok("cam".into())
        );
        assert_eq!(
            check(&format!("Basic {}", b.encode("cam:nope")), "PLAY", 0),
            Err(AuthError::Bad)
        );
        assert_eq!(check("Basic !!!", "PLAY", 0), Err(AuthError::Bad));
        assert_eq!(check("Bearer x", "PLAY", 0), Err(AuthError::Bad));
    }

    #[test]
    fn malformed_digest_headers_are_refused_not_panics() {
        for h in [
            "Digest",
            "Digest username",
            "Digest username=\"cam",
            "Digest ,,,=,",
            "Digest =x",
        ] {
            assert_eq!(check(h, "DESCRIBE", 0), Err(AuthError::Bad), "{h}");
        }
    }
}
