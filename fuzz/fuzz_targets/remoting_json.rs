//! Arbitrary bytes to the lenient fastjson parser and to every typed body decoder: `Ok` or
//! `Err`, never a panic. A parsed tree written in fastjson style parses back equal, and in
//! standard style is strict JSON; a decoded body encodes (in both styles) to text that
//! decodes back equal.
#![no_main]

use std::fmt::Debug;

use ferromq_remoting::bodies::*;
use ferromq_remoting::json::{self, JsonStyle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = json::parse(data) {
        let fast = json::to_vec(&value, JsonStyle::Fastjson);
        match json::parse(&fast) {
            Ok(again) => {
                assert_eq!(again, value, "fastjson text {:?}", String::from_utf8_lossy(&fast))
            }
            Err(err) => {
                panic!("fastjson text {:?} does not parse: {err}", String::from_utf8_lossy(&fast))
            }
        }
        let standard = json::to_vec(&value, JsonStyle::Standard);
        if let Err(err) = serde_json::from_slice::<serde_json::Value>(&standard) {
            panic!(
                "standard text {:?} is not strict JSON: {err}",
                String::from_utf8_lossy(&standard)
            );
        }
        assert!(json::parse(&standard).is_ok());
    }
    // In standard style a bean map key is written as its JSON text in a string, which the
    // ConsumeStats decoder does not read back (fastjson would); that body is only ever sent in
    // fastjson style, so only that style is checked for it.
    body_round_trips::<ConsumeStats>(data, &[JsonStyle::Fastjson]);
    // Group configs keep unknown properties as raw JSON values, which standard style may
    // rewrite (large integers quoted); brokers only write them in fastjson style.
    body_round_trips::<SubscriptionGroupConfig>(data, &[JsonStyle::Fastjson]);
    body_round_trips::<SubscriptionGroupWrapper>(data, &[JsonStyle::Fastjson]);
    macro_rules! each {
        ($($body:ty),* $(,)?) => { $( body_round_trips::<$body>(data, &BOTH_STYLES); )* };
    }
    each!(
        ConsumerListByGroupResponseBody,
        TopicList,
        KvTable,
        GroupList,
        SubscriptionData,
        ProducerData,
        ConsumerData,
        HeartbeatData,
        MessageQueue,
        LockBatchRequestBody,
        LockBatchResponseBody,
        DataVersion,
        TopicConfig,
        TopicConfigSerializeWrapper,
        RegisterBrokerBody,
        ConsumerOffsetSerializeWrapper,
        OffsetWrapper,
        QueueData,
        BrokerData,
        TopicRouteData,
        ClusterInfo,
    );
});

const BOTH_STYLES: [JsonStyle; 2] = [JsonStyle::Fastjson, JsonStyle::Standard];

fn body_round_trips<T: JsonBody + PartialEq + Debug>(data: &[u8], styles: &[JsonStyle]) {
    let Ok(body) = T::decode(data) else {
        return;
    };
    for &style in styles {
        let text = body.encode_with(style);
        match T::decode(&text) {
            Ok(again) => {
                assert_eq!(again, body, "{style:?} text {:?}", String::from_utf8_lossy(&text))
            }
            Err(err) => panic!(
                "{} in {style:?} style {:?} does not decode: {err}",
                std::any::type_name::<T>(),
                String::from_utf8_lossy(&text)
            ),
        }
    }
}
