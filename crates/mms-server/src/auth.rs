//! Who may play, asked of crate `access` before an MMSH or MMST viewer gets a stream's header.
//!
//! A publishing point is checked as the bus stream it maps to, so a rule for `live/cam` also
//! governs `mms://host/LiveEvents` when `LiveEvents` plays `live/cam`. Credentials come in the
//! URL's query (`mms://host/live/cam?token=...`, a signed link's `expires=` and `sig=`): ffmpeg
//! and Windows Media Player send the query in the MMSH request line and in MMST's OpenFile path.
//! MMSH requests may also carry HTTP basic or digest `Authorization`.

use std::net::SocketAddr;
use std::time::Duration;

use access::{Access, Action, Authorization, Denial, Grant, Notice, Protocol};

/// What a viewer asked with.
pub(crate) struct Asked<'a> {
    pub protocol: Protocol,
    /// MMSH on the HTTPS listener (MMST has no TLS).
    pub tls: bool,
    pub peer: SocketAddr,
    /// The bus key the name resolved to.
    pub key: &'a str,
    pub query: Option<&'a str>,
    pub authorization: Option<Authorization<'a>>,
}

/// Decides whether the viewer may play; a denial is already logged and counted.
pub(crate) async fn check(access: &Access, asked: &Asked<'_>) -> Result<Grant, Denial> {
    let (app, stream) = split_key(asked.key);
    access
        .check(&access::Request {
            action: Action::Play,
            protocol: asked.protocol,
            tls: asked.tls,
            app,
            stream,
            peer: asked.peer,
            query: asked.query,
            authorization: asked.authorization,
        })
        .await
}

/// Tells the `on_stop` hook that a viewer of `key` left.
pub(crate) fn stopped(
    access: &Access,
    protocol: Protocol,
    key: &str,
    peer: SocketAddr,
    bytes: u64,
    duration: Duration,
) {
    let (app, stream) = split_key(key);
    access.notify(Notice {
        action: Action::Play,
        protocol,
        app: app.to_owned(),
        stream: stream.to_owned(),
        peer,
        bytes: Some(bytes),
        duration,
    });
}

/// The query of an MMST OpenFile path or an MMSH path, without `?`; `None` when empty.
pub(crate) fn path_query(path: &str) -> Option<&str> {
    let query = path.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or_default();
    (!query.is_empty()).then_some(query)
}

fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or((key, ""))
}

#[cfg(test)]
mod tests {
    use super::path_query;

    #[test]
    fn queries_of_paths() {
        assert_eq!(path_query("live/test"), None);
        assert_eq!(path_query("live/test?"), None);
        assert_eq!(path_query("live/test?token=a"), Some("token=a"));
        assert_eq!(path_query("/LiveEvents?token=a#x"), Some("token=a"));
    }
}
