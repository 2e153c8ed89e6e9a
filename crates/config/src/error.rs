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
    let problem = in_words(err.message().trim());
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

/// serde's "invalid type: string \"abc\", expected u32" in the operator's words: "expected a
/// whole number, got \"abc\"". Messages of any other shape are returned as they are.
fn in_words(problem: &str) -> String {
    let (out_of_range, rest) = match (
        problem.strip_prefix("invalid type: "),
        problem.strip_prefix("invalid value: "),
    ) {
        (Some(rest), _) => (false, rest),
        (_, Some(rest)) => (true, rest),
        _ => return problem.to_owned(),
    };
    // What serde found is written first and may itself contain ", expected " (inside a quoted
    // string); what it expected never does.
    let Some((got, expected)) = rest.rsplit_once(", expected ") else {
        return problem.to_owned();
    };
    format!(
        "expected {}, got {}",
        expected_in_words(expected, out_of_range),
        got_in_words(got)
    )
}

/// What a key takes, from serde's name for the Rust type.
fn expected_in_words(expected: &str, out_of_range: bool) -> String {
    let words = match expected {
        "u8" if out_of_range => "a whole number from 0 to 255",
        "u16" if out_of_range => "a whole number from 0 to 65535",
        "u32" if out_of_range => "a whole number from 0 to 4294967295",
        "u64" | "u128" | "usize" if out_of_range => "a whole number (0 or more)",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64" | "i128"
        | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" => "true or false",
        "a string" | "a borrowed string" => "text in quotes",
        "a sequence" => "a list",
        "a map" => "a table",
        other if other.starts_with("struct ") => "a table",
        other => other,
    };
    words.to_owned()
}

/// What the file has, from serde's description of the TOML value: `integer \`8080\`` is
/// `8080`, `string "abc"` is `"abc"`, `sequence` is `a list`.
fn got_in_words(got: &str) -> String {
    let literal = ["boolean ", "integer ", "floating point ", "character "]
        .iter()
        .find_map(|kind| got.strip_prefix(kind))
        .and_then(|v| v.strip_prefix('`')?.strip_suffix('`'));
    if let Some(value) = literal {
        return value.to_owned();
    }
    if let Some(text) = got.strip_prefix("string ") {
        return text.to_owned();
    }
    match got {
        "sequence" => "a list".to_owned(),
        "map" => "a table".to_owned(),
        other => other.to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_serde_type_and_value_errors_are_reworded() {
        let check = |serde: &str, want: &str| assert_eq!(in_words(serde), want, "{serde}");
        check(
            "invalid type: string \"a, expected b\", expected u32",
            "expected a whole number, got \"a, expected b\"",
        );
        check(
            "invalid type: integer `1`, expected an IP:port",
            "expected an IP:port, got 1",
        );
        for unchanged in [
            "unknown field `x`, expected `a` or `b`",
            "unknown variant `xml`, expected `text` or `json`",
            "invalid length 3, expected 2",
            "invalid type: no expectation",
            "missing field `app`",
        ] {
            check(unchanged, unchanged);
        }
    }
}
