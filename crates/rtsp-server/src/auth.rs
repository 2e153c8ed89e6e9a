//! Who may play, asked of crate `access` for each DESCRIBE, SETUP and PLAY of one connection.
//!
//! A client sends its credentials the way its URL or user gave them: `Authorization` (basic or
//! digest, the scheme ffmpeg, VLC, GStreamer and cameras answer a 401 with) on every request
//! after the challenge, or a `token=` / signed link (`expires=`, `sig=`) in the URL's query,
//! which most clients keep only on the DESCRIBE URL: their SETUP and PLAY URLs come from our
//! query-free Content-Base. So a connection remembers, per stream, that it was admitted, for
//! the digest nonce lifetime: a later request of that stream without credentials is admitted by
//! the memory, and one with credentials has them verified again by the rules (a wrong password
//! is refused even after a right one), and the `on_play` hook is asked once, not three times.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use access::{Access, Action, Authorization, Denial, DenialKind, Notice, Protocol};
use rtsp::{Request, Response, ServerConnection};

/// Streams one connection remembers being admitted to (a session plays one; a client may
/// DESCRIBE a few first).
const MAX_REMEMBERED: usize = 4;

/// The access state of one RTSP connection.
pub(crate) struct ConnAccess {
    access: Arc<Access>,
    peer: SocketAddr,
    /// Whether the connection is TLS (RTSPS); the hook is told.
    tls: bool,
    /// Stream keys this connection was admitted to, and when; the oldest first.
    admitted: Vec<(String, Instant)>,
}

impl ConnAccess {
    pub(crate) fn new(access: Arc<Access>, peer: SocketAddr, tls: bool) -> ConnAccess {
        ConnAccess {
            access,
            peer,
            tls,
            admitted: Vec::new(),
        }
    }

    /// Decides whether `req` may go on with stream `key`; a refusal is the response to send
    /// (401 with the challenges, or 403), answering the request pending in `rtsp`.
    pub(crate) async fn authorize(
        &mut self,
        req: &Request,
        key: &str,
        rtsp: &mut ServerConnection,
    ) -> Option<Response> {
        let denial = self.check(req, key).await.err()?;
        let challenges = match denial.kind {
            DenialKind::Unauthorized => self.access.challenges_for(&denial).to_vec(),
            DenialKind::Forbidden => Vec::new(),
        };
        Some(rtsp.reject_access(denial.http_status(), &denial.reason, &challenges))
    }

    async fn check(&mut self, req: &Request, key: &str) -> Result<(), Denial> {
        if !self.access.restricts(Action::Play) {
            return Ok(());
        }
        let (app, stream) = split_key(key);
        let query = rtsp::uri_query(&req.uri);
        let authorization = req.header("Authorization").map(|header| Authorization {
            header,
            method: req.method.as_str(),
            uri: &req.uri,
        });
        let request = access::Request {
            action: Action::Play,
            protocol: Protocol::Rtsp,
            tls: self.tls,
            app,
            stream,
            peer: self.peer,
            query,
            authorization,
        };
        let credentials = authorization.is_some() || access::credential_query(query).is_some();
        if self.remembers(key) {
            return match credentials {
                false => Ok(()),
                true => self.access.recheck(&request).map(drop),
            };
        }
        let grant = self.access.check(&request).await?;
        let credential = match authorization.map(|a| a.header.split(' ').next()) {
            Some(scheme) => scheme.unwrap_or_default().to_ascii_lowercase(),
            None if credentials => "query".to_owned(),
            None => "none".to_owned(),
        };
        tracing::info!(peer = %self.peer, stream = %key, user = grant.user.as_deref().map(tracing::field::display), %credential, "RTSP play admitted");
        self.remember(key);
        Ok(())
    }

    fn lifetime(&self) -> Duration {
        self.access.options().nonce_lifetime
    }

    fn remembers(&self, key: &str) -> bool {
        let lifetime = self.lifetime();
        self.admitted
            .iter()
            .any(|(k, at)| k == key && at.elapsed() < lifetime)
    }

    fn remember(&mut self, key: &str) {
        let lifetime = self.lifetime();
        self.admitted
            .retain(|(k, at)| k != key && at.elapsed() < lifetime);
        if self.admitted.len() >= MAX_REMEMBERED {
            self.admitted.remove(0);
        }
        self.admitted.push((key.to_owned(), Instant::now()));
    }

    /// Tells the `on_stop` hook that a session that played `key` ended.
    pub(crate) fn stopped(&self, key: &str, bytes: u64, duration: Duration) {
        let (app, stream) = split_key(key);
        self.access.notify(Notice {
            action: Action::Play,
            protocol: Protocol::Rtsp,
            app: app.to_owned(),
            stream: stream.to_owned(),
            peer: self.peer,
            bytes: Some(bytes),
            duration,
        });
    }
}

/// `app/stream` as the rules see it: the first path segment is the app.
fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or((key, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_a_few_streams_and_forgets_the_oldest() {
        let peer = SocketAddr::from(([127, 0, 0, 1], 5000));
        let mut a = ConnAccess::new(Access::open(), peer, false);
        assert!(!a.remembers("live/a"));
        for k in ["live/a", "live/b", "live/c", "live/d"] {
            a.remember(k);
        }
        assert!(a.remembers("live/a") && a.remembers("live/d"));
        // Remembering one again moves it to the end instead of adding a second entry.
        a.remember("live/a");
        a.remember("live/e");
        assert_eq!(a.admitted.len(), MAX_REMEMBERED);
        assert!(!a.remembers("live/b"), "the oldest is forgotten");
        assert!(a.remembers("live/a") && a.remembers("live/e"));
    }

    #[test]
    fn keys_split_at_the_first_slash() {
        assert_eq!(split_key("live/cam"), ("live", "cam"));
        assert_eq!(split_key("live/a/b"), ("live", "a/b"));
        assert_eq!(split_key("cam"), ("cam", ""));
    }
}
