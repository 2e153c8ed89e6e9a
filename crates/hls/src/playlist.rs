//! The live media playlist writer (RFC 8216 4.3).

use std::fmt::Write;

/// What the playlist says about one media segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentEntry {
    /// The media sequence number.
    pub sequence: u64,
    /// The duration in milliseconds.
    pub duration_ms: u64,
    /// Whether an EXT-X-DISCONTINUITY precedes this segment.
    pub discontinuity: bool,
    /// Wall-clock time of the first sample, in milliseconds since the Unix epoch.
    pub program_date_time_ms: u64,
    /// The encryption key id, when the segment is encrypted.
    pub key_id: Option<u64>,
}

/// Everything the playlist header needs besides the segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaylistHeader<'a> {
    /// EXT-X-TARGETDURATION in whole seconds.
    pub target_duration_secs: u64,
    /// EXT-X-DISCONTINUITY-SEQUENCE.
    pub discontinuity_sequence: u64,
    /// Prefix of segment and key URIs (relative to the playlist): `{prefix}{seq}.ts` and
    /// `{prefix}{key}.key`.
    pub uri_prefix: &'a str,
}

/// Writes a live media playlist listing `segments` (the first one sets EXT-X-MEDIA-SEQUENCE).
///
/// EXT-X-VERSION is 3 because EXTINF durations are decimal (RFC 8216 7). EXT-X-KEY appears
/// before the first segment and whenever the key changes; there is no IV attribute, so the IV
/// is the media sequence number (RFC 8216 5.2). Every segment carries its
/// EXT-X-PROGRAM-DATE-TIME, so players can map each one to wall-clock time on their own.
pub fn write(header: &PlaylistHeader<'_>, segments: &[SegmentEntry]) -> String {
    let mut out = String::with_capacity(128 + segments.len() * 96);
    let media_sequence = segments.first().map_or(0, |s| s.sequence);
    out.push_str("#EXTM3U\n#EXT-X-VERSION:3\n");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", header.target_duration_secs);
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{media_sequence}");
    let _ = writeln!(
        out,
        "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
        header.discontinuity_sequence
    );
    let mut current_key = None;
    for s in segments {
        if s.discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if s.key_id != current_key {
            match s.key_id {
                Some(k) => {
                    let _ = writeln!(
                        out,
                        "#EXT-X-KEY:METHOD=AES-128,URI=\"{}{k}.key\"",
                        header.uri_prefix
                    );
                }
                None => out.push_str("#EXT-X-KEY:METHOD=NONE\n"),
            }
            current_key = s.key_id;
        }
        let _ = writeln!(
            out,
            "#EXT-X-PROGRAM-DATE-TIME:{}",
            iso8601(s.program_date_time_ms)
        );
        let _ = writeln!(
            out,
            "#EXTINF:{}.{:03},",
            s.duration_ms / 1000,
            s.duration_ms % 1000
        );
        let _ = writeln!(out, "{}{}.ts", header.uri_prefix, s.sequence);
    }
    out
}

/// `playlist` with `query` added to every URI it names: each segment URI line and each `URI="..."`
/// attribute (keys, RFC 8216 4.3.2.4). Players resolve segment URIs against the playlist URL but
/// drop its query (RFC 3986 5.2), so a credential in the playlist URL must be repeated in each URI
/// for the segment and key requests to carry it. `query` is already URL-encoded (no `"` or
/// line breaks).
pub fn with_query(playlist: &str, query: &str) -> String {
    let mut out = String::with_capacity(playlist.len() + 64 * (query.len() + 1));
    for line in playlist.split_inclusive('\n') {
        let (text, end) = match line.strip_suffix('\n') {
            Some(t) => (t, "\n"),
            None => (line, ""),
        };
        if text.is_empty() {
            out.push_str(line);
        } else if !text.starts_with('#') {
            push_uri(&mut out, text, query);
            out.push_str(end);
        } else if let Some(at) = text.find("URI=\"") {
            let (head, rest) = text.split_at(at + 5);
            let Some(close) = rest.find('"') else {
                out.push_str(line);
                continue;
            };
            out.push_str(head);
            push_uri(&mut out, &rest[..close], query);
            out.push_str(&rest[close..]);
            out.push_str(end);
        } else {
            out.push_str(line);
        }
    }
    out
}

fn push_uri(out: &mut String, uri: &str, query: &str) {
    out.push_str(uri);
    out.push(if uri.contains('?') { '&' } else { '?' });
    out.push_str(query);
}

