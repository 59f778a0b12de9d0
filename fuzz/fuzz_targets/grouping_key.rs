#![no_main]
//! See `pulsewatch_core::fuzz::grouping_key` for the input and the invariants checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pulsewatch_core::fuzz::grouping_key(data));
