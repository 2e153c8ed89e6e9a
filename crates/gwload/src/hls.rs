//! The HLS viewer (RFC 8216): polls the media playlist every half target duration over one
//! keep-alive connection and fetches each new segment once, scanning it as MPEG-TS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::http::HttpConn;
use crate::net::{split_url, with_port};
use crate::ts::TsScanner;
use crate::viewer::{Shared, ViewerStats};
use crate::ViewError;

/// Largest playlist accepted.
pub const MAX_PLAYLIST: usize = 256 * 1024;
/// Segments remembered as fetched (more than any live window).
const SEEN_CAP: usize = 64;
/// Poll interval bounds, whatever the playlist says.
const MIN_POLL: Duration = Duration::from_millis(200);
const MAX_POLL: Duration = Duration::from_secs(5);
/// How long a new viewer retries a playlist that answers 404.
const FIRST_PLAYLIST_WAIT: Duration = Duration::from_secs(15);

/// What a viewer needs from a playlist.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Playlist {
    /// `#EXT-X-TARGETDURATION` in seconds.
    pub target_duration: Option<u64>,
    /// `#EXT-X-MEDIA-SEQUENCE` (0 when absent, 4.4.3.2).
    pub media_sequence: u64,
    /// Segment URIs in order.
    pub segments: Vec<String>,
    /// The first variant URI, when this is a master playlist.
    pub variant: Option<String>,
    /// `#EXT-X-ENDLIST` seen.
    pub ended: bool,
}

/// Parses a playlist; `None` if it lacks `#EXTM3U` (4.3.1.1).
pub fn parse_playlist(text: &str) -> Option<Playlist> {
    let mut lines = text.lines().map(str::trim);
    if lines.next()? != "#EXTM3U" {
        return None;
    }
    let mut p = Playlist::default();
    let mut stream_inf = false;
    for line in lines {
        if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            p.target_duration = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            p.media_sequence = v.trim().parse().unwrap_or(0);
        } else if line.starts_with("#EXT-X-STREAM-INF") {
            stream_inf = true;
        } else if line == "#EXT-X-ENDLIST" {
            p.ended = true;
        } else if line.is_empty() || line.starts_with('#') {
            continue;
        } else if stream_inf {
            p.variant.get_or_insert_with(|| line.to_owned());
            stream_inf = false;
        } else {
            p.segments.push(line.to_owned());
        }
    }
    Some(p)
}

/// Resolves `uri` against the path of the playlist (`/a/b/index.m3u8`) on `authority`; `None`
/// for a URI on another server, which this viewer does not follow.
pub fn resolve(authority: &str, playlist_path: &str, uri: &str) -> Option<String> {
    if let Some(rest) = uri.strip_prefix("http://") {
        let (auth, path) = rest.split_once('/').unwrap_or((rest, ""));
        return (with_port(auth, 80) == with_port(authority, 80)).then(|| format!("/{path}"));
    }
    if uri.contains("://") {
        return None;
    }
    if uri.starts_with('/') {
        return Some(uri.to_owned());
    }
    let path = playlist_path.split('?').next().unwrap_or(playlist_path);
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    Some(format!("{dir}{uri}"))
}

