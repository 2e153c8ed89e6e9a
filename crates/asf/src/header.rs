//! The ASF Header Object and the Data Object header that opens every live stream.
//!
//! Layout follows the ASF specification 1.20.03: section 3.1 (Header Object), 3.2 (File
//! Properties), 3.3 (Stream Properties), 3.4 (Header Extension) and 5.1 (Data Object). The bytes
//! returned by [`build_header`] are exactly what MMSH sends in its `$H` chunk and MMST in its
//! header packets: the whole Header Object followed by the 50-byte start of the Data Object.

use bytes::{BufMut, Bytes, BytesMut};

use crate::guid::{self, Guid};

/// Size of the Data Object header that follows the Header Object: GUID, size, file id, total
/// data packets and the two reserved bytes (section 5.1).
pub const DATA_OBJECT_HEADER_LEN: usize = 50;

/// File Properties flag: the file is a live broadcast (section 3.2). Durations, sizes and packet
/// counts are then invalid and clients read until the server ends the stream.
pub const FLAG_BROADCAST: u32 = 0x01;

/// The Data Object size written for a live broadcast: 0, since the size is unknown (section 5.1:
/// the field is invalid when the broadcast flag is set).
///
/// Interop, measured with VLC 3.0.24: its own ASF reader rejects an object under 24 bytes and then
/// plays the stream through its libavformat demuxer, reliably. Any non-zero size (50, 2^56,
/// `u64::MAX` were tried) lets its own reader take the stream, which then often reaches a
/// premature end of stream within a second. ffmpeg ignores the size of a broadcast.
pub const BROADCAST_DATA_OBJECT_SIZE: u64 = 0;

/// `wFormatTag` for AAC in WAVEFORMATEX.
///
/// 0x00FF ("raw AAC") carries the AudioSpecificConfig itself as the `cbSize` extra data: ffmpeg's
/// riff reader maps it to AAC and hands the extra data to the decoder verbatim, and ffmpeg's own
/// ASF muxer writes the same. 0x1610 (WAVE_FORMAT_MPEG_HEAAC) is not used: ffmpeg 5.1 does not map
/// it at all (ffprobe reports the stream as codec "unknown"; checked by patching the tag in
/// `tests/fixtures/mms/av-3s.asf`), and it would need a 12-byte HEAACWAVEINFO before the config.
pub const WAVE_FORMAT_RAW_AAC: u16 = 0x00FF;

/// What one ASF stream carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamFormat {
    /// H.264 video: a BITMAPINFOHEADER with the `H264` FourCC.
    H264 {
        width: u32,
        height: u32,
        /// SPS and PPS in Annex B form (start codes included), the codec private data that
        /// ffmpeg's and Windows Media's H.264 decoders read from the BITMAPINFOHEADER tail.
        codec_private: Bytes,
    },
    /// AAC audio: a WAVEFORMATEX with tag [`WAVE_FORMAT_RAW_AAC`].
    Aac {
        sample_rate: u32,
        channels: u16,
        /// The AudioSpecificConfig (ISO 14496-3 1.6.2.1).
        audio_specific_config: Bytes,
        /// Nominal bitrate in bits per second, for `nAvgBytesPerSec`; 0 if unknown.
        bitrate: u32,
    },
    /// MPEG-1/2 Layer III audio: an MPEGLAYER3WAVEFORMAT (WAVEFORMATEX tag 0x0055).
    Mp3 {
        sample_rate: u32,
        channels: u16,
        /// Bitrate in bits per second of the first frame.
        bitrate: u32,
    },
}

/// Bytes of the DVR-MS timing payload extension in each payload's replicated data.
pub const TIMING_EXT_LEN: usize = 48;

/// One stream of the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamDesc {
    /// ASF stream number, 1 to 127.
    pub number: u8,
    pub format: StreamFormat,
    /// Average time per frame in 100 ns units (0 if unknown), for the Extended Stream Properties.
    pub avg_time_per_frame: u64,
    /// Declare the DVR-MS timing payload extension: every payload of this stream then carries
    /// [`TIMING_EXT_LEN`] more bytes of replicated data (see [`crate::packet`]).
    pub timing_extension: bool,
}

/// Everything the header says about the whole stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderParams {
    /// Fixed data packet size in bytes (both minimum and maximum packet size).
    pub packet_size: u32,
    /// Preroll in milliseconds; payload presentation times are offset by it.
    pub preroll_ms: u32,
    /// Maximum bitrate in bits per second, a hint for clients.
    pub max_bitrate: u32,
    /// File id, repeated in the Data Object.
    pub file_id: [u8; 16],
    pub streams: Vec<StreamDesc>,
}

