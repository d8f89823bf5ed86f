//! Arbitrary bytes as the IndexFile (header, hash slots, entries): opening the store (normal
//! and abnormal recovery), reading, key queries, putting and closing return `Ok` or `Err`,
//! never panic.
#![no_main]

use ferromq_fuzz::store::{Planted, fuzz_planted_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_planted_file(Planted::IndexFile, data));