/// Runs one HLS viewer until cancelled or failed.
pub async fn view(
    url: &str,
    stats: Arc<ViewerStats>,
    shared: Arc<Shared>,
) -> Result<(), ViewError> {
    let started = Instant::now();
    let (authority, playlist_path) = split_url(url, "http")?;
    let authority = with_port(authority, 80);
    let mut conn = HttpConn::new(authority.clone());
    let mut playlist_path = playlist_path.to_owned();
    let mut next_seq: Option<u64> = None;
    let mut seen = std::collections::VecDeque::with_capacity(SEEN_CAP);
    let mut scanner = TsScanner::default();
    loop {
        let poll_started = tokio::time::Instant::now();
        let mut body = Vec::new();
        let status = conn
            .get(&playlist_path, &mut |d: &[u8]| {
                if body.len() + d.len() > MAX_PLAYLIST {
                    return Err(ViewError::Protocol("playlist too large".into()));
                }
                body.extend_from_slice(d);
                Ok(())
            })
            .await?;
        if status == 404 && next_seq.is_none() && started.elapsed() < FIRST_PLAYLIST_WAIT {
            // A server that writes playlists to disk (nginx-rtmp) has none until its first
            // segment is cut, a few seconds after the publisher starts.
            tokio::time::sleep(MIN_POLL).await;
            continue;
        }
        if status != 200 {
            return Err(ViewError::Status(status, playlist_path));
        }
        let text = String::from_utf8_lossy(&body);
        let list = parse_playlist(&text)
            .ok_or_else(|| ViewError::Protocol("playlist lacks #EXTM3U".into()))?;
        if let Some(variant) = &list.variant {
            playlist_path = resolve(&authority, &playlist_path, variant)
                .ok_or_else(|| ViewError::Url(format!("variant {variant} on another server")))?;
            continue;
        }
        // A new viewer starts at the newest segment, as a low-latency player would.
        let first = *next_seq.get_or_insert_with(|| {
            list.media_sequence + list.segments.len().saturating_sub(1) as u64
        });
        for (i, uri) in list.segments.iter().enumerate() {
            let seq = list.media_sequence + i as u64;
            if seq < first || seen.contains(uri) {
                continue;
            }
            let path = resolve(&authority, &playlist_path, uri)
                .ok_or_else(|| ViewError::Url(format!("segment {uri} on another server")))?;
            fetch_segment(&mut conn, &path, &mut scanner, &stats, started).await?;
            if let Some(sent) = scanner.take_stamp() {
                shared.latency(sent);
            }
            if seen.len() == SEEN_CAP {
                seen.pop_front();
            }
            seen.push_back(uri.clone());
            next_seq = Some(seq + 1);
        }
        if list.ended {
            return Err(ViewError::Protocol(
                "playlist ended (#EXT-X-ENDLIST)".into(),
            ));
        }
        let half = Duration::from_millis(list.target_duration.unwrap_or(2) * 500);
        tokio::time::sleep_until(poll_started + half.clamp(MIN_POLL, MAX_POLL)).await;
    }
}

async fn fetch_segment(
    conn: &mut HttpConn,
    path: &str,
    scanner: &mut TsScanner,
    stats: &ViewerStats,
    started: Instant,
) -> Result<(), ViewError> {
    let before = scanner.frames;
    let status = conn
        .get(path, &mut |d: &[u8]| {
            stats.add_bytes(d.len());
            scanner.feed(d);
            Ok(())
        })
        .await?;
    scanner.finish();
    if status != 200 {
        return Err(ViewError::Status(status, path.to_owned()));
    }
    // The time to first frame is the first segment fully received; frames count video PES.
    let frames = scanner.frames - before;
    if frames > 0 {
        stats.add_frame(started);
        stats
            .frames
            .fetch_add(frames - 1, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlists_table() {
        let ours = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n\
                    #EXTINF:2.000,\n7.ts\n#EXTINF:2.000,\n8.ts\n";
        let nginx = "#EXTM3U\r\n#EXT-X-MEDIA-SEQUENCE:12\r\n#EXT-X-TARGETDURATION:3\r\n\r\n\
                     #EXTINF:3.000,\r\ntest-12.ts\r\n#EXT-X-ENDLIST\r\n";
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=500000\nlow/index.m3u8\n\
                      #EXT-X-STREAM-INF:BANDWIDTH=900000\nhigh/index.m3u8\n";
        let cases = [
            (ours, Some(2), 7, vec!["7.ts", "8.ts"], None, false),
            (nginx, Some(3), 12, vec!["test-12.ts"], None, true),
            (master, None, 0, vec![], Some("low/index.m3u8"), false),
        ];
        for (text, td, seq, segs, variant, ended) in cases {
            let p = parse_playlist(text).expect("a playlist");
            assert_eq!(p.target_duration, td, "{text}");
            assert_eq!(p.media_sequence, seq, "{text}");
            assert_eq!(p.segments, segs, "{text}");
            assert_eq!(p.variant.as_deref(), variant, "{text}");
            assert_eq!(p.ended, ended, "{text}");
        }
        assert_eq!(parse_playlist("<html>"), None);
    }

    #[test]
    fn uris_resolve_against_the_playlist() {
        let cases = [
            ("test-12.ts", Some("/hls/test-12.ts")),
            ("/seg/1.ts?k=1", Some("/seg/1.ts?k=1")),
            ("http://h:8080/x/1.ts", Some("/x/1.ts")),
            ("http://other:8080/x/1.ts", None),
            ("https://h:8080/x/1.ts", None),
        ];
        for (uri, want) in cases {
            assert_eq!(
                resolve("h:8080", "/hls/test.m3u8?t=1", uri).as_deref(),
                want,
                "{uri}"
            );
        }
    }
}
