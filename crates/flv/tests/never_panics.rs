//! Every parser is total on arbitrary bytes, and whatever the writer produces the reader
//! reads back, however the stream is chunked.

use bytes::{Bytes, BytesMut};
use flv::{
    classify, file_header, parse_file, write_tag, AudioTagHeader, FlvReader, Metadata,
    VideoTagHeader,
};
use proptest::prelude::*;

proptest! {
    #[test]
    fn parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = VideoTagHeader::parse(&data);
        let _ = AudioTagHeader::parse(&data);
        let _ = Metadata::parse(&data);
        for ty in [8u8, 9, 18, 0] {
            let _ = classify(ty, &data);
        }
        let mut file = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        file.extend_from_slice(&data);
        let _ = parse_file(&Bytes::from(file.clone()));
        let mut reader = FlvReader::with_max_tag_size(1024);
        reader.push(&file);
        while let Ok(Some(_)) = reader.next_tag() {}
    }

    #[test]
    fn header_len_is_within_the_body(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(h) = VideoTagHeader::parse(&data) {
            prop_assert!(h.header_len <= data.len());
        }
        if let Ok(h) = AudioTagHeader::parse(&data) {
            prop_assert!(h.header_len <= data.len());
        }
    }

    #[test]
    fn writer_output_reads_back(
        tags in proptest::collection::vec(
            (prop_oneof![Just(8u8), Just(9u8), Just(18u8)], any::<u32>(), proptest::collection::vec(any::<u8>(), 0..300)),
            0..12,
        ),
        chunk in 1usize..200,
    ) {
        let mut out = BytesMut::from(&file_header(true, true)[..]);
        for (ty, ts, body) in &tags {
            write_tag(&mut out, *ty, *ts, body);
        }
        let file = out.freeze();
        let parsed = parse_file(&file).expect("our own output parses");
        let got: Vec<(u8, u32, Vec<u8>)> = parsed.tags.iter().map(|t| (t.tag_type, t.timestamp, t.body.to_vec())).collect();
        prop_assert_eq!(&got, &tags);
        let mut reader = FlvReader::new();
        let mut streamed = Vec::new();
        for piece in file.chunks(chunk) {
            reader.push(piece);
            while let Some(t) = reader.next_tag().expect("our own output reads") {
                streamed.push((t.tag_type, t.timestamp, t.body.to_vec()));
            }
        }
        prop_assert_eq!(streamed, tags);
    }
}
