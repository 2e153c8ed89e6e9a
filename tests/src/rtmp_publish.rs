//! Publishing with the project's own RTMP client where ffmpeg cannot: ffmpeg 5.1 (Debian 12) has
//! no Enhanced RTMP output, so H.265 is published by the load tool's publisher (the `rtmp` crate's
//! `ClientSession`) from tags built here out of the committed MP4 fixture.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::oneshot;

/// Publishes FLV tags in a loop, in real time, over RTMP until dropped.
pub struct RtmpPublisher {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Why the publisher stopped on its own, once it has.
    ended: Arc<Mutex<Option<String>>>,
}

impl RtmpPublisher {
    /// Starts publishing `tags` (timestamps in milliseconds, sequence headers first) to `url`
    /// (`rtmp://host:port/app/stream`) on a thread of its own.
    pub fn publish(tags: &[flv::FlvTag], url: &str) -> RtmpPublisher {
        let plan = gwload::publish::Plan::from_tags(tags)
            .unwrap_or_else(|e| panic!("the tags cannot be published: {e}"));
        let url = gwload::rtmp_view::RtmpUrl::parse(url)
            .unwrap_or_else(|e| panic!("not an RTMP URL: {e}"));
        let (stop, stopped) = oneshot::channel::<()>();
        let ended = Arc::new(Mutex::new(None));
        let report = Arc::clone(&ended);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime can be built");
            let why = runtime.block_on(async {
                let (ready, _) = oneshot::channel();
                tokio::select! {
                    r = gwload::publish::run(&plan, &url, None, ready) => Some(match r {
                        Ok(()) => "the publisher returned".to_owned(),
                        Err(e) => e.to_string(),
                    }),
                    _ = stopped => None,
                }
            });
            *report.lock().expect("no panic while holding the lock") = why;
        });
        RtmpPublisher {
            stop: Some(stop),
            thread: Some(thread),
            ended,
        }
    }

    /// Why the publisher stopped, if it has stopped on its own.
    pub fn ended(&self) -> Option<String> {
        self.ended
            .lock()
            .expect("no panic while holding the lock")
            .clone()
    }

    /// Panics with the reason if the publisher has stopped.
    pub fn assert_running(&mut self) {
        if let Some(why) = self.ended() {
            panic!("the RTMP publisher stopped: {why}");
        }
    }
}

