//! Recording: ffmpeg publishes `av.flv` (H.264 640x360 + AAC, a keyframe every 2 s); the
//! gateway records it as fragmented MP4, FLV and MPEG-TS in 2 s segments, and ffprobe is the
//! oracle for every file. Also: the `on_record` hook, `/api/recordings` and its range downloads,
//! retention by total size, and a `kill -9` mid-segment leaving the open MP4 file readable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gateway_config::{RecordFormat, RecordRule};
use gateway_tests::{
    fixture, gateway_bin, http_get, http_get_with, require_tool, wait_until, workspace_root,
    Ffmpeg, GatewayProcess, GetOptions, HookServer, TempDir, TestGateway,
};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(10);

fn rule(app: &str, format: RecordFormat, hook: &HookServer) -> RecordRule {
    RecordRule {
        app: app.into(),
        format,
        segment_secs: 2,
        on_record: hook.url("on_record"),
        ..RecordRule::default()
    }
}

fn recordings(gw: &TestGateway) -> Vec<Value> {
    let res = http_get(&gw.http_url("/api/recordings"), TIMEOUT).expect("GET /api/recordings");
    assert_eq!(res.status, 200, "{}", res.text());
    let v: Value = serde_json::from_slice(&res.body).expect("JSON");
    v["recordings"].as_array().cloned().unwrap_or_default()
}

