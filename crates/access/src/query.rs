//! The credential parameters of a URL query: `token`, and a signed URL's `expires` and `sig`.

/// Longest query read for credentials; the rest of a longer one is ignored.
const MAX_QUERY_LEN: usize = 4096;

/// Credential parameters found in a query (the first of each name).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub token: Option<String>,
    pub expires: Option<String>,
    pub sig: Option<String>,
}

impl Credentials {
    pub(crate) fn parse(query: Option<&str>) -> Credentials {
        let mut c = Credentials::default();
        let Some(q) = query else { return c };
        let q = truncate(q.strip_prefix('?').unwrap_or(q), MAX_QUERY_LEN);
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            let slot = match &*k {
                "token" => &mut c.token,
                "expires" => &mut c.expires,
                "sig" => &mut c.sig,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(v.into_owned());
            }
        }
        c
    }

    /// The parameters again, encoded, for URIs that must carry them; `None` when there are none.
    pub(crate) fn carry(&self) -> Option<String> {
        let mut out = form_urlencoded::Serializer::new(String::new());
        let mut any = false;
        for (k, v) in [
            ("token", &self.token),
            ("expires", &self.expires),
            ("sig", &self.sig),
        ] {
            if let Some(v) = v {
                out.append_pair(k, v);
                any = true;
            }
        }
        any.then(|| out.finish())
    }
}

/// The credential parameters of `query` (`token`, `expires`, `sig`) re-encoded, for a shell that
/// must hand them on in URIs it writes (HLS playlists); `None` when the query has none.
pub fn credential_query(query: Option<&str>) -> Option<String> {
    Credentials::parse(query).carry()
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_credentials_among_other_parameters() {
        let c = Credentials::parse(Some("a=1&token=ab%2Bc&expires=99&sig=ff&token=second"));
        assert_eq!(c.token.as_deref(), Some("ab+c"));
        assert_eq!(c.expires.as_deref(), Some("99"));
        assert_eq!(c.sig.as_deref(), Some("ff"));
        assert_eq!(c.carry().as_deref(), Some("token=ab%2Bc&expires=99&sig=ff"));
    }

    #[test]
    fn nothing_to_carry_without_credentials() {
        assert_eq!(credential_query(Some("a=1&b=2")), None);
        assert_eq!(credential_query(None), None);
        assert_eq!(
            credential_query(Some("?token=x")).as_deref(),
            Some("token=x")
        );
    }

    #[test]
    fn a_huge_query_is_cut_not_refused() {
        let q = format!("token=t&{}", "x".repeat(100_000));
        assert_eq!(Credentials::parse(Some(&q)).token.as_deref(), Some("t"));
    }
}
