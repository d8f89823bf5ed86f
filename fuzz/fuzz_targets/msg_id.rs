//! Arbitrary text to the offset message id and UNIQ_KEY decoders: `Ok` or `Err`, never a
//! panic; accepted ids re-encode to the upper-cased input. The same bytes also build an
//! address, offset and key whose ids must round-trip.
#![no_main]

use std::net::{IpAddr, SocketAddr};

use arbitrary::{Arbitrary, Unstructured};
use ferromq_message::msg_id::UniqKey;
use ferromq_message::testing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut results = vec![testing::arbitrary_msg_id(&text)];
    let mut input = Unstructured::new(data);
    if let Ok((ip, port, offset)) = <(IpAddr, u16, i64)>::arbitrary(&mut input) {
        results.push(testing::offset_msg_id_round_trip(SocketAddr::new(ip, port), offset));
    }
    if let Ok((ip, pid, class_loader_hash, time, counter)) =
        <(IpAddr, u16, i32, i32, u16)>::arbitrary(&mut input)
    {
        let key = UniqKey { ip, pid, class_loader_hash, time_since_month_start_ms: time, counter };
        results.push(testing::uniq_key_round_trip(&key));
    }
    for result in results {
        if let Err(err) = result {
            panic!("{err}");
        }
    }
});
