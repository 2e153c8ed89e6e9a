//! MMSH: MMS over HTTP, the Windows Media HTTP Streaming Protocol (MS-WMSP).
//!
//! A client first sends a "describe" request (no `xPlayStrm` pragma) and receives the ASF header
//! in one `$H` chunk; it then sends a "play" request (`Pragma: xPlayStrm=1` with its
//! `stream-switch-entry` list) and receives `$H` followed by `$D` data chunks until `$E`.
//! ffmpeg's `mmsh.c` closes the connection between the two; Windows Media Player may not.
//!
//! Every chunk starts with a 4-byte framing header (MS-WMSP 2.2.3.1.1): `$`, the chunk letter,
//! and a little-endian 16-bit length of everything after the framing header. `$H` and `$D` then
//! have an 8-byte header (2.2.3.1.2): location id (packet sequence), incarnation, AFFlags and the
//! same length again; `$E` has a 4-byte reason code.

use bytes::{BufMut, Bytes, BytesMut};

/// The framing header: `$`, the chunk letter, the 16-bit length.
pub const FRAMING_HEADER_LEN: usize = 4;
/// The `$H`/`$D` header after the framing header.
pub const CHUNK_HEADER_LEN: usize = 8;
/// The largest body a `$H` or `$D` chunk can carry (the length field is 16 bits and counts the
/// 8-byte chunk header).
pub const MAX_CHUNK_BODY: usize = u16::MAX as usize - CHUNK_HEADER_LEN;
/// AFFlags of a `$H` chunk that holds the whole header.
const AF_HEADER_COMPLETE: u8 = 0x0C;

/// `Content-Type` of the describe response.
pub const CONTENT_TYPE_DESCRIBE: &str = "application/vnd.ms.wms-hdr.asfv1";
/// `Content-Type` of the play response.
pub const CONTENT_TYPE_PLAY: &str = "application/x-mms-framed";

/// Errors building MMSH chunks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MmshError {
    #[error("a {kind} chunk body of {len} bytes exceeds the 16-bit MMSH length ({max} bytes)")]
    ChunkTooLarge { kind: char, len: usize, max: usize },
}

/// The `$H` chunk holding the whole ASF header (Header Object plus Data Object header).
pub fn header_chunk(header: &[u8]) -> Result<Bytes, MmshError> {
    let mut out = BytesMut::with_capacity(FRAMING_HEADER_LEN + CHUNK_HEADER_LEN + header.len());
    out.put_slice(&chunk_prefix(b'H', 0, AF_HEADER_COMPLETE, header.len())?);
    out.put_slice(header);
    Ok(out.freeze())
}

/// The 12 bytes that precede one ASF data packet in a `$D` chunk; the packet itself follows
/// unchanged, so viewers share it without copying.
pub fn data_chunk_prefix(location_id: u32, packet_len: usize) -> Result<[u8; 12], MmshError> {
    chunk_prefix(b'D', location_id, 0, packet_len)
}

/// The `$E` end-of-stream chunk (MS-WMSP 2.2.3.3); reason 0 means the broadcast ended.
pub fn end_chunk(reason: u32) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&[b'$', b'E', 4, 0]);
    out[4..].copy_from_slice(&reason.to_le_bytes());
    out
}

fn chunk_prefix(
    kind: u8,
    location_id: u32,
    af_flags: u8,
    len: usize,
) -> Result<[u8; 12], MmshError> {
    if len > MAX_CHUNK_BODY {
        return Err(MmshError::ChunkTooLarge {
            kind: char::from(kind),
            len,
            max: MAX_CHUNK_BODY,
        });
    }
    let total = (len + CHUNK_HEADER_LEN) as u16;
    let mut out = [0u8; 12];
    out[0] = b'$';
    out[1] = kind;
    out[2..4].copy_from_slice(&total.to_le_bytes());
    out[4..8].copy_from_slice(&location_id.to_le_bytes());
    out[8] = 0; // incarnation
    out[9] = af_flags;
    out[10..12].copy_from_slice(&total.to_le_bytes());
    Ok(out)
}