/// Formats milliseconds since the Unix epoch as `YYYY-MM-DDThh:mm:ss.sssZ` (RFC 3339).
pub fn iso8601(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let tod = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        tod / 3600,
        tod / 60 % 60,
        tod % 60,
        unix_ms % 1000
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day), using the
/// era-based algorithm from Howard Hinnant's "chrono-Compatible Low-Level Date Algorithms".
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-22T05:00:00.000Z
    const T0: u64 = 1_795_323_600_000;

    fn seg(sequence: u64, duration_ms: u64) -> SegmentEntry {
        SegmentEntry {
            sequence,
            duration_ms,
            discontinuity: false,
            program_date_time_ms: T0 + sequence * 2000,
            key_id: None,
        }
    }

    fn check(header: PlaylistHeader<'_>, segments: &[SegmentEntry], want: &str) {
        assert_eq!(write(&header, segments), want);
    }

    fn header(target: u64, disc: u64) -> PlaylistHeader<'static> {
        PlaylistHeader {
            target_duration_secs: target,
            discontinuity_sequence: disc,
            uri_prefix: "s7-",
        }
    }

    #[test]
    fn iso8601_table() {
        for (ms, want) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (T0, "2026-11-22T05:00:00.000Z"),
            (951_782_400_123, "2000-02-29T00:00:00.123Z"),
            (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),
        ] {
            assert_eq!(iso8601(ms), want);
        }
    }

    #[test]
    fn empty_playlist() {
        check(
            header(2, 0),
            &[],
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:0\n",
        );
    }

    #[test]
    fn window_slide() {
        let segments: Vec<_> = (41..44).map(|i| seg(i, 2000)).collect();
        check(
            header(2, 0),
            &segments,
            "#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:41
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-PROGRAM-DATE-TIME:2026-11-22T05:01:22.000Z
#EXTINF:2.000,
s7-41.ts
#EXT-X-PROGRAM-DATE-TIME:2026-11-22T05:01:24.000Z
#EXTINF:2.000,
s7-42.ts
#EXT-X-PROGRAM-DATE-TIME:2026-11-22T05:01:26.000Z
#EXTINF:2.000,
s7-43.ts
",
        );
    }

    #[test]
    fn discontinuity() {
        let mut segments = vec![seg(5, 2040), seg(6, 1480), seg(7, 2000)];
        segments[2].discontinuity = true;
        segments[2].program_date_time_ms = T0 + 60_000;
        check(
            header(3, 2),
            &segments,
            "#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:3
#EXT-X-MEDIA-SEQUENCE:5
#EXT-X-DISCONTINUITY-SEQUENCE:2
#EXT-X-PROGRAM-DATE-TIME:2026-11-22T05:00:10.000Z
#EXTINF:2.040,
s7-5.ts
#EXT-X-PROGRAM-DATE-TIME:2026-11-22T05:00:12.000Z
#EXTINF:1.480,
s7-6.ts
#EXT-X-DISCONTINUITY
#EXT-X-PROGRAM-DATE-TIME:2026-11-22T05:01:00.000Z
#EXTINF:2.000,
s7-7.ts
",
        );
    }

    #[test]
    fn a_query_is_added_to_every_segment_and_key_uri() {
        let playlist = "#EXTM3U
#EXT-X-TARGETDURATION:2
#EXT-X-KEY:METHOD=AES-128,URI=\"s7-1.key\"
#EXTINF:2.000,
s7-3.ts
#EXT-X-KEY:METHOD=NONE
#EXTINF:2.000,
s7-4.ts?x=1
";
        let want = "#EXTM3U
#EXT-X-TARGETDURATION:2
#EXT-X-KEY:METHOD=AES-128,URI=\"s7-1.key?token=a%2Bb\"
#EXTINF:2.000,
s7-3.ts?token=a%2Bb
#EXT-X-KEY:METHOD=NONE
#EXTINF:2.000,
s7-4.ts?x=1&token=a%2Bb
";
        assert_eq!(with_query(playlist, "token=a%2Bb"), want);
        assert_eq!(with_query("#EXTM3U\ns1.ts", "t=1"), "#EXTM3U\ns1.ts?t=1");
    }

    #[test]
    fn encryption_tags_on_key_change_only() {
        let segments: Vec<_> = (3..6)
            .map(|i| SegmentEntry {
                key_id: Some(i / 2),
                ..seg(i, 2000)
            })
            .collect();
        check(
            header(2, 0),
            &segments,
            "#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:3
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-KEY:METHOD=AES-128,URI=\"s7-1.key\"
#EXT-X-PROGRAM-DATE-TIME:2026-11-22T05:00:06.000Z
#EXTINF:2.000,
s7-3.ts
#EXT-X-KEY:METHOD=AES-128,URI=\"s7-2.key\"
#EXT-X-PROGRAM-DATE-TIME:2026-11-22T05:00:08.000Z
#EXTINF:2.000,
s7-4.ts
#EXT-X-PROGRAM-DATE-TIME:2026-11-22T05:00:10.000Z
#EXTINF:2.000,
s7-5.ts
",
        );
    }
}
