#![no_main]
//! See `pulsewatch_core::fuzz::labels_json` for the input and the invariants checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pulsewatch_core::fuzz::labels_json(data));
