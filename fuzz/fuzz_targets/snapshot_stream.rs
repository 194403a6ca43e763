#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| clearway_node::fuzzing::snapshot_stream(data));