/// Serialises the Header Object followed by the Data Object header.
pub fn build_header(p: &HeaderParams) -> Bytes {
    let mut objects: Vec<BytesMut> = vec![file_properties(p)];
    objects.extend(p.streams.iter().map(stream_properties));
    objects.push(header_extension(&p.streams));
    let body_len: usize = objects.iter().map(|o| o.len()).sum();
    let mut out = BytesMut::with_capacity(30 + body_len + DATA_OBJECT_HEADER_LEN);
    out.put_slice(&guid::HEADER_OBJECT.0);
    out.put_u64_le((30 + body_len) as u64);
    out.put_u32_le(objects.len() as u32);
    // Reserved1 = 0x01 and Reserved2 = 0x02 (section 3.1); some readers check them.
    out.put_u8(0x01);
    out.put_u8(0x02);
    for o in &objects {
        out.put_slice(o);
    }
    put_data_object_header(&mut out, &p.file_id);
    out.freeze()
}

/// Wraps an object body with its GUID and 64-bit size.
fn object(guid: Guid, body: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(24 + body.len());
    out.put_slice(&guid.0);
    out.put_u64_le((24 + body.len()) as u64);
    out.put_slice(body);
    out
}

fn file_properties(p: &HeaderParams) -> BytesMut {
    let mut b = BytesMut::with_capacity(80);
    b.put_slice(&p.file_id);
    b.put_u64_le(0); // file size: invalid for broadcast
    b.put_u64_le(0); // creation date
    b.put_u64_le(0); // data packets count: invalid for broadcast
    b.put_u64_le(0); // play duration
    b.put_u64_le(0); // send duration
    b.put_u64_le(u64::from(p.preroll_ms));
    b.put_u32_le(FLAG_BROADCAST);
    b.put_u32_le(p.packet_size); // minimum data packet size
    b.put_u32_le(p.packet_size); // maximum data packet size
    b.put_u32_le(p.max_bitrate);
    object(guid::FILE_PROPERTIES, &b)
}

fn stream_properties(s: &StreamDesc) -> BytesMut {
    let (media, specific, ecc_type, ecc) = match &s.format {
        StreamFormat::H264 {
            width,
            height,
            codec_private,
        } => (
            guid::VIDEO_MEDIA,
            video_type_specific(*width, *height, codec_private),
            guid::NO_ERROR_CORRECTION,
            Vec::new(),
        ),
        StreamFormat::Aac { .. } | StreamFormat::Mp3 { .. } => (
            guid::AUDIO_MEDIA,
            waveformatex(&s.format),
            guid::AUDIO_SPREAD,
            audio_spread(),
        ),
    };
    let mut b = BytesMut::with_capacity(54 + specific.len() + ecc.len());
    b.put_slice(&media.0);
    b.put_slice(&ecc_type.0);
    b.put_u64_le(0); // time offset
    b.put_u32_le(specific.len() as u32);
    b.put_u32_le(ecc.len() as u32);
    b.put_u16_le(u16::from(s.number & 0x7F));
    b.put_u32_le(0); // reserved
    b.put_slice(&specific);
    b.put_slice(&ecc);
    object(guid::STREAM_PROPERTIES, &b)
}

/// Video Media Type (section 9.2) holding a BITMAPINFOHEADER.
fn video_type_specific(width: u32, height: u32, codec_private: &[u8]) -> Vec<u8> {
    let bih_len = 40 + codec_private.len();
    let mut b = Vec::with_capacity(11 + bih_len);
    b.put_u32_le(width);
    b.put_u32_le(height);
    b.put_u8(0x02); // reserved flags, always 2
    b.put_u16_le(bih_len as u16);
    b.put_u32_le(bih_len as u32); // biSize
    b.put_u32_le(width);
    b.put_u32_le(height);
    b.put_u16_le(1); // biPlanes
    b.put_u16_le(24); // biBitCount
    b.put_slice(b"H264"); // biCompression FourCC
    b.put_u32_le(width.saturating_mul(height).saturating_mul(3)); // biSizeImage
    b.put_u32_le(0); // biXPelsPerMeter
    b.put_u32_le(0); // biYPelsPerMeter
    b.put_u32_le(0); // biClrUsed
    b.put_u32_le(0); // biClrImportant
    b.put_slice(codec_private);
    b
}

