//! The gateway's configuration file.
//!
//! This is the only crate that knows TOML. It reads `config/gateway.toml` (or the file given with
//! `--config`) into plain structs; the gateway binary turns them into each shell's `Options`.
//! Every key is optional and defaults to the value documented in the shipped, commented file.
//! Errors name the file, the line and the key, and say what was expected, because operators edit
//! this file by hand.

mod auth;
mod error;
mod record;
mod sections;

use std::path::Path;

pub use crate::auth::*;
pub use crate::error::ConfigError;
pub use crate::record::*;
pub use crate::sections::*;

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses and validates `text`; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| error::from_toml(&e, text, origin))?;
        config
            .validate()
            .map_err(|(key, problem)| error::invalid(text, origin, key, problem))?;
        Ok(config)
    }

    /// The dotted keys (`log.level`, `rtmp.max_connections`) whose values differ between `self`
    /// and `other`, sorted. An array of tables (`auth.rule`, `mms.publishing_point`) is
    /// one key. What a reload reports as applied or needing a restart.
    pub fn changed_keys(&self, other: &Config) -> Vec<String> {
        let as_value =
            |c: &Config| toml::Value::try_from(c).expect("a parsed config serializes back to TOML");
        let mut keys = Vec::new();
        diff_values("", &as_value(self), &as_value(other), &mut keys);
        keys.sort();
        keys
    }
}

impl Config {
    /// `self` with the values of the dotted `keys` (as [`Config::changed_keys`] names them)
    /// taken from `other`; every other key keeps its value. A reload builds the configuration in
    /// force this way from the keys that apply live.
    pub fn with_keys_from(&self, other: &Config, keys: &[String]) -> Config {
        let as_value =
            |c: &Config| toml::Value::try_from(c).expect("a parsed config serializes back to TOML");
        let (mut target, source) = (as_value(self), as_value(other));
        for key in keys {
            copy_key(&mut target, &source, key);
        }
        target
            .try_into()
            .expect("a config with keys of another parsed config deserializes")
    }
}

/// Sets `key` (dotted) in `target` to its value in `source`, or removes it if `source` lacks it.
fn copy_key(target: &mut toml::Value, source: &toml::Value, key: &str) {
    let (parent, name) = match key.rsplit_once('.') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let mut from = Some(source);
    let mut into = Some(target);
    for part in parent.into_iter().flat_map(|p| p.split('.')) {
        from = from.and_then(|v| v.get(part));
        into = into.and_then(|v| match v {
            toml::Value::Table(t) => Some(
                t.entry(part)
                    .or_insert_with(|| toml::Value::Table(Default::default())),
            ),
            _ => None,
        });
    }
    if let Some(toml::Value::Table(t)) = into {
        match from.and_then(|v| v.get(name)) {
            Some(v) => {
                t.insert(name.to_owned(), v.clone());
            }
            None => {
                t.remove(name);
            }
        }
    }
}

