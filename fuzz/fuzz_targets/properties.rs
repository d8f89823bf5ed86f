//! Arbitrary bytes to the properties parser (which never fails): every kept pair is
//! non-empty, `find_property` agrees with `parse_properties` on UTF-8 input, and
//! encode ∘ parse is stable. The same bytes also build a map that must round-trip.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use ferromq_message::properties::{
    NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR, Properties, encode_properties,
    encoded_properties_len, parse_properties,
};
use ferromq_message::testing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(err) = testing::arbitrary_properties_bytes(data) {
        panic!("{err}");
    }
    let parsed = parse_properties(data);
    let encoded = encode_properties(&parsed);
    assert_eq!(encoded.len(), encoded_properties_len(&parsed));
    assert_eq!(parse_properties(&encoded), parsed, "encode ∘ parse is not stable");
    if let Err(err) = testing::arbitrary_properties_bytes(&encoded) {
        panic!("{err}");
    }

    if let Ok(mut built) = Properties::arbitrary(&mut Unstructured::new(data)) {
        // Keep what the format can carry: names without either separator, values without
        // the pair separator, neither empty.
        built.retain(|name, value| {
            !name.is_empty()
                && !value.is_empty()
                && !name.bytes().any(|b| b == NAME_VALUE_SEPARATOR || b == PROPERTY_SEPARATOR)
                && !value.bytes().any(|b| b == PROPERTY_SEPARATOR)
        });
        if let Err(err) = testing::properties_round_trip(&built) {
            panic!("{err}");
        }
    }
});