/// Which of the two MMSH requests a client sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// No `xPlayStrm=1`: the client wants the ASF header only.
    Describe,
    /// `xPlayStrm=1`: the client wants the stream.
    Play,
}

/// What the `Pragma` headers of an MMSH request say (MS-WMSP 2.2.1.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub kind: RequestKind,
    /// `xClientGUID`, braces included, if given.
    pub client_guid: Option<String>,
    /// `stream-switch-entry` items as (stream number, action): action 0 plays the stream in
    /// full, 1 only its key frames, 2 not at all.
    pub stream_switch: Vec<(u16, u16)>,
    /// `xResetStrm=1`: the client asks for the stream to restart.
    pub reset: bool,
}

/// True if the request comes from a Windows Media client: an `NSPlayer` (or `NSServer`,
/// `Windows-Media-Player`) user agent, or the `xClientGUID`/`xPlayStrm` pragmas.
pub fn is_windows_media_client<'a>(
    user_agent: Option<&str>,
    pragmas: impl IntoIterator<Item = &'a str>,
) -> bool {
    let ua = user_agent.unwrap_or("");
    let agent = ["NSPlayer", "NSServer", "Windows-Media-Player"]
        .iter()
        .any(|p| ua.starts_with(p));
    agent
        || pragmas.into_iter().any(|p| {
            let p = p.to_ascii_lowercase();
            p.contains("xclientguid") || p.contains("xplaystrm")
        })
}

/// Parses the `Pragma` header values of one request.
///
/// Each header may hold several comma-separated directives; ffmpeg sends one directive line
/// without its CRLF (`stream-time=0Connection: Close`), so unknown text is ignored, never an
/// error.
pub fn parse_request<'a>(pragmas: impl IntoIterator<Item = &'a str>) -> Request {
    let mut req = Request {
        kind: RequestKind::Describe,
        client_guid: None,
        stream_switch: Vec::new(),
        reset: false,
    };
    for value in pragmas {
        for directive in value.split(',') {
            apply_directive(&mut req, directive.trim());
        }
    }
    req
}

fn apply_directive(req: &mut Request, directive: &str) {
    let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
    let value = value.trim().trim_matches('"');
    match name.trim().to_ascii_lowercase().as_str() {
        "xplaystrm" if value.starts_with('1') => req.kind = RequestKind::Play,
        "xclientguid" => req.client_guid = Some(value.to_owned()),
        "xresetstrm" if value.starts_with('1') => req.reset = true,
        "stream-switch-entry" => req.stream_switch = parse_stream_switch(value),
        _ => {}
    }
}

/// Parses `ffff:1:0 ffff:2:0` (source:stream:action items, separated by spaces).
fn parse_stream_switch(value: &str) -> Vec<(u16, u16)> {
    value
        .split_whitespace()
        .filter_map(|item| {
            let mut parts = item.split(':');
            let _source = parts.next()?;
            let stream = parts.next()?.parse().ok()?;
            let action = parts.next()?.parse().ok()?;
            Some((stream, action))
        })
        .take(128)
        .collect()
}

