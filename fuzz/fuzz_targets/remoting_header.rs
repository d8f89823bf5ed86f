//! Arbitrary bytes as a JSON header and as a binary header: decoding returns `Ok` or `Err`;
//! what decodes survives encode → decode (in its own serialization and, where it fits, the
//! other), and every typed header it satisfies writes back fields it reads as itself. The
//! same bytes also build a command that must round-trip.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use ferromq_fuzz::remoting::{
    ArbitraryCommand, command_crosses_serializations, command_round_trips, decode_headers,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    decode_headers(data);
    if let Ok(built) = ArbitraryCommand::arbitrary(&mut Unstructured::new(data)) {
        let command = built.command();
        command_round_trips(&command);
        command_crosses_serializations(&command);
    }
});
