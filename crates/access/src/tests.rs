use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

fn peer(s: &str) -> SocketAddr {
    s.parse().expect("a socket address")
}

fn req<'a>(
    action: Action,
    key: (&'a str, &'a str),
    ip: &str,
    query: Option<&'a str>,
) -> Request<'a> {
    Request {
        action,
        protocol: Protocol::Rtmp,
        tls: false,
        app: key.0,
        stream: key.1,
        peer: peer(ip),
        query,
        authorization: None,
    }
}

fn net(s: &str) -> IpNet {
    s.parse().expect("a network")
}

fn access(rules: Vec<Rule>) -> Arc<Access> {
    Access::new(Options {
        rules,
        sign_secret: Some(b"secret".to_vec()),
        ..Options::default()
    })
}

fn denied(d: Decision) -> DenialCause {
    match d {
        Decision::Deny(d) => d.cause,
        Decision::Allow(g) => panic!("allowed: {g:?}"),
    }
}

#[test]
fn no_rule_allows_everything() {
    let a = access(vec![]);
    assert!(matches!(
        a.decide(&req(Action::Publish, ("live", "x"), "1.2.3.4:1", None), 0),
        Decision::Allow(_)
    ));
    assert!(!a.restricts(Action::Publish));
}

#[test]
fn tokens_gate_publish_and_the_first_matching_rule_governs() {
    let a = access(vec![
        Rule {
            app: "live".into(),
            stream: "open-*".into(),
            ..Rule::default()
        },
        Rule {
            app: "live".into(),
            stream: "*".into(),
            publish: Policy {
                tokens: vec!["t1".into()],
                ..Policy::default()
            },
            ..Rule::default()
        },
    ]);
    let ip = "10.0.0.1:5000";
    assert!(matches!(
        a.decide(&req(Action::Publish, ("live", "open-1"), ip, None), 0),
        Decision::Allow(_)
    ));
    assert_eq!(
        denied(a.decide(&req(Action::Publish, ("live", "cam"), ip, None), 0)),
        DenialCause::NoCredentials
    );
    assert_eq!(
        denied(a.decide(
            &req(Action::Publish, ("live", "cam"), ip, Some("token=t2")),
            0
        )),
        DenialCause::BadCredentials
    );
    match a.decide(
        &req(Action::Publish, ("live", "cam"), ip, Some("x=1&token=t1")),
        0,
    ) {
        Decision::Allow(g) => assert_eq!(g.carry.as_deref(), Some("token=t1")),
        d => panic!("{d:?}"),
    }
    // Play of the same stream is open: the rule's play policy names no credential.
    assert!(matches!(
        a.decide(&req(Action::Play, ("live", "cam"), ip, None), 0),
        Decision::Allow(_)
    ));
    // Another app has no rule.
    assert!(matches!(
        a.decide(&req(Action::Publish, ("other", "cam"), ip, None), 0),
        Decision::Allow(_)
    ));
}

#[test]
fn ip_lists_deny_first_then_allow() {
    let a = access(vec![Rule {
        app: "*".into(),
        stream: "*".into(),
        publish: Policy {
            allow_ips: vec![net("127.0.0.0/8"), net("10.0.0.0/8")],
            deny_ips: vec![net("10.9.0.0/16")],
            ..Policy::default()
        },
        ..Rule::default()
    }]);
    let d = |ip| a.decide(&req(Action::Publish, ("live", "x"), ip, None), 0);
    assert!(matches!(d("127.0.0.2:1"), Decision::Allow(_)));
    assert!(matches!(d("[::ffff:127.0.0.1]:1"), Decision::Allow(_)));
    assert!(matches!(d("10.1.2.3:1"), Decision::Allow(_)));
    assert_eq!(denied(d("10.9.1.1:1")), DenialCause::Ip);
    assert_eq!(denied(d("192.168.1.1:1")), DenialCause::Ip);
}

#[test]
fn signed_links_admit_until_they_expire() {
    let a = access(vec![Rule {
        app: "live".into(),
        stream: "*".into(),
        play: Policy {
            signed: true,
            ..Policy::default()
        },
        ..Rule::default()
    }]);
    let q = a
        .sign(Action::Play, "live", "cam", 100)
        .expect("a secret is set");
    let d = |q: &str, now| {
        a.decide(
            &req(Action::Play, ("live", "cam"), "1.1.1.1:1", Some(q)),
            now,
        )
    };
    match d(&q, 50) {
        Decision::Allow(g) => assert_eq!(g.carry.as_deref(), Some(q.as_str())),
        x => panic!("{x:?}"),
    }
    assert_eq!(denied(d(&q, 101)), DenialCause::Expired);
    let other = a
        .sign(Action::Play, "live", "cam2", 100)
        .expect("a secret is set");
    assert_eq!(denied(d(&other, 50)), DenialCause::BadCredentials);
    let publish = a
        .sign(Action::Publish, "live", "cam", 100)
        .expect("a secret is set");
    assert_eq!(denied(d(&publish, 50)), DenialCause::BadCredentials);
}

