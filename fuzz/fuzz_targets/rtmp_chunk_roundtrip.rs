#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway_fuzz::targets::rtmp_chunk_roundtrip::run(data));
