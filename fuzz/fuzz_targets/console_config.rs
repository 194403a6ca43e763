#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| clearway_console::fuzzing::config(data));