#[test]
fn carry_into_appends_to_uris() {
    let g = Grant {
        user: None,
        carry: Some("token=a".into()),
    };
    assert_eq!(g.carry_into("seg1.ts"), "seg1.ts?token=a");
    assert_eq!(g.carry_into("key?id=3"), "key?id=3&token=a");
    assert_eq!(Grant::default().carry_into("seg1.ts"), "seg1.ts");
}

#[test]
fn api_token() {
    let open = Access::open();
    assert!(open.api_allowed(None, None));
    let a = Access::new(Options {
        api_token: Some("k3y".into()),
        ..Options::default()
    });
    assert!(!a.api_allowed(None, None));
    assert!(!a.api_allowed(Some("Bearer nope"), None));
    assert!(a.api_allowed(Some("Bearer k3y"), None));
    assert!(a.api_allowed(None, Some("token=k3y")));
    assert_eq!(a.stats().snapshot().api_denied, 2);
}

/// A one-connection-at-a-time HTTP server answering every request with `status` after `delay`,
/// handing each request body to the returned channel.
async fn hook_server(
    status: u16,
    delay: Duration,
) -> (String, tokio::sync::mpsc::Receiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            let _ = tx.send(text[end + 4..end + 4 + len].to_owned()).await;
                            tokio::time::sleep(delay).await;
                            let resp = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                            let _ = s.write_all(resp.as_bytes()).await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (format!("http://{addr}/hook"), rx)
}

fn with_hook(url: String, timeout: Duration) -> Arc<Access> {
    Access::new(Options {
        hooks: Hooks {
            on_publish: Some(url.clone()),
            on_unpublish: Some(url),
            timeout,
            ..Hooks::default()
        },
        ..Options::default()
    })
}

#[tokio::test]
async fn hook_allows_with_2xx_and_sees_the_request() {
    let (url, mut bodies) = hook_server(204, Duration::ZERO).await;
    let a = with_hook(url, Duration::from_secs(5));
    assert!(a.restricts(Action::Publish));
    let r = req(
        Action::Publish,
        ("live", "cam"),
        "127.0.0.1:4000",
        Some("token=x"),
    );
    assert!(a.check(&r).await.is_ok());
    let body: serde_json::Value =
        serde_json::from_str(&bodies.recv().await.expect("a body")).expect("JSON");
    assert_eq!(body["action"], "publish");
    assert_eq!(body["protocol"], "rtmp");
    assert_eq!(body["app"], "live");
    assert_eq!(body["stream"], "cam");
    assert_eq!(body["client_ip"], "127.0.0.1");
    assert_eq!(body["query"], "token=x");
    // Play has no hook configured.
    assert!(a
        .check(&req(Action::Play, ("live", "cam"), "127.0.0.1:4000", None))
        .await
        .is_ok());
}

#[tokio::test]
async fn hook_denies_with_other_statuses_and_on_timeout() {
    let (url, _bodies) = hook_server(403, Duration::ZERO).await;
    let a = with_hook(url, Duration::from_secs(5));
    let r = req(Action::Publish, ("live", "cam"), "127.0.0.1:4000", None);
    let d = a.check(&r).await.expect_err("403 denies");
    assert_eq!(d.cause, DenialCause::HookDenied);
    assert!(d.reason.contains("403"), "{}", d.reason);

    let (url, _bodies) = hook_server(200, Duration::from_secs(5)).await;
    let a = with_hook(url, Duration::from_millis(200));
    let d = a.check(&r).await.expect_err("a slow hook denies");
    assert_eq!(d.cause, DenialCause::HookFailed);

    let a = with_hook("http://127.0.0.1:1/nothing".into(), Duration::from_secs(2));
    let d = a.check(&r).await.expect_err("an unreachable hook denies");
    assert_eq!(d.cause, DenialCause::HookFailed);
    assert_eq!(a.stats().snapshot().hook_failures, 1);
}

