//! `[auth]`, `[auth.hooks]` and `[[auth.rule]]`: who may publish and play.

use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::sections::{check_range, Invalid};

/// `[auth]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSection {
    /// Key of signed URLs (HMAC-SHA256); empty turns them off.
    pub sign_secret: String,
    /// Realm of RTSP `WWW-Authenticate` challenges.
    pub realm: String,
    /// Seconds an RTSP digest nonce stays valid.
    pub nonce_lifetime_secs: u64,
    /// Token of the API and web page; empty: none on a loopback HTTP listener, a random one
    /// (logged at start-up) on any other.
    pub api_token: String,
    pub hooks: HooksSection,
    /// `[[auth.rule]]`, tried in order.
    pub rule: Vec<RuleSection>,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            sign_secret: String::new(),
            realm: "gateway".into(),
            nonce_lifetime_secs: 300,
            api_token: String::new(),
            hooks: HooksSection::default(),
            rule: Vec::new(),
        }
    }
}

/// `[auth.hooks]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct HooksSection {
    pub on_publish: String,
    pub on_play: String,
    pub on_unpublish: String,
    pub on_stop: String,
    pub timeout_ms: u64,
}

impl Default for HooksSection {
    fn default() -> Self {
        HooksSection {
            on_publish: String::new(),
            on_play: String::new(),
            on_unpublish: String::new(),
            on_stop: String::new(),
            timeout_ms: 3000,
        }
    }
}

/// One `[[auth.rule]]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RuleSection {
    pub app: String,
    pub stream: String,
    pub publish: PolicySection,
    pub play: PolicySection,
}

impl Default for RuleSection {
    fn default() -> Self {
        RuleSection {
            app: "*".into(),
            stream: "*".into(),
            publish: PolicySection::default(),
            play: PolicySection::default(),
        }
    }
}

/// `[auth.rule.publish]` or `[auth.rule.play]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySection {
    pub tokens: Vec<String>,
    /// `"name:password"` pairs.
    pub users: Vec<String>,
    pub signed: bool,
    /// Networks such as `"10.0.0.0/8"` or single addresses.
    pub allow_ips: Vec<String>,
    pub deny_ips: Vec<String>,
}

/// An address or network as written in `allow_ips`/`deny_ips`: `a.b.c.d/len`, `a.b.c.d`, or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl FromStr for Network {
    type Err = ();
    fn from_str(s: &str) -> Result<Network, ()> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().map_err(|_| ())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().map_err(|_| ())?,
            None => max,
        };
        if prefix > max {
            return Err(());
        }
        Ok(Network { addr, prefix })
    }
}

impl PolicySection {
    /// The users as (name, password).
    pub fn user_pairs(&self) -> Vec<(String, String)> {
        self.users
            .iter()
            .filter_map(|u| u.split_once(':'))
            .map(|(n, p)| (n.to_owned(), p.to_owned()))
            .collect()
    }

