//! Publishing-point names to bus keys.

use crate::Options;

/// A request path resolved to a bus stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The name the client used, without leading slash, query or `.asx`: `LiveEvents`, `live/test`.
    pub name: String,
    /// The bus key, `{app}/{stream}`.
    pub key: String,
}

/// Resolves a path (`/LiveEvents`, `live/test`, `/live/test.asx`, with or without a query) to a
/// bus key: a configured publishing point (names compare case-insensitively, as Windows Media
/// Services did) or, failing that, `{app}/{stream}` taken directly.
pub fn resolve(opts: &Options, path: &str) -> Option<Target> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let name = path.trim_matches('/');
    if name.is_empty() || name.len() > 256 {
        return None;
    }
    if let Some(pp) = opts
        .publishing_points
        .iter()
        .find(|pp| pp.name.eq_ignore_ascii_case(name))
    {
        return Some(Target {
            name: name.to_owned(),
            key: pp.stream.clone(),
        });
    }
    let mut parts = name.split('/');
    let (app, stream) = (parts.next()?, parts.next()?);
    if parts.next().is_some() || app.is_empty() || stream.is_empty() {
        return None;
    }
    Some(Target {
        name: name.to_owned(),
        key: format!("{app}/{stream}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PublishingPoint;

    #[test]
    fn resolution() {
        let opts = Options {
            publishing_points: vec![PublishingPoint {
                name: "LiveEvents".into(),
                stream: "live/test".into(),
            }],
            ..Options::default()
        };
        let cases: &[(&str, Option<&str>)] = &[
            ("/LiveEvents", Some("live/test")),
            ("liveevents", Some("live/test")),
            ("/LiveEvents?WMCache=0", Some("live/test")),
            ("/live/other", Some("live/other")),
            ("live/other", Some("live/other")),
            ("/Unknown", None),
            ("/a/b/c", None),
            ("/", None),
            ("//x", None),
        ];
        for (path, key) in cases {
            assert_eq!(
                resolve(&opts, path).map(|t| t.key),
                key.map(String::from),
                "{path}"
            );
        }
    }
}
