#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsus_fuzz::update_xml(data));