    /// `allow_ips` parsed (validation has checked every entry).
    pub fn allow_networks(&self) -> Vec<Network> {
        self.allow_ips
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    /// `deny_ips` parsed.
    pub fn deny_networks(&self) -> Vec<Network> {
        self.deny_ips
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    fn validate(&self, key: &str, rule: usize, secret: bool) -> Result<(), Invalid> {
        let bad =
            |k: &str, what: String| Err((format!("{key}.{k}"), format!("rule {rule}: {what}")));
        for t in &self.tokens {
            if t.is_empty() || t.len() > 256 || t.chars().any(char::is_control) {
                return bad(
                    "tokens",
                    "a token must be 1 to 256 printable characters".into(),
                );
            }
        }
        for u in &self.users {
            match u.split_once(':') {
                Some((n, p)) if !n.is_empty() && !p.is_empty() && !n.contains('"') => {}
                _ => return bad("users", format!("must be \"name:password\", got \"{u}\"")),
            }
        }
        if self.signed && !secret {
            return bad("signed", "signed links need auth.sign_secret".into());
        }
        for (k, list) in [("allow_ips", &self.allow_ips), ("deny_ips", &self.deny_ips)] {
            if let Some(n) = list.iter().find(|n| n.parse::<Network>().is_err()) {
                return bad(
                    k,
                    format!("\"{n}\" is not an address or network such as \"10.0.0.0/8\""),
                );
            }
        }
        Ok(())
    }
}

pub(crate) fn check_url(key: &str, url: &str) -> Result<(), Invalid> {
    if url.is_empty() || url.starts_with("http://") || url.starts_with("https://") {
        return Ok(());
    }
    Err((
        key.to_owned(),
        format!("must be an http:// or https:// URL, or empty, got \"{url}\""),
    ))
}

pub(crate) fn check_pattern(key: &str, rule: usize, p: &str) -> Result<(), Invalid> {
    if p.is_empty() || p.len() > 256 || p.contains('/') {
        return Err((
            key.to_owned(),
            format!("rule {rule}: must be 1 to 256 characters without '/' (\"*\" matches all), got \"{p}\""),
        ));
    }
    Ok(())
}

impl AuthSection {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        if self.realm.is_empty() || self.realm.contains('"') || self.realm.len() > 128 {
            return Err((
                "auth.realm".into(),
                "must be 1 to 128 characters without '\"'".into(),
            ));
        }
        check_range(
            "auth.nonce_lifetime_secs",
            self.nonce_lifetime_secs,
            10,
            86_400,
        )?;
        if !self.api_token.is_empty() && self.api_token.len() < 8 {
            return Err((
                "auth.api_token".into(),
                "must be empty or at least 8 characters".into(),
            ));
        }
        let h = &self.hooks;
        check_url("auth.hooks.on_publish", &h.on_publish)?;
        check_url("auth.hooks.on_play", &h.on_play)?;
        check_url("auth.hooks.on_unpublish", &h.on_unpublish)?;
        check_url("auth.hooks.on_stop", &h.on_stop)?;
        check_range("auth.hooks.timeout_ms", h.timeout_ms, 100, 30_000)?;
        let secret = !self.sign_secret.is_empty();
        for (i, r) in self.rule.iter().enumerate() {
            let n = i + 1;
            check_pattern("auth.rule.app", n, &r.app)?;
            check_pattern("auth.rule.stream", n, &r.stream)?;
            r.publish.validate("auth.rule.publish", n, secret)?;
            r.play.validate("auth.rule.play", n, secret)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn rules_with_policies_parse() {
        let c = Config::parse(
            r#"
[auth]
sign_secret = "s"
[[auth.rule]]
app = "live"
stream = "cam-*"
[auth.rule.publish]
tokens = ["t1"]
allow_ips = ["10.0.0.0/8", "127.0.0.1", "::1"]
[auth.rule.play]
signed = true
users = ["viewer:pw"]
[[auth.rule]]
app = "*"
"#,
            "gw.toml",
        )
        .expect("valid");
        assert_eq!(c.auth.rule.len(), 2);
        let r = &c.auth.rule[0];
        assert_eq!(r.publish.tokens, ["t1"]);
        assert_eq!(r.publish.allow_networks().len(), 3);
        assert_eq!(
            r.play.user_pairs(),
            [("viewer".to_owned(), "pw".to_owned())]
        );
        assert_eq!(c.auth.rule[1].stream, "*");
    }

    #[test]
    fn bad_rules_name_the_key() {
        let err = |t: &str| {
            Config::parse(t, "gw.toml")
                .expect_err("invalid")
                .to_string()
        };
        let e = err("[[auth.rule]]\n[auth.rule.play]\nsigned = true\n");
        assert!(
            e.contains("auth.rule.play.signed") && e.contains("sign_secret"),
            "{e}"
        );
        let e = err("[[auth.rule]]\n[auth.rule.publish]\nallow_ips = [\"10.0.0.0/33\"]\n");
        assert!(e.contains("gw.toml:3") && e.contains("allow_ips"), "{e}");
        let e = err("[[auth.rule]]\n[auth.rule.play]\nusers = [\"nopassword\"]\n");
        assert!(e.contains("users"), "{e}");
        let e = err("[auth.hooks]\non_publish = \"ftp://x\"\n");
        assert!(e.contains("auth.hooks.on_publish"), "{e}");
    }
}
