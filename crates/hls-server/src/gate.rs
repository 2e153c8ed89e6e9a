//! The access decision of every HLS request (playlist, segment, key).
//!
//! A player makes a request every second or two for as long as it plays, so an `on_play` hook
//! asked for each one would see a POST per segment per viewer. When a hook is configured, its
//! decision is therefore kept for [`DECISION_TTL`] per client address, stream, credential and TLS
//! or not, in a table of at most [`MAX_DECISIONS`] entries: the hook is asked about once per viewer per
//! [`DECISION_TTL`]. A kept admission still has every request decided by the rules
//! ([`Access::recheck`]: tokens, IP lists, a signed link's expiry, to the second); a kept refusal
//! is answered again without asking the hook. A segment URL without the credential is a
//! different entry and is decided on its own. Without a hook nothing is kept: `check` asks only
//! the rules.

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
    /// A hook may answer a request over HTTPS otherwise than the same over plain HTTP.
    tls: bool,
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
        tls: bool,
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
            tls,
        };
        let now = Instant::now();
        let req = access::Request {
            action: Action::Play,
            protocol: Protocol::Hls,
            tls,
            app,
            stream,
            peer,
            query,
            authorization: None,
        };
        let carry = |g: Grant, credentials: Option<String>| Grant {
            carry: g.carry.or(credentials),
            ..g
        };
        if hooked {
            match self.recent(&key, now) {
                Some(Ok(_)) => return access.recheck(&req).map(|g| carry(g, credentials)),
                Some(Err(denial)) => return Err(denial),
                None => {}
            }
        }
        // A hook may admit a credential the rules do not know (no rule matched, so the grant
        // carries nothing): the playlist repeats whatever credential the URL had.
        let result = access.check(&req).await.map(|g| carry(g, credentials));
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
            .check(&access, key, peer(1), Some("token=a"), false)
            .await
            .is_err());
        assert!(gate
            .check(&access, key, peer(1), Some("token=a"), false)
            .await
            .is_err());
        assert_eq!(access.stats().snapshot().hook_failures, 1, "asked once");
        assert!(gate
            .check(&access, key, peer(1), Some("token=b"), false)
            .await
            .is_err());
        assert!(gate
            .check(&access, key, peer(2), Some("token=a"), false)
            .await
            .is_err());
        assert_eq!(access.stats().snapshot().hook_failures, 3);
        assert_eq!(gate.len(), 3);
    }

    /// A hook that admits everything, answering on a loopback port.
    async fn admitting_hook() -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let ok = "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n";
                let _ = s.write_all(ok.as_bytes()).await;
            }
        });
        format!("http://{addr}/hook")
    }

    #[tokio::test]
    async fn a_kept_admission_is_still_decided_by_the_rules() {
        let access = Access::new(access::Options {
            rules: vec![access::Rule {
                app: "live".into(),
                stream: "*".into(),
                play: access::Policy {
                    deny_ips: vec!["10.0.0.2/32".parse().expect("a network")],
                    ..access::Policy::default()
                },
                ..access::Rule::default()
            }],
            hooks: access::Hooks {
                on_play: Some(admitting_hook().await),
                ..access::Hooks::default()
            },
            ..access::Options::default()
        });
        let gate = Gate::default();
        let key = ("live", "cam");
        for _ in 0..3 {
            let g = gate
                .check(&access, key, peer(1), Some("token=t"), false)
                .await;
            assert_eq!(g.expect("admitted").carry.as_deref(), Some("token=t"));
        }
        // The hook was asked once; the rules decided the other two.
        assert_eq!(access.stats().snapshot().allowed, 1);
        assert!(gate
            .check(&access, key, peer(2), None, false)
            .await
            .is_err());
    }

    #[tokio::test]
    async fn without_a_hook_every_request_is_decided_and_nothing_is_kept() {
        let access = Access::open();
        let gate = Gate::default();
        for _ in 0..3 {
            let g = gate
                .check(
                    &access,
                    ("live", "cam"),
                    peer(1),
                    Some("x=1&token=t"),
                    false,
                )
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
                tls: false,
            };
            gate.remember(key, now, Ok(Grant::default()));
        }
        assert!(gate.len() <= MAX_DECISIONS);
    }
}
