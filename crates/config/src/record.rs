//! `[record]` and `[[record.rule]]`: which published streams are recorded to disk, and how.

use serde::{Deserialize, Serialize};

use crate::auth::{check_pattern, check_url};
use crate::sections::{check_range, Invalid};

/// `[record]`: recording is off until a `[[record.rule]]` matches a stream.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RecordSection {
    /// Where recordings go (relative to the working directory, or absolute).
    pub dir: String,
    /// Finished recordings older than this are deleted; 0: kept however old.
    pub max_age_secs: u64,
    /// The oldest finished recordings are deleted while the directory holds more; 0: no cap.
    pub max_total_bytes: u64,
    /// Tags queued between a recorded stream's bus reader and its file writer.
    pub queue_tags: usize,
    /// `[[record.rule]]`, tried in order; the first whose patterns match a stream records it.
    pub rule: Vec<RecordRule>,
}

impl Default for RecordSection {
    fn default() -> Self {
        RecordSection {
            dir: "recordings".into(),
            max_age_secs: 0,
            max_total_bytes: 0,
            queue_tags: 256,
            rule: Vec::new(),
        }
    }
}

/// `record.rule.format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    /// Fragmented MP4 (H.264, H.265, AAC).
    #[default]
    Mp4,
    /// FLV (every tag as published).
    Flv,
    /// MPEG-TS (H.264, H.265, AAC).
    Ts,
}

/// One `[[record.rule]]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RecordRule {
    pub app: String,
    pub stream: String,
    pub format: RecordFormat,
    /// A file is closed at the first keyframe once it is this long (1 to 86400) ...
    pub segment_secs: u64,
    /// ... or this large; 0: no size limit.
    pub segment_bytes: u64,
    /// The file name below `dir`, without extension: `{app}`, `{stream}`, `{time}`, `{unix}`,
    /// `{unix_ms}`.
    pub path: String,
    /// POSTed to (JSON) with each finished file; empty: none.
    pub on_record: String,
}

impl Default for RecordRule {
    fn default() -> Self {
        RecordRule {
            app: "*".into(),
            stream: "*".into(),
            format: RecordFormat::Mp4,
            segment_secs: 600,
            segment_bytes: 0,
            path: "{app}/{stream}/{time}".into(),
            on_record: String::new(),
        }
    }
}

/// A path template: relative, `/`-separated, no empty, `.` or `..` part, and it must make file
/// names differ in time (`{time}`, `{unix}` or `{unix_ms}`).
fn check_template(key: &str, rule: usize, t: &str) -> Result<(), Invalid> {
    let bad = |what: &str| Err((key.to_owned(), format!("rule {rule}: {what}, got \"{t}\"")));
    if t.is_empty() || t.len() > 512 {
        return bad("must be 1 to 512 characters");
    }
    if t.starts_with('/') || t.contains('\\') {
        return bad("must be relative to record.dir, with '/' between directories");
    }
    if t.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
        return bad("must not have an empty, \".\" or \"..\" part");
    }
    if !["{time}", "{unix}", "{unix_ms}"]
        .iter()
        .any(|v| t.contains(v))
    {
        return bad(
            "must contain {time}, {unix} or {unix_ms}, so that segments get their own files",
        );
    }
    Ok(())
}

impl RecordSection {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        if self.dir.trim().is_empty() {
            return Err(("record.dir".into(), "must not be empty".into()));
        }
        check_range("record.queue_tags", self.queue_tags, 16, 65_536)?;
        for (i, r) in self.rule.iter().enumerate() {
            let n = i + 1;
            check_pattern("record.rule.app", n, &r.app)?;
            check_pattern("record.rule.stream", n, &r.stream)?;
            check_range("record.rule.segment_secs", r.segment_secs, 1, 86_400)?;
            if r.segment_bytes != 0 {
                check_range(
                    "record.rule.segment_bytes",
                    r.segment_bytes,
                    65_536,
                    1 << 40,
                )?;
            }
            check_template("record.rule.path", n, &r.path)?;
            check_url("record.rule.on_record", &r.on_record)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, RecordFormat};

    #[test]
    fn rules_parse_with_defaults() {
        let c = Config::parse(
            "[record]\ndir = \"/var/rec\"\nmax_total_bytes = 1000000\n\
             [[record.rule]]\napp = \"live\"\nformat = \"flv\"\nsegment_secs = 60\n\
             [[record.rule]]\nstream = \"cam-*\"\nformat = \"ts\"\non_record = \"http://127.0.0.1:9/r\"\n",
            "gw.toml",
        )
        .unwrap();
        let r = &c.record;
        assert_eq!(
            (r.dir.as_str(), r.max_total_bytes, r.max_age_secs),
            ("/var/rec", 1_000_000, 0)
        );
        assert_eq!(r.rule.len(), 2);
        assert_eq!(
            (
                r.rule[0].format,
                r.rule[0].segment_secs,
                r.rule[0].stream.as_str()
            ),
            (RecordFormat::Flv, 60, "*")
        );
        assert_eq!(
            (r.rule[1].format, r.rule[1].path.as_str()),
            (RecordFormat::Ts, "{app}/{stream}/{time}")
        );
        assert!(
            Config::parse("", "gw.toml").unwrap().record.rule.is_empty(),
            "off by default"
        );
    }

    #[test]
    fn bad_rules_name_the_key_and_line() {
        let err = |text: &str| Config::parse(text, "gw.toml").unwrap_err().to_string();
        let table = [
            ("[[record.rule]]\nformat = \"mkv\"\n", "gw.toml:2:10: key `record.rule.format`: unknown variant `mkv`, expected one of `mp4`, `flv`, `ts`"),
            ("[[record.rule]]\nsegment_secs = 0\n", "gw.toml:2: key `record.rule.segment_secs`: must be between 1 and 86400, got 0"),
            ("[[record.rule]]\npath = \"../{time}\"\n", "gw.toml:2: key `record.rule.path`: rule 1: must not have an empty, \".\" or \"..\" part, got \"../{time}\""),
            ("[[record.rule]]\npath = \"{app}/{stream}\"\n", "gw.toml:2: key `record.rule.path`: rule 1: must contain {time}, {unix} or {unix_ms}, so that segments get their own files, got \"{app}/{stream}\""),
            ("[[record.rule]]\non_record = \"ftp://x\"\n", "gw.toml:2: key `record.rule.on_record`: must be an http:// or https:// URL, or empty, got \"ftp://x\""),
            ("[record]\nsize = 1\n", "gw.toml:2:1: key `record.size`: unknown field `size`, expected one of `dir`, `max_age_secs`, `max_total_bytes`, `queue_tags`, `rule`"),
        ];
        for (text, want) in table {
            assert_eq!(err(text), want, "{text:?}");
        }
    }
}
