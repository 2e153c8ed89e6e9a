//! The `onMetaData` script tag (FLV 10.1 E.5): parse it into the few fields egress uses,
//! and build one. RTMP publishers send it as `@setDataFrame`, `onMetaData`, object
//! (the NetStream.send form); FLV files and the bus keep it without `@setDataFrame`.

use amf::{decode_amf0, encode_amf0, Amf0Value, AmfEncodeError, AmfError};
use bytes::Bytes;
use thiserror::Error;

use crate::video::VideoCodec;

/// The script data name that prefixes metadata sent by RTMP publishers.
pub const SET_DATA_FRAME: &str = "@setDataFrame";
/// The script data name of FLV metadata.
pub const ON_METADATA: &str = "onMetaData";

/// An error in an `onMetaData` script tag.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MetadataError {
    /// The AMF0 data did not decode.
    #[error("onMetaData AMF0: {0}")]
    Amf(#[from] AmfError),
    /// The script tag is named something other than `onMetaData`.
    #[error("script tag is {0:?}, not onMetaData")]
    NotMetadata(String),
    /// The value after the name is not an object or ECMA array.
    #[error("onMetaData value is not an object or ECMA array")]
    NotAnObject,
    /// Building the tag failed (a string or list too long for AMF0).
    #[error("onMetaData encode: {0}")]
    Encode(#[from] AmfEncodeError),
}

/// A codec id as publishers write it: a number (legacy id, or an E-RTMP FourCC packed
/// into a number) or, from some encoders, a string.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaCodecId {
    /// A numeric id, e.g. 7 (AVC), 10 (AAC) or 1752589105 (`hvc1` as a big-endian u32).
    Number(f64),
    /// A string id, e.g. `"avc1"`.
    Text(String),
}

impl MetaCodecId {
    fn from_amf(v: &Amf0Value) -> Option<Self> {
        v.as_f64()
            .map(MetaCodecId::Number)
            .or_else(|| v.as_str().map(|s| MetaCodecId::Text(s.to_owned())))
    }

    fn to_amf(&self) -> Amf0Value {
        match self {
            MetaCodecId::Number(n) => Amf0Value::Number(*n),
            MetaCodecId::Text(s) => Amf0Value::String(s.clone()),
        }
    }

    /// Interprets the id as a video codec: legacy 7 and 12, or a FourCC either packed
    /// into a number (E-RTMP v1 "Enhancing onMetaData") or written as text.
    pub fn video_codec(&self) -> Option<VideoCodec> {
        let fourcc: [u8; 4] = match self {
            MetaCodecId::Number(n) if *n == 7.0 => return Some(VideoCodec::Avc),
            MetaCodecId::Number(n) if *n == 12.0 => return Some(VideoCodec::Hevc),
            MetaCodecId::Number(n)
                if n.fract() == 0.0 && *n >= 0.0 && *n <= f64::from(u32::MAX) =>
            {
                (*n as u32).to_be_bytes()
            }
            MetaCodecId::Text(s) => s.as_bytes().try_into().ok()?,
            _ => return None,
        };
        match &fourcc {
            b"avc1" => Some(VideoCodec::Avc),
            b"hvc1" => Some(VideoCodec::Hevc),
            b"av01" => Some(VideoCodec::Av1),
            b"vp09" => Some(VideoCodec::Vp9),
            _ => None,
        }
    }
}

/// The `onMetaData` fields a gateway reports or rewrites; everything else is kept in
/// `other`, in wire order, so a rebuilt tag loses nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    /// `duration` in seconds (0 for live).
    pub duration: Option<f64>,
    /// `width` in pixels.
    pub width: Option<f64>,
    /// `height` in pixels.
    pub height: Option<f64>,
    /// `framerate` in frames per second.
    pub framerate: Option<f64>,
    /// `videodatarate` in kbit/s.
    pub videodatarate: Option<f64>,
    /// `videocodecid`.
    pub videocodecid: Option<MetaCodecId>,
    /// `audiodatarate` in kbit/s.
    pub audiodatarate: Option<f64>,
    /// `audiosamplerate` in Hz.
    pub audiosamplerate: Option<f64>,
    /// `audiosamplesize` in bits.
    pub audiosamplesize: Option<f64>,
    /// `stereo`.
    pub stereo: Option<bool>,
    /// `audiocodecid`.
    pub audiocodecid: Option<MetaCodecId>,
    /// `encoder`, e.g. `Lavf59.27.100` or `obs-output module`.
    pub encoder: Option<String>,
    /// Every other property, in wire order.
    pub other: Vec<(String, Amf0Value)>,
}