#[tokio::test]
async fn notifications_are_posted() {
    let (url, mut bodies) = hook_server(200, Duration::ZERO).await;
    let a = with_hook(url, Duration::from_secs(5));
    a.notify(Notice {
        action: Action::Publish,
        protocol: Protocol::Rtmp,
        app: "live".into(),
        stream: "cam".into(),
        peer: peer("127.0.0.1:4000"),
        bytes: Some(1234),
        duration: Duration::from_millis(1500),
    });
    let body: serde_json::Value =
        serde_json::from_str(&bodies.recv().await.expect("a body")).expect("JSON");
    assert_eq!(body["action"], "unpublish");
    assert_eq!(body["bytes"], 1234);
    assert_eq!(body["duration_ms"], 1500);
    assert_eq!(a.stats().snapshot().notifications_sent, 1);
}

#[tokio::test]
async fn recheck_verifies_credentials_without_the_hook() {
    let (url, mut bodies) = hook_server(204, Duration::ZERO).await;
    let a = Access::new(Options {
        rules: vec![Rule {
            app: "live".into(),
            stream: "*".into(),
            play: Policy {
                tokens: vec!["t".into()],
                ..Policy::default()
            },
            ..Rule::default()
        }],
        hooks: Hooks {
            on_play: Some(url),
            ..Hooks::default()
        },
        ..Options::default()
    });
    let ok = req(
        Action::Play,
        ("live", "cam"),
        "127.0.0.1:1",
        Some("token=t"),
    );
    assert!(a.recheck(&ok).is_ok());
    let bad = req(
        Action::Play,
        ("live", "cam"),
        "127.0.0.1:1",
        Some("token=x"),
    );
    let d = a.recheck(&bad).expect_err("a wrong token");
    assert_eq!(d.cause, DenialCause::BadCredentials);
    let counts = a.stats().snapshot();
    assert_eq!((counts.allowed, counts.denied_bad_credentials), (0, 1));
    assert!(bodies.try_recv().is_err(), "recheck asked the hook");
    assert!(a.check(&ok).await.is_ok());
    assert!(bodies.recv().await.is_some(), "check asks the hook");
}

#[test]
fn a_stale_digest_nonce_is_challenged_again_with_stale_true() {
    let a = Access::new(Options {
        rules: vec![Rule {
            app: "*".into(),
            stream: "*".into(),
            play: Policy {
                users: vec![User {
                    name: "cam".into(),
                    password: "pw".into(),
                }],
                ..Policy::default()
            },
            ..Rule::default()
        }],
        ..Options::default()
    });
    let nonce = digest::nonce(&a.nonce_key, 1000);
    let ha1 = digest::md5_hex("cam:gateway:pw");
    let ha2 = digest::md5_hex("PLAY:rtsp://h/live/x");
    let r = digest::md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
    let header = format!(
        "Digest username=\"cam\", realm=\"gateway\", nonce=\"{nonce}\", uri=\"rtsp://h/live/x\", response=\"{r}\""
    );
    let mut rq = req(Action::Play, ("live", "x"), "127.0.0.1:1", None);
    rq.authorization = Some(Authorization {
        header: &header,
        method: "PLAY",
        uri: "rtsp://h/live/x",
    });
    assert!(matches!(a.decide(&rq, 999), Decision::Allow(_)));
    let Decision::Deny(d) = a.decide(&rq, 1001) else {
        panic!("a stale nonce must not admit");
    };
    assert_eq!(d.cause, DenialCause::StaleNonce);
    assert!(a.challenges_for(&d)[0].ends_with("stale=true"));
    assert!(!a.challenges()[0].contains("stale"));
}

#[test]
fn replaced_options_decide_new_requests_and_the_counters_stay() {
    let token_for = |app: &str| Rule {
        app: app.into(),
        stream: "*".into(),
        play: Policy {
            tokens: vec!["t".into()],
            ..Policy::default()
        },
        ..Rule::default()
    };
    let a = access(vec![token_for("live")]);
    let ip = "10.0.0.1:5000";
    let live = req(Action::Play, ("live", "cam"), ip, None);
    let other = req(Action::Play, ("other", "cam"), ip, None);
    assert!(a.recheck(&live).is_err());
    assert!(a.recheck(&other).is_ok());
    a.replace(Options {
        rules: vec![token_for("other")],
        api_token: Some("k".into()),
        ..Options::default()
    });
    assert!(a.recheck(&live).is_ok(), "live is open now");
    assert_eq!(
        a.recheck(&other).map_err(|d| d.cause),
        Err(DenialCause::NoCredentials)
    );
    assert!(!a.api_allowed(None, None), "the new API token applies");
    assert_eq!(a.options().rules[0].app, "other");
    assert_eq!(a.stats().snapshot().denied_no_credentials, 2);
}