/// WAVEFORMATEX (section 9.1) for AAC or MP3.
fn waveformatex(format: &StreamFormat) -> Vec<u8> {
    match format {
        StreamFormat::Aac {
            sample_rate,
            channels,
            audio_specific_config,
            bitrate,
        } => {
            let mut b = Vec::with_capacity(18 + audio_specific_config.len());
            put_wave_head(
                &mut b,
                WAVE_FORMAT_RAW_AAC,
                *channels,
                *sample_rate,
                *bitrate,
                16,
            );
            b.put_u16_le(audio_specific_config.len() as u16);
            b.put_slice(audio_specific_config);
            b
        }
        StreamFormat::Mp3 {
            sample_rate,
            channels,
            bitrate,
        } => {
            let mut b = Vec::with_capacity(30);
            put_wave_head(
                &mut b,
                WAVE_FORMAT_MPEGLAYER3,
                *channels,
                *sample_rate,
                *bitrate,
                0,
            );
            // MPEGLAYER3WAVEFORMAT: wID, fdwFlags, nBlockSize, nFramesPerBlock, nCodecDelay.
            b.put_u16_le(12);
            b.put_u16_le(1); // MPEGLAYER3_ID_MPEG
            b.put_u32_le(2); // MPEGLAYER3_FLAG_PADDING_OFF
            let block = (144 * u64::from(*bitrate) / u64::from((*sample_rate).max(1))) as u16;
            b.put_u16_le(block.max(1));
            b.put_u16_le(1);
            b.put_u16_le(1393); // the decoder delay Windows' MP3 codec reports
            b
        }
        StreamFormat::H264 { .. } => Vec::new(),
    }
}

/// `wFormatTag` for MPEG Layer III in WAVEFORMATEX.
pub const WAVE_FORMAT_MPEGLAYER3: u16 = 0x0055;

/// The WAVEFORMATEX fields before `cbSize`.
fn put_wave_head(b: &mut Vec<u8>, tag: u16, channels: u16, rate: u32, bitrate: u32, bits: u16) {
    b.put_u16_le(tag);
    b.put_u16_le(channels);
    b.put_u32_le(rate);
    b.put_u32_le(bitrate / 8);
    b.put_u16_le(1); // nBlockAlign: compressed frames have no fixed block
    b.put_u16_le(bits);
}

/// Audio Spread error correction data with a span of 1: no descrambling, as Windows Media
/// encoders write for every audio stream (section 10.4.2).
fn audio_spread() -> Vec<u8> {
    let mut b = Vec::with_capacity(8);
    b.put_u8(1); // span
    b.put_u16_le(1); // virtual packet length
    b.put_u16_le(1); // virtual chunk length
    b.put_u16_le(1); // silence data length
    b.put_u8(0); // silence data
    b
}

/// The Header Extension Object (section 3.4) with one Extended Stream Properties Object per
/// stream (section 4.1).
fn header_extension(streams: &[StreamDesc]) -> BytesMut {
    let inner: Vec<BytesMut> = streams.iter().map(extended_stream_properties).collect();
    let inner_len: usize = inner.iter().map(|o| o.len()).sum();
    let mut b = BytesMut::with_capacity(22 + inner_len);
    b.put_slice(&guid::RESERVED_1.0);
    b.put_u16_le(6);
    b.put_u32_le(inner_len as u32);
    inner.iter().for_each(|o| b.put_slice(o));
    object(guid::HEADER_EXTENSION, &b)
}

/// Extended Stream Properties (section 4.1), declaring the DVR-MS timing payload extension when
/// asked.
///
/// Interop: both open ASF demuxers take the replicated-data "presentation time" of a video
/// payload as its *decode* time: ffmpeg's `asfdec_f.c` sets only the packet DTS from it (unless a
/// payload extension of type 0x2A, the first GUID byte of DVR-MS timing, gives the presentation
/// time), and VLC's `asfpacket.c` ignores it as PTS for video. With B-frames, presentation times
/// are not monotonic, so streams that may reorder frames put the decode time in that field (as
/// monotonic as the send time) and the exact presentation time in the DVR-MS timing extension,
/// which ffmpeg reads and VLC accepts (it checks the 48-byte size). Streams without B-frames
/// (H.264 Baseline) need none of this: their decode and presentation times are equal.
fn extended_stream_properties(s: &StreamDesc) -> BytesMut {
    let mut b = BytesMut::with_capacity(88);
    b.put_u64_le(0); // start time
    b.put_u64_le(0); // end time
    b.put_u32_le(0); // data bitrate
    b.put_u32_le(0); // buffer size
    b.put_u32_le(0); // initial buffer fullness
    b.put_u32_le(0); // alternate data bitrate
    b.put_u32_le(0); // alternate buffer size
    b.put_u32_le(0); // alternate initial buffer fullness
    b.put_u32_le(0); // maximum object size
    b.put_u32_le(0); // flags
    b.put_u16_le(u16::from(s.number & 0x7F));
    b.put_u16_le(0); // stream language id index
    b.put_u64_le(s.avg_time_per_frame);
    b.put_u16_le(0); // stream name count
    b.put_u16_le(u16::from(s.timing_extension));
    if s.timing_extension {
        b.put_slice(&guid::PAYLOAD_EXT_DVR_MS_TIMING.0);
        b.put_u16_le(TIMING_EXT_LEN as u16);
        b.put_u32_le(0); // extension system info length
    }
    object(guid::EXTENDED_STREAM_PROPERTIES, &b)
}

