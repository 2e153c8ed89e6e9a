//! The access decision of every HLS request (playlist, segment, key).
//!
//! A player makes a request every second or two for as long as it plays, so an `on_play` hook
//! asked for each one would see a POST per segment per viewer. When a hook is configured, a
//! decision (allow or refusal) is therefore kept for [`DECISION_TTL`] per client address, stream
//! and credential, in a table of at most [`MAX_DECISIONS`] entries: the hook is asked about once
//! per viewer per [`DECISION_TTL`], and every request, segments included, is still decided (a
//! segment URL without the credential is a different entry and is decided on its own). Without a
//! hook nothing is kept: the rules are cheap and decide every request at its own time, so a
//! signed link stops working the second it expires. With one, a link may outlive its expiry by
//! up to [`DECISION_TTL`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use access::{Access, Action, Denial, Grant, Protocol};

/// How long a hook-backed decision is reused.
pub(crate) const DECISION_TTL: Duration = Duration::from_secs(5);
/// Most decisions kept; past it expired ones are dropped, and if none has expired, all are.
pub(crate) const MAX_DECISIONS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DecisionKey {
    ip: IpAddr,
    stream: String,
    credentials: Option<String>,
}

/// A decision and when it was made.
type Decided = (Instant, Result<Grant, Denial>);

/// Recent decisions (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct Gate {
    recent: Mutex<HashMap<DecisionKey, Decided>>,
}

impl Gate {
    /// Decides a request for `app/stream` from `peer` with the URL's `query`. The grant's
    /// `carry` is the credential to repeat in the URIs of a playlist served to this viewer.
    pub(crate) async fn check(
        &self,
        access: &Access,
        (app, stream): (&str, &str),
        peer: Option<SocketAddr>,
        query: Option<&str>,
    ) -> Result<Grant, Denial> {
        // Without `ConnectInfo` (a router served bare) the unspecified address is checked, which
        // no allow list contains: IP rules fail closed.
        let peer = peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let credentials = access::credential_query(query);
        let hooked = access.options().hooks.on_play.is_some();
        let key = DecisionKey {
            ip: peer.ip(),
            stream: format!("{app}/{stream}"),
            credentials: credentials.clone(),
        };
        let now = Instant::now();
        if hooked {
            if let Some(hit) = self.recent(&key, now) {
                return hit;
            }
        }
        let req = access::Request {
            action: Action::Play,
            protocol: Protocol::Hls,
            tls: false,
            app,
            stream,
            peer,
            query,
            authorization: None,
        };
        // A hook may admit a credential the rules do not know (no rule matched, so the grant
        // carries nothing): the playlist repeats whatever credential the URL had.
        let result = access.check(&req).await.map(|g| Grant {
            carry: g.carry.or(credentials),
            ..g
        });
        if hooked {
            self.remember(key, now, result.clone());
        }
        result
    }

    fn recent(&self, key: &DecisionKey, now: Instant) -> Option<Result<Grant, Denial>> {
        let recent = self
            .recent
            .lock()
            .expect("the decision table is never poisoned");
        recent
            .get(key)
            .filter(|(at, _)| now.duration_since(*at) < DECISION_TTL)
            .map(|(_, r)| r.clone())
    }

    fn remember(&self, key: DecisionKey, now: Instant, result: Result<Grant, Denial>) {
        let mut recent = self
            .recent
            .lock()
            .expect("the decision table is never poisoned");
        if recent.len() >= MAX_DECISIONS {
            recent.retain(|_, (at, _)| now.duration_since(*at) < DECISION_TTL);
            if recent.len() >= MAX_DECISIONS {
                recent.clear();
            }
        }
        recent.insert(key, (now, result));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.recent.lock().expect("never poisoned").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(i: u32) -> Option<SocketAddr> {
        Some(SocketAddr::from((
            std::net::Ipv4Addr::from(0x0a00_0000 + i),
            1000,
        )))
    }

    fn hooked_access() -> std::sync::Arc<Access> {
        // A hook nobody answers: every decision that reaches it is a refusal, quickly.
        Access::new(access::Options {
            hooks: access::Hooks {
                on_play: Some("http://127.0.0.1:1/hook".into()),
                timeout: Duration::from_millis(500),
                ..access::Hooks::default()
            },
            ..access::Options::default()
        })
    }

    #[tokio::test]
    async fn a_hook_decision_is_reused_per_client_stream_and_credential() {
        let access = hooked_access();
        let gate = Gate::default();
        let key = ("live", "cam");
        assert!(gate
            .check(&access, key, peer(1), Some("token=a"))
            .await
            .is_err());
        assert!(gate
            .check(&access, key, peer(1), Some("token=a"))
            .await
            .is_err());
        assert_eq!(access.stats().snapshot().hook_failures, 1, "asked once");
        assert!(gate
            .check(&access, key, peer(1), Some("token=b"))
            .await
            .is_err());
        assert!(gate
            .check(&access, key, peer(2), Some("token=a"))
            .await
            .is_err());
        assert_eq!(access.stats().snapshot().hook_failures, 3);
        assert_eq!(gate.len(), 3);
    }

    #[tokio::test]
    async fn without_a_hook_every_request_is_decided_and_nothing_is_kept() {
        let access = Access::open();
        let gate = Gate::default();
        for _ in 0..3 {
            let g = gate
                .check(&access, ("live", "cam"), peer(1), Some("x=1&token=t"))
                .await
                .expect("open");
            assert_eq!(g.carry.as_deref(), Some("token=t"));
        }
        assert_eq!(access.stats().snapshot().allowed, 3);
        assert_eq!(gate.len(), 0);
    }

    #[test]
    fn the_table_is_bounded() {
        let gate = Gate::default();
        let now = Instant::now();
        for i in 0..(MAX_DECISIONS as u32 + 10) {
            let key = DecisionKey {
                ip: peer(i).expect("an address").ip(),
                stream: "live/cam".into(),
                credentials: None,
            };
            gate.remember(key, now, Ok(Grant::default()));
        }
        assert!(gate.len() <= MAX_DECISIONS);
    }
}