fn diff_values(prefix: &str, a: &toml::Value, b: &toml::Value, out: &mut Vec<String>) {
    match (a, b) {
        (toml::Value::Table(ta), toml::Value::Table(tb)) => {
            let names = ta.keys().chain(tb.keys().filter(|k| !ta.contains_key(*k)));
            for name in names {
                let key = match prefix {
                    "" => name.clone(),
                    p => format!("{p}.{name}"),
                };
                match (ta.get(name), tb.get(name)) {
                    (Some(x), Some(y)) => diff_values(&key, x, y, out),
                    _ => out.push(key),
                }
            }
        }
        _ if a != b => out.push(prefix.to_owned()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_err(text: &str, want: &str) {
        let err = Config::parse(text, "gw.toml")
            .expect_err("must fail")
            .to_string();
        assert_eq!(err, want, "for {text:?}");
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("", "gw.toml").unwrap();
        assert_eq!(c.rtmp.listen, "0.0.0.0:1935");
        assert_eq!(c.rtmp.chunk_size, 4096);
        assert_eq!(c.http.listen, "0.0.0.0:8080");
    }

    #[test]
    fn shipped_config_parses_and_matches_the_defaults() {
        let text = include_str!("../../../config/gateway.toml");
        let shipped = Config::parse(text, "config/gateway.toml").unwrap();
        let defaults = Config::parse("", "defaults").unwrap();
        assert_eq!(format!("{shipped:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        check_err(
            "[rtmp]\nlisten = \"0.0.0.0:1935\"\nchunk_sise = 4096\n",
            "gw.toml:3:1: key `rtmp.chunk_sise`: unknown field `chunk_sise`, expected one of \
             `listen`, `tls_listen`, `chunk_size`, `max_message_size`, `ack_window`, `wait_for_publisher`, \
             `handshake_timeout_secs`, `idle_timeout_secs`, `write_delay_ms`, `send_timeout_secs`, \
             `send_buffer_bytes`, `max_connections`, `max_connections_per_ip`, \
             `connection_rate_per_ip`, `connection_burst_per_ip`",
        );
    }

    #[test]
    fn backup_keys_are_checked() {
        let c = Config::parse(
            "[bus]\nbackup_suffix = \"_b\"\nfailover_ms = 500\n",
            "gw.toml",
        );
        assert_eq!(
            c.map(|c| (c.bus.backup_suffix, c.bus.failover_ms)).unwrap(),
            ("_b".into(), 500)
        );
        check_err(
            "[bus]\nfailover_ms = 50\n",
            "gw.toml:2: key `bus.failover_ms`: must be between 100 and 60000, got 50",
        );
    }

    #[test]
    fn limit_keys_are_checked() {
        let c = Config::parse(
            "[http]\nconnection_rate_per_ip = 20\nconnection_burst_per_ip = 40\n[bus]\nmax_streams_per_app = 5\n",
            "gw.toml",
        )
        .unwrap();
        assert_eq!(c.http.caps().connection_rate_per_ip, 20);
        assert_eq!(c.http.caps().connection_burst_per_ip, 40);
        assert_eq!((c.bus.max_streams, c.bus.max_streams_per_app), (10_000, 5));
        check_err(
            "[mms]\nconnection_rate_per_ip = 0\n",
            "gw.toml:2: key `mms.connection_rate_per_ip`: must be between 1 and 1000000, got 0",
        );
        check_err(
            "[bus]\nmax_streams = 10\nmax_streams_per_app = 11\n",
            "gw.toml:3: key `bus.max_streams_per_app`: must be between 1 and 10, got 11",
        );
    }

    #[test]
    fn log_format_is_text_or_json() {
        let c = Config::parse("", "gw.toml").unwrap();
        assert_eq!(c.log.format, LogFormat::Text);
        let c = Config::parse("[log]\nformat = \"json\"\n", "gw.toml").unwrap();
        assert_eq!(c.log.format, LogFormat::Json);
        let c = Config::parse("[log]\nformat = \"text\"\n", "gw.toml").unwrap();
        assert_eq!(c.log.format, LogFormat::Text);
        check_err(
            "[log]\nlevel = \"info\"\nformat = \"xml\"\n",
            "gw.toml:3:10: key `log.format`: unknown variant `xml`, expected `text` or `json`",
        );
        check_err(
            "[log]\nformat = \"JSON\"\n",
            "gw.toml:2:10: key `log.format`: unknown variant `JSON`, expected `text` or `json`",
        );
    }

    #[test]
    fn wrong_type_names_the_key() {
        check_err(
            "[http]\nlisten = 8080\n",
            "gw.toml:2:10: key `http.listen`: expected text in quotes, got 8080",
        );
    }

    #[test]
    fn wrong_types_are_named_in_words_not_rust_types() {
        let table = [
            (
                "[rtmp]\nchunk_size = \"abc\"\n",
                "rtmp.chunk_size",
                "2:14",
                "expected a whole number, got \"abc\"",
            ),
            (
                "[bus]\nfailover_ms = \"500\"\n",
                "bus.failover_ms",
                "2:15",
                "expected a whole number, got \"500\"",
            ),
            (
                "[bus]\nmax_streams = 1.5\n",
                "bus.max_streams",
                "2:15",
                "expected a whole number, got 1.5",
            ),
            (
                "[rtsp]\nrtp_port_min = true\n",
                "rtsp.rtp_port_min",
                "2:16",
                "expected a whole number, got true",
            ),
            (
                "[rtsp]\nrtp_port_min = 70000\n",
                "rtsp.rtp_port_min",
                "2:16",
                "expected a whole number from 0 to 65535, got 70000",
            ),
            (
                "[rtmp]\nchunk_size = -1\n",
                "rtmp.chunk_size",
                "2:14",
                "expected a whole number from 0 to 4294967295, got -1",
            ),
            (
                "[bus]\nmax_streams = -1\n",
                "bus.max_streams",
                "2:15",
                "expected a whole number (0 or more), got -1",
            ),
            (
                "[rtmp]\nwait_for_publisher = \"yes\"\n",
                "rtmp.wait_for_publisher",
                "2:22",
                "expected true or false, got \"yes\"",
            ),
            (
                "[hls]\nalways_on = 1\n",
                "hls.always_on",
                "2:13",
                "expected true or false, got 1",
            ),
            (
                "[http]\nlisten = [\"0.0.0.0:8080\"]\n",
                "http.listen",
                "2:10",
                "expected text in quotes, got a list",
            ),
            (
                "[hls]\nencrypt_apps = \"live\"\n",
                "hls.encrypt_apps",
                "2:16",
                "expected a list, got \"live\"",
            ),
            (
                "[hls]\nencrypt_apps = [1]\n",
                "hls.encrypt_apps",
                "2:17",
                "expected text in quotes, got 1",
            ),
            (
                "[rtmp]\nchunk_size = { a = 1 }\n",
                "rtmp.chunk_size",
                "2:14",
                "expected a whole number, got a table",
            ),
            ("rtmp = 5\n", "rtmp", "1:8", "expected a table, got 5"),
        ];
        for (text, key, at, problem) in table {
            check_err(text, &format!("gw.toml:{at}: key `{key}`: {problem}"));
        }
    }

    #[test]
    fn out_of_range_value_names_the_key_and_line() {
        check_err(
            "[rtmp]\n\nchunk_size = 10\n",
            "gw.toml:3: key `rtmp.chunk_size`: must be between 128 and 65536, got 10",
        );
    }

    #[test]
    fn bad_listen_address_is_explained() {
        check_err(
            "[rtsp]\nlisten = \"localhost\"\n",
            "gw.toml:2: key `rtsp.listen`: must be an IP:port such as \"0.0.0.0:8554\", got \"localhost\"",
        );
    }

    #[test]
    fn listeners_may_be_off_and_tls_listeners_need_a_certificate() {
        let c = Config::parse(
            "[rtmp]\nlisten = \"\"\ntls_listen = \"0.0.0.0:1936\"\n[http]\nlisten = \"\"\n\
             [tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n",
            "gw.toml",
        )
        .unwrap();
        assert_eq!(
            (c.rtmp.listen.as_str(), c.rtmp.tls_listen.as_str()),
            ("", "0.0.0.0:1936")
        );
        assert_eq!(c.http.listen, "");
        check_err(
            "[rtsp]\ntls_listen = \"0.0.0.0:8322\"\n",
            "gw.toml:2: key `rtsp.tls_listen`: is \"0.0.0.0:8322\", which needs a certificate: \
             set tls.cert_file and tls.key_file",
        );
        check_err(
            "[http]\ntls_listen = \"8443\"\n",
            "gw.toml:2: key `http.tls_listen`: must be an IP:port such as \"0.0.0.0:8443\", got \"8443\"",
        );
        check_err(
            "[tls]\ncert_file = \"c.pem\"\n",
            "gw.toml:2: key `tls.cert_file`: is set but tls.key_file is not; set both or neither",
        );
        check_err(
            "[tls]\nreload_check_secs = 0\n",
            "gw.toml:2: key `tls.reload_check_secs`: must be between 1 and 86400, got 0",
        );
    }

    #[test]
    fn changed_keys_are_named() {
        let old = Config::parse("[log]\nlevel = \"info\"\n", "a").unwrap();
        let new = Config::parse(
            "[log]\nlevel = \"debug\"\n[rtmp]\nlisten = \"0.0.0.0:1936\"\nmax_connections = 5\n\
             [[auth.rule]]\napp = \"live\"\n",
            "b",
        )
        .unwrap();
        assert_eq!(
            old.changed_keys(&new),
            [
                "auth.rule",
                "log.level",
                "rtmp.listen",
                "rtmp.max_connections"
            ]
        );
        assert!(new.changed_keys(&new.clone()).is_empty());
        let defaults = Config::parse("", "c").unwrap();
        assert!(
            old.changed_keys(&defaults).is_empty(),
            "info is the default"
        );
    }

    #[test]
    fn chosen_keys_are_taken_from_the_other_config() {
        let old = Config::parse("[rtmp]\nchunk_size = 4096\n", "a").unwrap();
        let new = Config::parse(
            "[log]\nlevel = \"debug\"\n[rtmp]\nchunk_size = 8192\nlisten = \"127.0.0.1:1\"\n\
             [[auth.rule]]\napp = \"live\"\n",
            "b",
        )
        .unwrap();
        let keys = ["auth.rule".to_owned(), "rtmp.chunk_size".to_owned()];
        let merged = old.with_keys_from(&new, &keys);
        assert_eq!(merged.rtmp.chunk_size, 8192);
        assert_eq!(merged.auth.rule.len(), 1);
        assert_eq!(merged.log.level, old.log.level, "not asked for");
        assert_eq!(merged.rtmp.listen, old.rtmp.listen, "not asked for");
        assert_eq!(
            merged.changed_keys(&new),
            ["log.level", "rtmp.listen"],
            "what stays different"
        );
    }

    #[test]
    fn syntax_error_points_at_the_line() {
        let err = Config::parse("[rtmp\nlisten=1\n", "gw.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("gw.toml:1:"), "{err}");
    }
}
