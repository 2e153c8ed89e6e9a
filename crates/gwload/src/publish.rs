//! The publisher: loops an FLV file over RTMP (or RTMPS) in real time, stamping every H.264 frame with
//! an SEI that carries its send time (see [`crate::sei`]).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use rtmp::{ClientSession, ClientSessionEvent};
use rustls::ClientConfig;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::rtmp_view::{open, RtmpUrl};
use crate::sei;
use crate::tls::Conn;
use crate::viewer::now_micros;
use crate::ViewError;

/// Largest publish file accepted (it is held in memory).
pub const MAX_FILE: u64 = 512 * 1024 * 1024;
/// Frame interval assumed when the file has fewer than two video tags.
const DEFAULT_FRAME_MS: u64 = 40;
/// The chunk size we send with: fewer chunk headers than the default 128.
const CHUNK_SIZE: u32 = 4096;

/// One tag to send.
#[derive(Debug, Clone)]
struct PlanTag {
    type_id: u8,
    timestamp: u64,
    body: Bytes,
    sequence_header: bool,
    /// A video keyframe that is not a sequence header.
    keyframe: bool,
    /// The AVC NAL length size when this is a stampable AVC NALU tag.
    stamp_length_size: Option<usize>,
}

/// An FLV file prepared for publishing.
#[derive(Debug, Clone)]
pub struct Plan {
    tags: Vec<PlanTag>,
    metadata: Option<Bytes>,
    /// Length of one loop in milliseconds.
    pub period_ms: u64,
    /// The media rate sent (audio and video tag bodies, stamps included), kbit/s.
    pub kbps: f64,
    /// Frames per loop that carry a stamp (0: the file is not H.264, no latency).
    pub stamped_frames: usize,
}

impl Plan {
    /// Reads and prepares `path`.
    pub fn load(path: &Path) -> Result<Plan, ViewError> {
        let size = std::fs::metadata(path)?.len();
        if size > MAX_FILE {
            return Err(ViewError::Url(format!(
                "{}: larger than {MAX_FILE} bytes",
                path.display()
            )));
        }
        let data = Bytes::from(std::fs::read(path)?);
        let file = flv::parse_file(&data)
            .map_err(|e| ViewError::Url(format!("{}: not FLV: {e}", path.display())))?;
        Plan::from_tags(&file.tags)
    }

    /// Prepares parsed tags.
    pub fn from_tags(tags: &[flv::FlvTag]) -> Result<Plan, ViewError> {
        let first_ts = tags
            .iter()
            .filter(|t| matches!(t.tag_type, 8 | 9))
            .map(|t| t.timestamp)
            .min()
            .unwrap_or(0);
        let mut length_size = None;
        let mut plan = Plan {
            tags: Vec::new(),
            metadata: None,
            period_ms: 0,
            kbps: 0.0,
            stamped_frames: 0,
        };
        let mut bytes = 0usize;
        let mut video_ts = Vec::new();
        for t in tags {
            match t.tag_type {
                18 if plan.metadata.is_none() && flv::metadata::is_metadata(&t.body) => {
                    plan.metadata = Some(t.body.clone());
                }
                8 | 9 => {
                    let flags = t.flags();
                    if t.tag_type == 9 {
                        if let Some(n) = sei::avcc_length_size(&t.body) {
                            length_size = Some(n);
                        }
                        video_ts.push(u64::from(t.timestamp - first_ts));
                    }
                    let stamp =
                        (t.tag_type == 9 && t.body.get(1) == Some(&1) && t.body[0] & 0x0f == 7)
                            .then_some(length_size)
                            .flatten();
                    bytes += t.body.len() + stamp.map_or(0, |n| n + sei::NAL_LEN);
                    plan.stamped_frames += usize::from(stamp.is_some());
                    plan.tags.push(PlanTag {
                        type_id: t.tag_type,
                        timestamp: u64::from(t.timestamp - first_ts),
                        body: t.body.clone(),
                        sequence_header: flags.sequence_header,
                        keyframe: flags.keyframe && !flags.sequence_header && t.tag_type == 9,
                        stamp_length_size: stamp,
                    });
                }
                _ => {}
            }
        }
        let last =
            plan.tags.iter().map(|t| t.timestamp).max().ok_or_else(|| {
                ViewError::Url("the publish file has no audio or video tags".into())
            })?;
        let frame = match video_ts.as_slice() {
            [.., a, b] if b > a => b - a,
            _ => DEFAULT_FRAME_MS,
        };
        plan.period_ms = last + frame;
        plan.kbps = bytes as f64 * 8.0 / plan.period_ms as f64;
        Ok(plan)
    }
}

