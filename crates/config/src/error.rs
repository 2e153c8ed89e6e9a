//! Configuration errors that tell the operator where to look and what to change.

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the configuration file: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// `location` is `file:line[:column]`; `key` is dotted, such as `rtmp.chunk_size`.
    #[error("{location}: key `{key}`: {problem}")]
    Key {
        location: String,
        key: String,
        problem: String,
    },
    #[error("{location}: {problem}")]
    Syntax { location: String, problem: String },
}

/// Converts a TOML parse or type error, finding the key from the text at the error's position.
pub(crate) fn from_toml(err: &toml::de::Error, text: &str, origin: &str) -> ConfigError {
    let problem = err.message().trim().to_owned();
    let Some(span) = err.span() else {
        return ConfigError::Syntax {
            location: origin.to_owned(),
            problem,
        };
    };
    let (line, column) = line_col(text, span.start);
    let location = format!("{origin}:{line}:{column}");
    match key_at(text, line) {
        Some(key) => ConfigError::Key {
            location,
            key,
            problem,
        },
        None => ConfigError::Syntax { location, problem },
    }
}

/// An error found after parsing (a value out of range); `key` is dotted.
pub(crate) fn invalid(text: &str, origin: &str, key: String, problem: String) -> ConfigError {
    let location = match find_key_line(text, &key) {
        Some(line) => format!("{origin}:{line}"),
        None => format!("{origin} (default value)"),
    };
    ConfigError::Key {
        location,
        key,
        problem,
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The dotted key assigned on `line` (1-based), with the table header above it.
fn key_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line.checked_sub(1)?)?;
    let (key, _) = here.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || key.starts_with('[') {
        return None;
    }
    let table = lines[..line - 1].iter().rev().find_map(|l| table_name(l));
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_owned(),
    })
}

/// `rtmp` for a `[rtmp]` line, `mms.publishing_point` for `[[mms.publishing_point]]`.
fn table_name(line: &str) -> Option<&str> {
    let l = line.trim();
    let inner = l.strip_prefix("[[").and_then(|r| r.strip_suffix("]]"));
    inner
        .or_else(|| l.strip_prefix('[').and_then(|r| r.strip_suffix(']')))
        .map(str::trim)
}

/// The line on which a dotted key (`rtmp.chunk_size`) is set, if the file sets it.
fn find_key_line(text: &str, dotted: &str) -> Option<usize> {
    let (table, key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    let mut current = "";
    for (i, line) in text.lines().enumerate() {
        if let Some(t) = table_name(line) {
            current = t;
            continue;
        }
        let set_here = line.split_once('=').is_some_and(|(k, _)| k.trim() == key);
        if current == table && set_here {
            return Some(i + 1);
        }
    }
    None
}
