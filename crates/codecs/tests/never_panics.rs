//! Every parser is total: arbitrary bytes give a value or an error, never a panic, and the
//! framing helpers round-trip.

use bytes::{Bytes, BytesMut};
use codecs::nal::{annex_b_units, length_prefixed_to_annex_b, nal_units, write_length_prefixed};
use codecs::{
    AudioSpecificConfig, AvcDecoderConfig, HevcDecoderConfig, HevcSpsInfo, Mp3FrameHeader, SpsInfo,
};
use proptest::prelude::*;

proptest! {
    #[test]
    fn parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = AvcDecoderConfig::parse(&data);
        let _ = HevcDecoderConfig::parse(&data);
        let _ = AudioSpecificConfig::parse(&data);
        let _ = Mp3FrameHeader::parse(&data);
        let _ = codecs::aac::AdtsHeader::parse(&data);
        let mut sps = data.clone();
        if let Some(b) = sps.first_mut() {
            *b = 0x67;
        }
        let _ = SpsInfo::parse(&sps);
        if sps.len() >= 2 {
            sps[0] = 0x42;
            sps[1] = 0x01;
        }
        let _ = HevcSpsInfo::parse(&sps);
        for size in 0..=5u8 {
            let sample = Bytes::from(data.clone());
            // The iterator ends after its first error, so flatten sees every unit.
            for nal in nal_units(&sample, size).flatten() {
                prop_assert!(!nal.is_empty());
            }
        }
    }

    #[test]
    fn parsed_configs_serialise_to_what_parses_the_same(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(config) = AvcDecoderConfig::parse(&data) {
            let again = AvcDecoderConfig::parse(&config.to_bytes());
            prop_assert_eq!(again, Ok(config));
        }
    }

    #[test]
    fn length_prefixed_and_annex_b_round_trip(
        nals in proptest::collection::vec(proptest::collection::vec(1u8..=255, 1..64), 0..8),
        size in prop_oneof![Just(1u8), Just(2u8), Just(4u8)],
    ) {
        // Units without zero bytes cannot contain start codes, so Annex B keeps them intact.
        let mut sample = BytesMut::new();
        for nal in &nals {
            write_length_prefixed(&mut sample, nal, size).expect("units under 64 bytes fit");
        }
        let sample = sample.freeze();
        let back: Vec<Vec<u8>> = nal_units(&sample, size).map(|n| n.map(|b| b.to_vec())).collect::<Result<_, _>>().expect("framing is valid");
        prop_assert_eq!(&back, &nals);
        let mut annex_b = BytesMut::new();
        length_prefixed_to_annex_b(&sample, size, &mut annex_b).expect("framing is valid");
        let units: Vec<Vec<u8>> = annex_b_units(&annex_b.freeze()).map(|b| b.to_vec()).collect();
        prop_assert_eq!(units, nals);
    }

    #[test]
    fn adts_header_round_trips(index in 0u8..13, channels in 1u8..8, len in 0usize..=codecs::aac::MAX_ADTS_PAYLOAD) {
        let asc = AudioSpecificConfig {
            object_type: 2,
            sampling_frequency_index: Some(index),
            sampling_frequency: codecs::aac::SAMPLING_FREQUENCIES[usize::from(index)],
            channel_configuration: channels,
            sbr_present: false,
            ps_present: false,
            extension_sampling_frequency: None,
            frame_length_flag: false,
        };
        prop_assert_eq!(AudioSpecificConfig::parse(&asc.to_bytes()), Ok(asc.clone()));
        let header = asc.adts_header(len).expect("LC fits ADTS");
        let parsed = codecs::aac::AdtsHeader::parse(&header).expect("our header parses");
        prop_assert_eq!((parsed.sampling_frequency_index, parsed.channel_configuration, parsed.frame_length), (index, channels, len + 7));
    }
}