impl Drop for RtmpPublisher {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One elementary stream of an MP4 file as ffprobe reports it.
struct Track {
    index: u64,
    codec: String,
    /// Seconds per tick.
    tick: f64,
    extradata: Vec<u8>,
}

/// Builds the FLV tags of an MP4 file holding H.265 and AAC: the H.265 track as Enhanced RTMP
/// (`hvc1` SequenceStart with the hvcC record, then CodedFrames with composition times), AAC as
/// legacy FLV audio (AudioSpecificConfig, then raw frames). Samples are read from the file at the
/// offsets ffprobe reports; MP4 samples are already length-prefixed NAL units, as FLV carries them.
pub fn hevc_mp4_to_enhanced_flv(path: &Path) -> Vec<flv::FlvTag> {
    let file = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path.to_string_lossy();
    let streams = crate::ffprobe_json(
        &name,
        &[
            "-show_data",
            "-show_entries",
            "stream=index,codec_name,time_base,extradata",
        ],
    );
    let tracks: Vec<Track> = streams["streams"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(track)
        .collect();
    let packets = crate::ffprobe_json(
        &name,
        &[
            "-show_entries",
            "packet=stream_index,pts,dts,flags,pos,size",
        ],
    );
    let packets = packets["packets"].as_array().cloned().unwrap_or_default();
    let start = packets
        .iter()
        .filter_map(|p| {
            let t = tracks
                .iter()
                .find(|t| Some(t.index) == p["stream_index"].as_u64())?;
            Some(p["dts"].as_i64()? as f64 * t.tick)
        })
        .fold(f64::INFINITY, f64::min);
    let mut tags: Vec<flv::FlvTag> = tracks.iter().filter_map(sequence_header).collect();
    assert_eq!(tags.len(), 2, "{name}: expected an hevc and an aac track");
    let mut media: Vec<flv::FlvTag> = packets
        .iter()
        .filter_map(|p| {
            let t = tracks
                .iter()
                .find(|t| Some(t.index) == p["stream_index"].as_u64())?;
            media_tag(p, t, &file, start)
        })
        .collect();
    assert!(media.len() > 100, "{name}: only {} samples", media.len());
    media.sort_by_key(|t| t.timestamp);
    tags.extend(media);
    tags
}

fn track(s: &Value) -> Option<Track> {
    let (num, den) = s["time_base"].as_str()?.split_once('/')?;
    let (num, den): (f64, f64) = (num.parse().ok()?, den.parse().ok()?);
    Some(Track {
        index: s["index"].as_u64()?,
        codec: s["codec_name"].as_str()?.to_owned(),
        tick: num / den,
        extradata: hexdump_bytes(s["extradata"].as_str()?),
    })
}

/// The bytes of ffprobe's `-show_data` hex dump: lines of `OFFSET: ` then 16 bytes as hex in a
/// fixed-width column of 40 characters (padded on the last line), then the ASCII column.
fn hexdump_bytes(dump: &str) -> Vec<u8> {
    let hex: String = dump
        .lines()
        .filter_map(|l| l.get(10..).map(|rest| rest.get(..40).unwrap_or(rest)))
        .flat_map(|column| column.chars().filter(char::is_ascii_hexdigit))
        .collect();
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect()
}

fn sequence_header(t: &Track) -> Option<flv::FlvTag> {
    let body = match t.codec.as_str() {
        // Enhanced RTMP: IsExHeader | FrameType key (1) << 4 | PacketType SequenceStart (0).
        "hevc" => [&[0x90][..], b"hvc1", &t.extradata].concat(),
        // AAC, 44 kHz, 16-bit, stereo (0xaf); AACPacketType 0: AudioSpecificConfig.
        "aac" => [&[0xaf, 0][..], &t.extradata].concat(),
        _ => return None,
    };
    Some(tag(if t.codec == "aac" { 8 } else { 9 }, 0, body))
}

fn media_tag(p: &Value, t: &Track, file: &[u8], start: f64) -> Option<flv::FlvTag> {
    let number = |k: &str| p[k].as_str().and_then(|v| v.parse::<usize>().ok());
    let (pos, size) = (number("pos")?, number("size")?);
    let data = file.get(pos..pos.checked_add(size)?)?;
    let dts = p["dts"].as_i64()? as f64 * t.tick;
    let pts = p["pts"].as_i64()? as f64 * t.tick;
    let ms = ((dts - start) * 1000.0).round() as u32;
    match t.codec.as_str() {
        "hevc" => {
            let key = p["flags"].as_str().is_some_and(|f| f.starts_with('K'));
            // IsExHeader | FrameType (1 key, 2 inter) << 4 | PacketType CodedFrames (1), whose
            // header carries the composition time as SI24.
            let first = if key { 0x91 } else { 0xa1 };
            let cts = ((pts - dts) * 1000.0).round() as i32;
            let cts = &cts.to_be_bytes()[1..];
            Some(tag(9, ms, [&[first][..], b"hvc1", cts, data].concat()))
        }
        "aac" => Some(tag(8, ms, [&[0xaf, 1][..], data].concat())),
        _ => None,
    }
}

fn tag(tag_type: u8, timestamp: u32, body: Vec<u8>) -> flv::FlvTag {
    flv::FlvTag {
        tag_type,
        filtered: false,
        timestamp,
        stream_id: 0,
        body: Bytes::from(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hexdumps_parse_including_a_short_last_line() {
        let dump = "\n00000000: 0101 6000 0000 9000 0000 0000 3ff0 00fc  ..`.........?...\n\
                    00000010: fdf8 80                                  ...\n";
        assert_eq!(
            hexdump_bytes(dump),
            [1, 1, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x3f, 0xf0, 0, 0xfc, 0xfd, 0xf8, 0x80]
        );
    }

    #[test]
    fn the_hevc_fixture_becomes_enhanced_rtmp_tags() {
        if !crate::require_tool("ffprobe") {
            return;
        }
        let tags = hevc_mp4_to_enhanced_flv(&crate::fixture("hevc.mp4"));
        let flags: Vec<flv::TagFlags> = tags.iter().map(|t| t.flags()).collect();
        assert!(flags[0].sequence_header && flags[1].sequence_header);
        assert_eq!(&tags[0].body[..5], b"\x90hvc1");
        let video = |t: &&flv::FlvTag| t.tag_type == 9 && !t.flags().sequence_header;
        let frames: Vec<&flv::FlvTag> = tags.iter().filter(video).collect();
        assert_eq!(frames.len(), 250);
        assert_eq!(frames.iter().filter(|t| t.flags().keyframe).count(), 5);
        let header = flv::VideoTagHeader::parse(&frames[1].body).expect("a valid header");
        assert_eq!(header.codec, flv::VideoCodec::Hevc);
        assert!(header.composition_time > 0, "B-frames reorder: {header:?}");
        assert!(tags.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    }
}