/// ffprobe's view of a file: (codec types, format duration).
fn probe(file: &Path) -> (Vec<String>, f64) {
    let v =
        gateway_tests::ffprobe_json(&file.to_string_lossy(), &["-show_streams", "-show_format"]);
    let codecs = v["streams"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|s| {
                    format!(
                        "{}:{}",
                        s["codec_type"].as_str().unwrap_or("?"),
                        s["codec_name"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let duration = v["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    (codecs, duration)
}

#[test]
fn every_format_is_recorded_in_segments_ffprobe_reads_listed_hooked_and_downloadable() {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    let dir = TempDir::new("record");
    let rec_dir = dir.join("rec");
    let hook = HookServer::start(|_| (200, Duration::ZERO));
    let gw = TestGateway::start_with(|c| {
        c.record.dir = rec_dir.display().to_string();
        c.record.rule = vec![
            rule("mp4", RecordFormat::Mp4, &hook),
            rule("flv", RecordFormat::Flv, &hook),
            rule("ts", RecordFormat::Ts, &hook),
        ];
    });
    let apps = ["mp4", "flv", "ts"];
    let publishers: Vec<Ffmpeg> = apps
        .iter()
        .map(|app| Ffmpeg::publish(&fixture("av.flv"), &gw.rtmp_url(&format!("{app}/cam"))))
        .collect();
    // Three finished files of each format (about 6 s of media each).
    let hooked = |app: &str| hook.bodies().iter().filter(|b| b["app"] == app).count();
    let enough = wait_until(Duration::from_secs(60), || {
        apps.iter().all(|a| hooked(a) >= 3)
    });
    assert!(enough, "hook bodies: {:?}", hook.bodies());
    // While publishing, each stream has one open file, listed without a duration.
    let open: Vec<_> = recordings(&gw)
        .into_iter()
        .filter(|r| r["open"] == true)
        .collect();
    assert_eq!(open.len(), 3, "{open:?}");
    assert!(
        open.iter().all(|r| r["duration_secs"].is_null()),
        "{open:?}"
    );
    drop(publishers);
    // The publishers left: every file is finished.
    let finished = wait_until(Duration::from_secs(20), || {
        recordings(&gw).iter().all(|r| r["open"] == false)
    });
    assert!(finished, "{:?}", recordings(&gw));

    let listed = recordings(&gw);
    let mut by_format: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in &listed {
        by_format
            .entry(r["format"].as_str().unwrap_or("?").to_owned())
            .or_default()
            .push(r.clone());
    }
    for app in apps {
        let files = &by_format[app];
        assert!(files.len() >= 4, "{app}: {files:?}");
        for (i, r) in files.iter().enumerate() {
            let path = r["path"].as_str().expect("a path");
            assert!(path.starts_with(&format!("{app}/cam/")), "{r}");
            assert_eq!(
                (r["app"].as_str(), r["stream"].as_str()),
                (Some(app), Some("cam")),
                "{r}"
            );
            assert!(
                r["start_time"].as_str().is_some_and(|t| t.ends_with('Z')),
                "{r}"
            );
            let file = rec_dir.join(path);
            assert_eq!(
                r["size"].as_u64(),
                Some(std::fs::metadata(&file).expect("listed file exists").len())
            );
            let (codecs, duration) = probe(&file);
            assert_eq!(codecs, ["video:h264", "audio:aac"], "{app} {path}");
            let last = i + 1 == files.len();
            // Cut at the 2 s keyframes; the last one ends where the publisher stopped.
            let sensible = if last {
                duration > 0.0 && duration < 2.6
            } else {
                (1.8..2.6).contains(&duration)
            };
            assert!(sensible, "{app} {path}: {duration} s");
            let listed_duration = r["duration_secs"]
                .as_f64()
                .expect("a finished file's duration");
            assert!(
                (listed_duration - duration).abs() < 0.2,
                "{app} {path}: listed {listed_duration} s, ffprobe {duration} s"
            );
        }
    }

    // The hook named each finished file, by its path below the directory.
    for body in hook.bodies() {
        assert_eq!(body["action"], "on_record", "{body}");
        let path = body["path"].as_str().expect("a path");
        assert!(
            listed.iter().any(|r| r["path"] == path),
            "hooked {path} not listed"
        );
        assert!(
            Path::new(body["file"].as_str().expect("a file")).is_absolute(),
            "{body}"
        );
    }

    // /metrics counts what the recorder wrote.
    let metrics = http_get(&gw.http_url("/metrics"), TIMEOUT)
        .expect("GET /metrics")
        .text();
    let series = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics"))
    };
    let finished = listed.iter().filter(|r| r["open"] == false).count() as f64;
    assert!(series("gateway_recording_segments_total") >= finished);
    assert!(series("gateway_recording_bytes_total") > 0.0);
    assert_eq!(series("gateway_recording_write_errors_total"), 0.0);

    // A range request gets the file's bytes.
    let path = listed[0]["path"].as_str().expect("a path");
    let want = std::fs::read(rec_dir.join(path)).expect("readable");
    let headers = [("Range", "bytes=0-99")];
    let opts = GetOptions {
        headers: &headers,
        ..GetOptions::default()
    };
    let res = http_get_with(
        &gw.http_url(&format!("/api/recordings/{path}")),
        TIMEOUT,
        &opts,
    )
    .expect("range GET");
    assert_eq!(res.status, 206, "{}", res.text());
    assert_eq!(res.body, want[..100]);
    assert_eq!(
        res.header("content-range"),
        Some(format!("bytes 0-99/{}", want.len()).as_str())
    );
    // Nothing outside the recordings, nor their descriptions, is served.
    std::fs::write(dir.join("secret.mp4"), b"not a recording").expect("write");
    for bad in [
        "/api/recordings/..%2fsecret.mp4",
        "/api/recordings/%2e%2e/secret.mp4",
        "/api/recordings/mp4/cam/..%2f..%2f..%2fsecret.mp4",
        &format!("/api/recordings/{path}.json"),
        "/api/recordings/%2fetc%2fpasswd",
    ] {
        let res = http_get(&gw.http_url(bad), TIMEOUT).expect("GET");
        assert_eq!(res.status, 404, "{bad}: {}", res.text());
    }
}

#[test]
fn retention_keeps_the_directory_under_its_byte_cap() {
    if !require_tool("ffmpeg") {
        return;
    }
    let dir = TempDir::new("record-retention");
    let rec_dir = dir.join("rec");
    let hook = HookServer::start(|_| (200, Duration::ZERO));
    // A 2 s segment of av.flv is about 120 kB.
    let cap = 300_000;
    let gw = TestGateway::start_with(|c| {
        c.record.dir = rec_dir.display().to_string();
        c.record.max_total_bytes = cap;
        c.record.rule = vec![rule("live", RecordFormat::Flv, &hook)];
    });
    let _publisher = Ffmpeg::publish(&fixture("av.flv"), &gw.rtmp_url("live/cam"));
    let enough = wait_until(Duration::from_secs(60), || hook.bodies().len() >= 5);
    assert!(enough, "{:?}", hook.bodies());
    let first = rec_dir.join(hook.bodies()[0]["path"].as_str().expect("a path"));
    assert!(!first.exists(), "the oldest file is deleted");
    let listed = recordings(&gw);
    let finished: u64 = listed
        .iter()
        .filter(|r| r["open"] == false)
        .filter_map(|r| r["size"].as_u64())
        .sum();
    assert!(finished <= cap, "{finished} bytes finished: {listed:?}");
    assert!(
        listed.iter().filter(|r| r["open"] == false).count() >= 1,
        "{listed:?}"
    );
    // Deleted with its description.
    let mut sidecar = first.into_os_string();
    sidecar.push(".json");
    assert!(!PathBuf::from(sidecar).exists());
}

#[test]
fn after_kill_9_mid_segment_the_open_mp4_file_reads_up_to_its_last_fragment() {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    let dir = TempDir::new("record-crash");
    let rec_dir = dir.join("rec");
    let config = format!(
        "[log]\nlevel = \"info\"\nformat = \"json\"\n\
         [rtmp]\nlisten = \"127.0.0.1:0\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\nweb_root = \"{}\"\n\
         [rtsp]\nenabled = false\n[mms]\nenabled = false\n\
         [record]\ndir = \"{}\"\n\
         [[record.rule]]\napp = \"live\"\nformat = \"mp4\"\nsegment_secs = 3600\n",
        workspace_root().join("web").display(),
        rec_dir.display(),
    );
    let mut gw = GatewayProcess::start_json(Path::new(gateway_bin!()), &config);
    let url = format!("rtmp://{}/live/cam", gw.addr("rtmp"));
    let mut publisher = Ffmpeg::publish(&fixture("av.flv"), &url);
    // Wait for about 5 s of media in the open file (about 60 kB a second).
    let file = || {
        std::fs::read_dir(rec_dir.join("live/cam"))
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "mp4"))
    };
    let grown = wait_until(Duration::from_secs(30), || {
        file()
            .and_then(|f| std::fs::metadata(f).ok())
            .is_some_and(|m| m.len() > 300_000)
    });
    publisher.assert_running();
    gw.assert_running();
    assert!(grown, "no growing recording:\n{}", gw.log());
    let pid = libc::pid_t::try_from(gw.pid()).expect("a pid");
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our child's.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    std::thread::sleep(Duration::from_secs(1));
    let file = file().expect("the open file");
    let (codecs, duration) = probe(&file);
    assert_eq!(codecs, ["video:h264", "audio:aac"], "{}", file.display());
    // Its duration was never written, so ffprobe reads the fragments: at least those of the 5 s.
    let report = gateway_tests::ffprobe_decode(&file.to_string_lossy(), 60.0);
    let frames = report
        .stream(gateway_tests::Kind::Video)
        .map_or(0, |s| s.frames);
    assert!(
        frames >= 100,
        "{frames} video frames (format duration {duration}): {report:?}"
    );
}
