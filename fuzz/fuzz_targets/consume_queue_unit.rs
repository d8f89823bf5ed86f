//! Arbitrary bytes as a ConsumeQueue file (20-byte units: phy offset, size, tags code):
//! opening the store (normal and abnormal recovery), reading, querying, putting and closing
//! return `Ok` or `Err`, never panic.
#![no_main]

use ferromq_fuzz::store::{Planted, fuzz_planted_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_planted_file(Planted::ConsumeQueue, data));
