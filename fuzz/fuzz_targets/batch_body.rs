//! Arbitrary bytes to the SEND_BATCH_MESSAGE body decoder: `Ok` or `Err`, never a panic; the
//! items it accepts re-encode to the input (but for the ignored words). The same bytes also
//! build a list of items whose encoding must decode back to them.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use ferromq_message::batch;
use ferromq_message::properties::PROPERTIES_MAX_LEN;
use ferromq_message::testing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(err) = testing::arbitrary_batch_bytes(data) {
        panic!("{err}");
    }
    for item in batch::iter_batch(data) {
        if item.is_err() {
            break;
        }
    }
    type Items = Vec<(i32, Vec<u8>, Vec<u8>)>;
    if let Ok(items) = Items::arbitrary(&mut Unstructured::new(data))
        && items.iter().all(|(_, _, properties)| properties.len() <= PROPERTIES_MAX_LEN)
        && let Err(err) = testing::batch_round_trip(&items)
    {
        panic!("{err}");
    }
});