/// The response headers for a request, as (name, value) pairs in order.
///
/// `Pragma: features="broadcast"` tells the client this is a live publishing point (no seeking,
/// no duration); `client-id` is the session id the client echoes in later requests.
pub fn response_headers(kind: RequestKind, client_id: u32) -> Vec<(&'static str, String)> {
    let content_type = match kind {
        RequestKind::Describe => CONTENT_TYPE_DESCRIBE,
        RequestKind::Play => CONTENT_TYPE_PLAY,
    };
    vec![
        ("Content-Type", content_type.to_owned()),
        ("Server", "Cougar/9.01.01.3841".to_owned()),
        ("Cache-Control", "no-cache".to_owned()),
        ("Pragma", "no-cache".to_owned()),
        ("Pragma", format!("client-id={client_id}")),
        ("Pragma", "features=\"broadcast\"".to_owned()),
        // Only stream switching is claimed: packet-pair bandwidth tests (srvppair) and startup
        // profiles are not implemented, so clients must not be invited to use them.
        ("Supported", "com.microsoft.wm.sswitch".to_owned()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        // The two requests ffmpeg 5.1's mmsh.c sends, header by header.
        let describe = [
            "no-cache,rate=1.000000,stream-time=0,stream-offset=0:0,request-context=1,max-duration=0",
            "xClientGUID={c77e7400-738a-11d2-9add-0020af0a3278}",
        ];
        let play = [
            "no-cache,rate=1.000000,request-context=2",
            "xPlayStrm=1",
            "xClientGUID={c77e7400-738a-11d2-9add-0020af0a3278}",
            "stream-switch-count=2",
            "stream-switch-entry=ffff:1:0 ffff:2:0 ",
            "no-cache,rate=1.000000,stream-time=0Connection: Close",
        ];
        type Case<'a> = (&'a [&'a str], RequestKind, Vec<(u16, u16)>, bool);
        let cases: &[Case] = &[
            (&describe, RequestKind::Describe, vec![], false),
            (&play, RequestKind::Play, vec![(1, 0), (2, 0)], false),
            (
                &["xPlayStrm=1, xResetStrm=1"],
                RequestKind::Play,
                vec![],
                true,
            ),
            (&["xPlayStrm=0"], RequestKind::Describe, vec![], false),
            (
                &["stream-switch-entry=bogus ffff:x:0 ffff:3:2"],
                RequestKind::Describe,
                vec![(3, 2)],
                false,
            ),
        ];
        for (pragmas, kind, switch, reset) in cases {
            let r = parse_request(pragmas.iter().copied());
            assert_eq!(
                (r.kind, &r.stream_switch, r.reset),
                (*kind, switch, *reset),
                "{pragmas:?}"
            );
        }
        let r = parse_request(describe.iter().copied());
        assert_eq!(
            r.client_guid.as_deref(),
            Some("{c77e7400-738a-11d2-9add-0020af0a3278}")
        );
    }

    #[test]
    fn client_detection() {
        let cases: &[(Option<&str>, &[&str], bool)] = &[
            (Some("NSPlayer/4.1.0.3856"), &[], true),
            (Some("NSPlayer/7.10.0.3059"), &["no-cache"], true),
            (Some("Lavf/59.27.100"), &["xClientGUID={abc}"], true),
            (Some("Mozilla/5.0"), &["no-cache"], false),
            (None, &[], false),
        ];
        for (ua, pragmas, expect) in cases {
            assert_eq!(
                is_windows_media_client(*ua, pragmas.iter().copied()),
                *expect,
                "{ua:?}"
            );
        }
    }

    #[test]
    fn chunk_framing() {
        let h = header_chunk(&[0xAA; 10]).expect("small header fits");
        assert_eq!(&h[..12], &[b'$', b'H', 18, 0, 0, 0, 0, 0, 0, 0x0C, 18, 0]);
        assert_eq!(h.len(), 22);
        let d = data_chunk_prefix(7, 4096).expect("packet fits");
        assert_eq!(d, [b'$', b'D', 0x08, 0x10, 7, 0, 0, 0, 0, 0, 0x08, 0x10]);
        assert_eq!(end_chunk(0), [b'$', b'E', 4, 0, 0, 0, 0, 0]);
        assert_eq!(
            data_chunk_prefix(0, MAX_CHUNK_BODY + 1),
            Err(MmshError::ChunkTooLarge {
                kind: 'D',
                len: MAX_CHUNK_BODY + 1,
                max: MAX_CHUNK_BODY
            })
        );
    }
}
