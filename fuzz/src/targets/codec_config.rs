//! Codec configuration records and frame headers from a publisher's sequence headers and
//! frames. The first byte selects the parser; the rest is its input. AVC records re-serialise
//! to the same record, AAC configs in the two-byte form re-parse to the same fields, and the
//! Annex B conversions never write a NAL unit the sample did not frame.

use bytes::{Bytes, BytesMut};
use codecs::{avc, hevc, nal, AudioSpecificConfig, AvcDecoderConfig, HevcDecoderConfig};

pub fn run(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let bytes = Bytes::copy_from_slice(rest);
    match which % 6 {
        0 => avc_record(&bytes),
        1 => hevc_record(&bytes),
        2 => aac(rest),
        3 => {
            let _ = codecs::SpsInfo::parse(rest).map(|s| s.profile_level_id());
            let _ = codecs::HevcSpsInfo::parse(rest).map(|s| s.frame_rate());
        }
        4 => {
            let _ = codecs::Mp3FrameHeader::parse(rest);
            let _ = codecs::aac::AdtsHeader::parse(rest);
        }
        _ => nals(&bytes, which),
    }
}

/// A record, then the rest of the input (after its length byte) as a frame using it.
fn split_record(data: &Bytes) -> (Bytes, Bytes) {
    let Some(&n) = data.first() else {
        return (Bytes::new(), Bytes::new());
    };
    let end = (1 + usize::from(n)).min(data.len());
    (data.slice(1..end), data.slice(end..))
}

fn avc_record(data: &Bytes) {
    let (record, frame) = split_record(data);
    let Ok(config) = AvcDecoderConfig::parse_bytes(&record) else {
        return;
    };
    let again = AvcDecoderConfig::parse_bytes(&config.to_bytes()).expect("to_bytes parses");
    assert_eq!(config, again, "parse(to_bytes(record)) == record");
    let _ = config.sps_info();
    let _ = config.codec_string();
    let mut out = BytesMut::new();
    if let Ok(info) = avc::access_unit_to_annex_b(&frame, &config, &mut out) {
        assert!(
            out.len() >= 4 * info.nal_count,
            "each counted unit has its start code"
        );
    }
}

fn hevc_record(data: &Bytes) {
    let (record, frame) = split_record(data);
    let Ok(config) = HevcDecoderConfig::parse_bytes(&record) else {
        return;
    };
    let _ = config.sps_info();
    let _ = config.codec_string();
    let _ = config.parameter_sets().count();
    let mut out = BytesMut::new();
    if let Ok(info) = hevc::access_unit_to_annex_b(&frame, &config, &mut out) {
        assert!(
            out.len() >= 4 * info.nal_count,
            "each counted unit has its start code"
        );
    }
}

fn aac(data: &[u8]) {
    let Ok(asc) = AudioSpecificConfig::parse(data) else {
        return;
    };
    let _ = asc.codec_string();
    let _ = asc.channel_count();
    let _ = asc.samples_per_frame();
    for len in [
        0,
        1,
        500,
        codecs::aac::MAX_ADTS_PAYLOAD,
        codecs::aac::MAX_ADTS_PAYLOAD + 1,
    ] {
        if let Ok(h) = asc.adts_header(len) {
            let parsed = codecs::aac::AdtsHeader::parse(&h);
            assert!(parsed.is_ok(), "our ADTS header parses: {parsed:?}");
        }
    }
    if asc.sbr_present {
        return;
    }
    let again = AudioSpecificConfig::parse(&asc.to_bytes()).expect("to_bytes parses");
    let core = |a: &AudioSpecificConfig| {
        (
            a.object_type,
            a.sampling_frequency_index,
            a.sampling_frequency,
            a.channel_configuration,
        )
    };
    assert_eq!(
        core(&asc),
        core(&again),
        "the two-byte form keeps the core fields"
    );
}

fn nals(data: &Bytes, which: u8) {
    let size = which / 6 % 5;
    let units: Vec<_> = nal::nal_units(data, size).collect();
    let ok: Vec<Bytes> = units
        .iter()
        .filter_map(|u| u.as_ref().ok().cloned())
        .collect();
    for u in &ok {
        assert!(u.len() <= data.len());
    }
    let mut annex_b = BytesMut::new();
    if nal::length_prefixed_to_annex_b(data, size, &mut annex_b).is_ok() {
        let _ = nal::annex_b_units(&annex_b.clone().freeze()).count();
    }
    let units: Vec<Bytes> = nal::annex_b_units(data).collect();
    let sample = avc::annex_b_to_sample(units.iter().map(|u| &u[..]), which & 1 == 1);
    for u in nal::nal_units(&sample, 4) {
        u.expect("annex_b_to_sample writes valid 4-byte length prefixes");
    }
}
