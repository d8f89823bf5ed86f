//! Arbitrary bytes as the last CommitLog segment: recovery (normal and abnormal) never
//! panics, every record `get` returns afterwards passes `check_record` with its CRC, and a
//! message put after recovery reads back intact.
#![no_main]

use ferromq_fuzz::store::{Planted, fuzz_planted_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_planted_file(Planted::LastSegment, data));
