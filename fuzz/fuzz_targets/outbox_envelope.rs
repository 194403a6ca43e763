#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| clearway_node::fuzzing::outbox_envelope(data));
