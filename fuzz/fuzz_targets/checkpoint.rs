//! Arbitrary bytes as the 4096-byte checkpoint file, which picks where abnormal recovery
//! starts: opening the store (normal and abnormal recovery), reading, querying, putting and
//! closing return `Ok` or `Err`, never panic.
#![no_main]

use ferromq_fuzz::store::{Planted, fuzz_planted_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_planted_file(Planted::Checkpoint, data));
