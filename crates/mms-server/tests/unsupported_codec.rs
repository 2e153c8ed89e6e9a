//! A track ASF clients cannot take is skipped; the other track still plays.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mp3_audio_is_skipped_and_the_video_still_plays() {
    if !have_tool("ffmpeg").await || !have_tool("ffprobe").await {
        return;
    }
    let dir = std::env::temp_dir().join(format!("mms-mp3-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let flv = dir.join("h264-mp3.flv");
    let flv_arg = flv.to_str().expect("temp path is UTF-8");
    let size = format!("testsrc=size={WIDTH}x{HEIGHT}:rate={FPS}");
    let make = [
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        &size,
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=44100",
        "-t",
        "3",
        "-c:v",
        "libx264",
        "-g",
        "25",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "libmp3lame",
        "-f",
        "flv",
        flv_arg,
    ];
    let (ok, _, err) = run_tool("ffmpeg", &make, Duration::from_secs(60)).await;
    assert!(ok, "ffmpeg made the H.264 + MP3 fixture: {err}");
    let h = start_with(flv.clone(), "live/mp3").await;
    let url = format!("mmsh://{}/live/mp3", h.http);
    let args = [
        "-v",
        "error",
        "-show_entries",
        "stream=codec_name,width,height",
        "-of",
        "csv=p=0",
        &url,
    ];
    let (ok, out, err) = run_tool("ffprobe", &args, Duration::from_secs(40)).await;
    assert!(ok, "ffprobe {url}: {err}");
    assert_eq!(
        out.trim(),
        format!("h264,{WIDTH},{HEIGHT}"),
        "only the video track is offered"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