impl Metadata {
    /// Parses an `onMetaData` script tag body, with or without a leading `@setDataFrame`.
    pub fn parse(body: &[u8]) -> Result<Self, MetadataError> {
        let body = &body[set_data_frame_len(body)..];
        let (name, used) = decode_amf0(body)?;
        if name.as_str() != Some(ON_METADATA) {
            return Err(MetadataError::NotMetadata(format!("{name:?}")));
        }
        let rest = body.get(used..).unwrap_or_default();
        let (value, _) = decode_amf0(rest)?;
        let props = value.properties().ok_or(MetadataError::NotAnObject)?;
        let mut meta = Metadata::default();
        for (key, v) in props {
            meta.set(key, v);
        }
        Ok(meta)
    }

    fn set(&mut self, key: &str, v: &Amf0Value) {
        let num = v.as_f64();
        match key {
            "duration" if num.is_some() => self.duration = num,
            "width" if num.is_some() => self.width = num,
            "height" if num.is_some() => self.height = num,
            "framerate" if num.is_some() => self.framerate = num,
            "videodatarate" if num.is_some() => self.videodatarate = num,
            "audiodatarate" if num.is_some() => self.audiodatarate = num,
            "audiosamplerate" if num.is_some() => self.audiosamplerate = num,
            "audiosamplesize" if num.is_some() => self.audiosamplesize = num,
            "videocodecid" => self.videocodecid = MetaCodecId::from_amf(v),
            "audiocodecid" => self.audiocodecid = MetaCodecId::from_amf(v),
            "stereo" if matches!(v, Amf0Value::Boolean(_)) => {
                self.stereo = Some(*v == Amf0Value::Boolean(true));
            }
            "encoder" if v.as_str().is_some() => self.encoder = v.as_str().map(str::to_owned),
            _ => self.other.push((key.to_owned(), v.clone())),
        }
    }

    /// Builds the script tag body: `onMetaData` and an ECMA array of the set fields
    /// followed by `other`. This is the form FLV files and the bus carry.
    pub fn to_script_body(&self) -> Result<Bytes, MetadataError> {
        let mut out = Vec::with_capacity(256);
        encode_amf0(&Amf0Value::String(ON_METADATA.to_owned()), &mut out)?;
        encode_amf0(&Amf0Value::EcmaArray(self.properties()), &mut out)?;
        Ok(Bytes::from(out))
    }

    fn properties(&self) -> Vec<(String, Amf0Value)> {
        let num = |v: Option<f64>| v.map(Amf0Value::Number);
        let id = |v: &Option<MetaCodecId>| v.as_ref().map(MetaCodecId::to_amf);
        // ffmpeg's flvenc order, so that its tags rebuild byte for byte.
        let known = [
            ("duration", num(self.duration)),
            ("width", num(self.width)),
            ("height", num(self.height)),
            ("videodatarate", num(self.videodatarate)),
            ("framerate", num(self.framerate)),
            ("videocodecid", id(&self.videocodecid)),
            ("audiodatarate", num(self.audiodatarate)),
            ("audiosamplerate", num(self.audiosamplerate)),
            ("audiosamplesize", num(self.audiosamplesize)),
            ("stereo", self.stereo.map(Amf0Value::Boolean)),
            ("audiocodecid", id(&self.audiocodecid)),
            ("encoder", self.encoder.clone().map(Amf0Value::String)),
        ];
        let mut props: Vec<(String, Amf0Value)> = known
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .collect();
        props.extend(self.other.iter().cloned());
        props
    }
}

/// Returns how many leading bytes of a script body are an AMF0 `@setDataFrame` string
/// (0 when there is none).
fn set_data_frame_len(body: &[u8]) -> usize {
    match decode_amf0(body) {
        Ok((Amf0Value::String(s), used)) if s == SET_DATA_FRAME => used,
        _ => 0,
    }
}