/// Publishes `plan` in a loop to `url` until cancelled; `ready` fires once the server has
/// accepted the publish (NetStream.Publish.Start) and the first keyframe is sent.
pub async fn run(
    plan: &Plan,
    url: &RtmpUrl,
    tls: Option<&std::sync::Arc<ClientConfig>>,
    ready: oneshot::Sender<()>,
) -> Result<(), ViewError> {
    let (mut sock, mut s, id) = open(url, 0x5eed, tls).await?;
    s.set_chunk_size(CHUNK_SIZE);
    s.publish(id, &url.stream);
    wait_publish_start(&mut sock, &mut s).await?;
    // Viewers are released once the server holds the sequence headers and a keyframe: an
    // RTSP server cannot answer DESCRIBE (the SDP needs SPS/PPS) before that.
    let mut ready = Some(ready);
    if let Some(meta) = &plan.metadata {
        s.send_metadata(id, meta);
    }
    let start = Instant::now();
    for round in 0u64.. {
        for tag in &plan.tags {
            if round > 0 && tag.sequence_header {
                continue;
            }
            let ts = tag.timestamp + round * plan.period_ms;
            let due = start + Duration::from_millis(ts);
            drain_until(&mut sock, &mut s, due).await?;
            let body = match tag.stamp_length_size {
                Some(n) => sei::stamp_flv_video(&tag.body, n, now_micros())
                    .map_or_else(|| tag.body.clone(), Bytes::from),
                None => tag.body.clone(),
            };
            // RTMP timestamps are 32-bit and wrap (RTMP 5.3.1.3).
            s.send_media(id, tag.type_id, ts as u32, &body);
            if tag.keyframe && ready.is_some() {
                sock.write_all(&s.take_output()).await?;
                if let Some(tx) = ready.take() {
                    let _ = tx.send(());
                }
            }
        }
    }
    Ok(())
}

async fn wait_publish_start(sock: &mut Conn, s: &mut ClientSession) -> Result<(), ViewError> {
    loop {
        sock.write_all(&s.take_output()).await?;
        if sock.read_with(|d: &[u8]| Ok(s.feed(d)?)).await? == 0 {
            return Err(ViewError::Closed);
        }
        while let Some(ev) = s.poll_event()? {
            if let ClientSessionEvent::Status { level, code, .. } = ev {
                if code == "NetStream.Publish.Start" {
                    return Ok(());
                }
                if level == "error" || code.contains("BadName") || code.contains("Failed") {
                    return Err(ViewError::Protocol(format!("RTMP publish: {code}")));
                }
            }
        }
    }
}

/// Sends pending output, then reads (and answers) server messages until `due`.
async fn drain_until(
    sock: &mut Conn,
    s: &mut ClientSession,
    due: Instant,
) -> Result<(), ViewError> {
    sock.write_all(&s.take_output()).await?;
    loop {
        tokio::select! {
            n = sock.read_with(|d: &[u8]| Ok(s.feed(d)?)) => {
                if n? == 0 {
                    return Err(ViewError::Closed);
                }
                while let Some(ev) = s.poll_event()? {
                    if let ClientSessionEvent::Status { level, code, .. } = ev {
                        if level == "error" {
                            return Err(ViewError::Protocol(format!("RTMP publish: {code}")));
                        }
                    }
                }
                sock.write_all(&s.take_output()).await?;
            }
            _ = tokio::time::sleep_until(due) => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(tag_type: u8, timestamp: u32, body: &[u8]) -> flv::FlvTag {
        flv::FlvTag {
            tag_type,
            filtered: false,
            timestamp,
            stream_id: 0,
            body: Bytes::copy_from_slice(body),
        }
    }

    #[test]
    fn plan_stamps_avc_frames_and_measures_the_rate() {
        let avcc = [0x17, 0, 0, 0, 0, 1, 0x4d, 0, 0x1f, 0xff, 0xe1];
        let frame = [0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41];
        let tags = [
            tag(
                18,
                0,
                b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00\x00\x00\x09",
            ),
            tag(9, 100, &avcc),
            tag(8, 100, &[0xaf, 1, 1, 2]),
            tag(9, 100, &frame),
            tag(9, 140, &frame),
        ];
        let plan = Plan::from_tags(&tags).expect("a valid plan");
        assert_eq!(plan.period_ms, 80);
        assert_eq!(plan.stamped_frames, 2);
        assert!(plan.metadata.is_some());
        let bytes = avcc.len() + 4 + 2 * (frame.len() + 4 + sei::NAL_LEN);
        assert!((plan.kbps - bytes as f64 * 8.0 / 80.0).abs() < 1e-9);
        assert_eq!(plan.tags[0].timestamp, 0);
    }
}
