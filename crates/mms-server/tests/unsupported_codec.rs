//! Audio codecs other than AAC: MP3 is carried (WAVEFORMATEX 0x0055); a codec ASF clients cannot
//! take is skipped while the video still plays.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;

/// Makes a 3 s H.264 + `audio_codec` FLV in a temporary directory.
async fn make_flv(name: &str, audio: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mms-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let flv = dir.join(format!("{name}.flv"));
    let size = format!("testsrc=size={WIDTH}x{HEIGHT}:rate={FPS}");
    let mut args = vec![
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
    ];
    args.extend([
        "-t", "3", "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p",
    ]);
    args.extend(audio);
    let out = flv.to_str().expect("temp path is UTF-8").to_owned();
    args.extend(["-f", "flv", &out]);
    let (ok, _, err) = run_tool("ffmpeg", &args, Duration::from_secs(60)).await;
    assert!(ok, "ffmpeg made the {name} fixture: {err}");
    flv
}

async fn probe_codecs(url: &str) -> String {
    let args = [
        "-v",
        "error",
        "-show_entries",
        "stream=codec_name,width,height,sample_rate",
        "-of",
        "csv=p=0",
        url,
    ];
    let (ok, out, err) = run_tool("ffprobe", &args, Duration::from_secs(40)).await;
    assert!(ok, "ffprobe {url}: {err}");
    out.trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mp3_audio_is_carried() {
    if !have_tool("ffmpeg").await || !have_tool("ffprobe").await {
        return;
    }
    let flv = make_flv("h264-mp3", &["-c:a", "libmp3lame", "-b:a", "128k"]).await;
    let h = start_with(flv.clone(), "live/mp3").await;
    let got = probe_codecs(&format!("mmst://{}/live/mp3", h.mmst)).await;
    assert_eq!(
        got,
        format!("h264,{WIDTH},{HEIGHT}\nmp3,44100"),
        "video and MP3 audio"
    );
    let _ = std::fs::remove_dir_all(flv.parent().expect("temp dir"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nellymoser_audio_is_skipped_and_the_video_still_plays() {
    if !have_tool("ffmpeg").await || !have_tool("ffprobe").await {
        return;
    }
    let flv = make_flv(
        "h264-nellymoser",
        &["-c:a", "nellymoser", "-ar", "22050", "-ac", "1"],
    )
    .await;
    let h = start_with(flv.clone(), "live/nelly").await;
    let got = probe_codecs(&format!("mmsh://{}/live/nelly", h.http)).await;
    assert_eq!(
        got,
        format!("h264,{WIDTH},{HEIGHT}"),
        "only the video track is offered"
    );
    let _ = std::fs::remove_dir_all(flv.parent().expect("temp dir"));
}
