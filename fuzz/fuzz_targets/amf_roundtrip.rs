#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway_fuzz::targets::amf_roundtrip::run(data));