/// Removes a leading `@setDataFrame` from a script tag body, zero-copy. Ingest calls this
/// so the bus stores metadata in FLV file form; bodies without it are returned unchanged.
pub fn strip_set_data_frame(body: &Bytes) -> Bytes {
    body.slice(set_data_frame_len(body)..)
}

/// Returns whether a script tag body is `onMetaData` (with or without `@setDataFrame`).
pub fn is_metadata(body: &[u8]) -> bool {
    let body = &body[set_data_frame_len(body)..];
    matches!(decode_amf0(body), Ok((v, _)) if v.as_str() == Some(ON_METADATA))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amf_string(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        encode_amf0(&Amf0Value::String(s.to_owned()), &mut out).unwrap();
        out
    }

    #[test]
    fn build_parse_round_trip() {
        let meta = Metadata {
            duration: Some(0.0),
            width: Some(640.0),
            height: Some(360.0),
            framerate: Some(25.0),
            videocodecid: Some(MetaCodecId::Number(7.0)),
            audiocodecid: Some(MetaCodecId::Number(10.0)),
            audiosamplerate: Some(44100.0),
            stereo: Some(true),
            encoder: Some("gateway".to_owned()),
            other: vec![("custom".to_owned(), Amf0Value::String("x".to_owned()))],
            ..Metadata::default()
        };
        let body = meta.to_script_body().unwrap();
        assert!(is_metadata(&body));
        assert_eq!(Metadata::parse(&body).unwrap(), meta);
        // With @setDataFrame in front, as an RTMP publisher sends it.
        let mut sent = amf_string(SET_DATA_FRAME);
        sent.extend_from_slice(&body);
        let sent = Bytes::from(sent);
        assert_eq!(Metadata::parse(&sent).unwrap(), meta);
        assert_eq!(strip_set_data_frame(&sent), body);
        assert_eq!(strip_set_data_frame(&body), body);
    }

    #[test]
    fn codec_id_table() {
        let cases = [
            (MetaCodecId::Number(7.0), Some(VideoCodec::Avc)),
            (MetaCodecId::Number(12.0), Some(VideoCodec::Hevc)),
            (
                MetaCodecId::Number(f64::from(u32::from_be_bytes(*b"hvc1"))),
                Some(VideoCodec::Hevc),
            ),
            (
                MetaCodecId::Number(f64::from(u32::from_be_bytes(*b"av01"))),
                Some(VideoCodec::Av1),
            ),
            (MetaCodecId::Text("vp09".to_owned()), Some(VideoCodec::Vp9)),
            (MetaCodecId::Text("avc1".to_owned()), Some(VideoCodec::Avc)),
            (MetaCodecId::Number(2.0), None),
            (MetaCodecId::Number(-1.0), None),
            (MetaCodecId::Text("h264".to_owned()), None),
        ];
        for (id, want) in cases {
            assert_eq!(id.video_codec(), want, "{id:?}");
        }
    }

    #[test]
    fn error_table() {
        let mut other_name = amf_string("onCuePoint");
        encode_amf0(&Amf0Value::Object(vec![]), &mut other_name).unwrap();
        let mut not_object = amf_string(ON_METADATA);
        encode_amf0(&Amf0Value::Number(1.0), &mut not_object).unwrap();
        let truncated = amf_string(ON_METADATA);
        type Case<'a> = (&'a [u8], fn(&MetadataError) -> bool);
        let cases: &[Case] = &[
            (&other_name, |e| matches!(e, MetadataError::NotMetadata(_))),
            (&not_object, |e| matches!(e, MetadataError::NotAnObject)),
            (&truncated, |e| matches!(e, MetadataError::Amf(_))),
            (&[], |e| matches!(e, MetadataError::Amf(_))),
        ];
        for (body, want) in cases {
            let err = Metadata::parse(body).unwrap_err();
            assert!(want(&err), "{body:02x?}: {err:?}");
            assert!(
                !is_metadata(body)
                    || matches!(err, MetadataError::NotAnObject | MetadataError::Amf(_))
            );
        }
    }
}
