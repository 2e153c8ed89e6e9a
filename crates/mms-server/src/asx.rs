//! ASX playlists, as legacy web pages embed: `GET /{app}/{stream}.asx` or `/{PublishingPoint}.asx`.

/// Escapes the five XML special characters.
fn xml_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&apos;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// An ASX 3.0 playlist with one entry whose first reference is the `mms://` URL; players that
/// cannot reach it roll over to the `mmsh://` and `http://` references on the HTTP listener.
///
/// `host` has no port; `http_port` is the port the playlist was fetched from.
pub fn playlist(name: &str, host: &str, http_port: u16, mms_port: u16) -> String {
    let mms = if mms_port == 1755 {
        host.to_owned()
    } else {
        format!("{host}:{mms_port}")
    };
    let http = format!("{host}:{http_port}");
    let refs = [
        format!("mms://{mms}/{name}"),
        format!("mmsh://{http}/{name}"),
        format!("http://{http}/{name}"),
    ];
    let mut out = String::from("<ASX version=\"3.0\">\r\n");
    out += &format!("  <TITLE>{}</TITLE>\r\n  <ENTRY>\r\n", xml_escape(name));
    for r in refs {
        out += &format!("    <REF HREF=\"{}\" />\r\n", xml_escape(&r));
    }
    out += "  </ENTRY>\r\n</ASX>\r\n";
    out
}

/// Splits a `Host` header value into host and port (`[::1]:8080`, `example.com`).
pub fn split_host(value: &str, default_port: u16) -> (String, u16) {
    if let Some(rest) = value.strip_prefix('[') {
        let (h, tail) = rest.split_once(']').unwrap_or((rest, ""));
        let port = tail
            .strip_prefix(':')
            .and_then(|p| p.parse().ok())
            .unwrap_or(default_port);
        return (format!("[{h}]"), port);
    }
    match value.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), p.parse().unwrap_or(default_port)),
        None => (value.to_owned(), default_port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_playlist() {
        let expect = "<ASX version=\"3.0\">\r\n  <TITLE>LiveEvents</TITLE>\r\n  <ENTRY>\r\n    \
                      <REF HREF=\"mms://media.example/LiveEvents\" />\r\n    \
                      <REF HREF=\"mmsh://media.example:8080/LiveEvents\" />\r\n    \
                      <REF HREF=\"http://media.example:8080/LiveEvents\" />\r\n  </ENTRY>\r\n</ASX>\r\n";
        assert_eq!(playlist("LiveEvents", "media.example", 8080, 1755), expect);
        assert!(playlist("live/a&b", "h", 80, 11755).contains("mms://h:11755/live/a&amp;b"));
    }

    #[test]
    fn host_header_forms() {
        let cases: &[(&str, (&str, u16))] = &[
            ("example.com", ("example.com", 80)),
            ("example.com:8080", ("example.com", 8080)),
            ("[::1]:9000", ("[::1]", 9000)),
            ("[::1]", ("[::1]", 80)),
        ];
        for (v, (h, p)) in cases {
            assert_eq!(split_host(v, 80), (h.to_string(), *p), "{v}");
        }
    }
}
