//! Prints one line per tag of an FLV file: type, timestamp, size, parsed header and, for
//! sequence headers and metadata, the decoded configuration.
//!
//! `cargo run -p flv --example flvdump -- FILE.flv`

use bytes::Bytes;
use flv::{
    AudioPacketKind, AudioTagHeader, FlvTag, Metadata, TagType, VideoPacketKind, VideoTagHeader,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: flvdump FILE.flv")?;
    let file = flv::parse_file(&Bytes::from(std::fs::read(&path)?))?;
    let h = file.header;
    println!(
        "header: version {} audio {} video {}",
        h.version, h.has_audio, h.has_video
    );
    for tag in &file.tags {
        println!("{}", describe(tag));
    }
    println!(
        "{} tags, {} trailing bytes, {} PreviousTagSize mismatches",
        file.tags.len(),
        file.trailing_bytes,
        file.previous_size_mismatches
    );
    Ok(())
}

fn describe(tag: &FlvTag) -> String {
    let prefix = format!("{:>8} ms {:>6} B", tag.timestamp, tag.body.len());
    match tag.kind() {
        Some(TagType::Video) => format!("{prefix} video {}", video(tag)),
        Some(TagType::Audio) => format!("{prefix} audio {}", audio(tag)),
        Some(TagType::Script) => match Metadata::parse(&tag.body) {
            Ok(m) => format!("{prefix} script onMetaData {m:?}"),
            Err(e) => format!("{prefix} script ({e})"),
        },
        None => format!("{prefix} unknown type {}", tag.tag_type),
    }
}

fn video(tag: &FlvTag) -> String {
    let h = match VideoTagHeader::parse(&tag.body) {
        Ok(h) => h,
        Err(e) => return format!("bad header: {e}"),
    };
    let mut s = format!(
        "{:?} {:?} {:?} cts {}",
        h.codec, h.frame_type, h.packet, h.composition_time
    );
    if h.packet == VideoPacketKind::SequenceHeader {
        let payload = tag.body.slice(h.header_len..);
        let info = match h.codec {
            flv::VideoCodec::Avc => codecs::AvcDecoderConfig::parse_bytes(&payload)
                .and_then(|c| Ok((c.codec_string(), c.sps_info()?)))
                .map(|(c, i)| format!("{c} {}x{} fps {:?}", i.width, i.height, i.frame_rate))
                .unwrap_or_else(|e| e.to_string()),
            flv::VideoCodec::Hevc => codecs::HevcDecoderConfig::parse_bytes(&payload)
                .and_then(|c| Ok((c.codec_string(), c.sps_info()?)))
                .map(|(c, i)| format!("{c} {}x{} fps {:?}", i.width, i.height, i.frame_rate()))
                .unwrap_or_else(|e| e.to_string()),
            _ => String::new(),
        };
        s.push_str(&format!(" [{info}]"));
    }
    s
}

fn audio(tag: &FlvTag) -> String {
    let h = match AudioTagHeader::parse(&tag.body) {
        Ok(h) => h,
        Err(e) => return format!("bad header: {e}"),
    };
    let mut s = format!("{:?} {:?}", h.codec, h.packet);
    if h.packet == AudioPacketKind::SequenceHeader && h.codec == flv::AudioCodec::Aac {
        match codecs::AudioSpecificConfig::parse(&tag.body[h.header_len..]) {
            Ok(a) => s.push_str(&format!(
                " [{} {} Hz, channel configuration {}]",
                a.codec_string(),
                a.sampling_frequency,
                a.channel_configuration
            )),
            Err(e) => s.push_str(&format!(" [{e}]")),
        }
    }
    s
}
