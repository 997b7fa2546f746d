#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| attach_node_fuzz::jws(data));