fn put_data_object_header(out: &mut BytesMut, file_id: &[u8; 16]) {
    out.put_slice(&guid::DATA_OBJECT.0);
    out.put_u64_le(BROADCAST_DATA_OBJECT_SIZE);
    out.put_slice(file_id);
    out.put_u64_le(0);
    out.put_u8(0x01);
    out.put_u8(0x01);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(streams: Vec<StreamDesc>) -> HeaderParams {
        HeaderParams {
            packet_size: 4096,
            preroll_ms: 0,
            max_bitrate: 1_000_000,
            file_id: [7; 16],
            streams,
        }
    }

    fn video() -> StreamDesc {
        StreamDesc {
            number: 1,
            format: StreamFormat::H264 {
                width: 320,
                height: 240,
                codec_private: Bytes::from_static(&[
                    0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0xce,
                ]),
            },
            avg_time_per_frame: 400_000,
            timing_extension: true,
        }
    }

    fn audio() -> StreamDesc {
        StreamDesc {
            number: 2,
            format: StreamFormat::Aac {
                sample_rate: 44_100,
                channels: 2,
                audio_specific_config: Bytes::from_static(&[0x12, 0x10]),
                bitrate: 128_000,
            },
            avg_time_per_frame: 0,
            timing_extension: false,
        }
    }

    fn le_u64(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
    }

    fn le_u32(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
    }

    /// Walks the header's top-level objects and returns (guid, offset, size) for each.
    fn objects(h: &[u8]) -> Vec<([u8; 16], usize, usize)> {
        let end = le_u64(h, 16) as usize;
        let mut at = 30;
        let mut out = Vec::new();
        while at < end {
            let size = le_u64(h, at + 16) as usize;
            out.push((h[at..at + 16].try_into().expect("guid"), at, size));
            at += size;
        }
        assert_eq!(at, end, "objects tile the header exactly");
        out
    }

    #[test]
    fn header_structure() {
        let cases: &[(&str, Vec<StreamDesc>, usize)] = &[
            ("video and audio", vec![video(), audio()], 4),
            ("video only", vec![video()], 3),
            ("audio only", vec![audio()], 3),
        ];
        for (name, streams, count) in cases {
            let h = build_header(&params(streams.clone()));
            let objs = objects(&h);
            assert_eq!(objs.len(), *count, "{name}");
            assert_eq!(
                le_u32(&h, 24) as usize,
                *count,
                "{name}: object count field"
            );
            let (g, at, _) = objs[0];
            assert_eq!(g, guid::FILE_PROPERTIES.0, "{name}");
            // ffmpeg's mms.c reads the packet size at GUID*2 + 64 from the object start.
            assert_eq!(le_u32(&h, at + 96), 4096, "{name}: min packet size");
            assert_eq!(
                le_u32(&h, at + 88) & FLAG_BROADCAST,
                FLAG_BROADCAST,
                "{name}: broadcast"
            );
            let data_at = le_u64(&h, 16) as usize;
            assert_eq!(&h[data_at..data_at + 16], &guid::DATA_OBJECT.0, "{name}");
            assert_eq!(h.len(), data_at + DATA_OBJECT_HEADER_LEN, "{name}");
        }
    }

    #[test]
    fn bitmapinfoheader_carries_fourcc_and_codec_private() {
        let h = build_header(&params(vec![video()]));
        let (_, at, size) = objects(&h)[1];
        let tsd = at + 78;
        assert_eq!(le_u32(&h, tsd), 320);
        assert_eq!(le_u32(&h, tsd + 11), 40 + 12, "biSize");
        assert_eq!(&h[tsd + 11 + 16..tsd + 11 + 20], b"H264");
        assert_eq!(
            &h[at + size - 12..at + size],
            &[0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0xce]
        );
    }

    #[test]
    fn waveformatex_carries_the_audio_specific_config() {
        let h = build_header(&params(vec![audio()]));
        let (_, at, _) = objects(&h)[1];
        let tsd = at + 78;
        assert_eq!(
            u16::from_le_bytes([h[tsd], h[tsd + 1]]),
            WAVE_FORMAT_RAW_AAC
        );
        assert_eq!(le_u32(&h, tsd + 4), 44_100);
        assert_eq!(u16::from_le_bytes([h[tsd + 16], h[tsd + 17]]), 2, "cbSize");
        assert_eq!(&h[tsd + 18..tsd + 20], &[0x12, 0x10]);
    }
}
