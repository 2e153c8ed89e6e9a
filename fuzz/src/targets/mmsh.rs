//! MMSH request headers: the `User-Agent` and `Pragma` values a Windows Media client sends
//! (the input's lines: the first is the user agent, the rest Pragma headers). Classification
//! and directive parsing must not panic, and the response headers must be valid HTTP field
//! values.

use mms::mmsh;

pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let ua = lines.next();
    let pragmas: Vec<&str> = lines.collect();
    let _ = mmsh::is_windows_media_client(ua, pragmas.iter().copied());
    let req = mmsh::parse_request(pragmas.iter().copied());
    assert!(
        req.stream_switch.len() <= 128,
        "stream-switch entries are bounded"
    );
    for (name, value) in mmsh::response_headers(req.kind, data.len() as u32) {
        assert!(
            axum::http::HeaderValue::from_str(&value).is_ok(),
            "{name}: {value:?}"
        );
    }
    let _ = mmsh::end_chunk(data.len() as u32);
    let _ = mmsh::header_chunk(data);
    let _ = mmsh::data_chunk_prefix(1, data.len());
}
