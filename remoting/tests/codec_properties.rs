//! Property tests for every codec in the crate: round trips, truncation sweeps and arbitrary
//! bytes. Each property is a plain function returning `Result<(), TestCaseError>` so a fuzz
//! target can call it too.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};
use ferromq_remoting::bodies::{
    BrokerData, ClusterInfo, ConsumeFromWhere, ConsumeStats, ConsumeType, ConsumerData,
    HeartbeatData, JsonBody, MessageModel, MessageQueue, OffsetWrapper, ProducerData, QueueData,
    SubscriptionData, TopicRouteData,
};
use ferromq_remoting::headers::{
    CommandHeader, PullMessageRequestHeader, SendMessageRequestHeaderV2,
};
use ferromq_remoting::json::{self, JsonStyle, Object, Value};
use ferromq_remoting::{
    ExtFields, FrameDecoder, LanguageCode, RemotingCommand, SerializeType, header_binary,
    header_json,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Turns a codec error into a property failure (no `unwrap` outside `#[test]` functions).
fn check<T, E: std::fmt::Display>(result: Result<T, E>) -> Result<T, TestCaseError> {
    result.map_err(|err| TestCaseError::fail(err.to_string()))
}

/// Turns a missing value into a property failure.
fn some<T>(option: Option<T>, what: &str) -> Result<T, TestCaseError> {
    option.ok_or_else(|| TestCaseError::fail(format!("{what} missing")))
}

fn language() -> impl Strategy<Value = LanguageCode> {
    (0u8..14).prop_map(LanguageCode::from_code)
}

fn ext_fields() -> impl Strategy<Value = ExtFields> {
    // Binary headers cannot carry empty keys or values (they decode as Java null).
    prop::collection::btree_map("[a-zA-Z_]{1,12}", ".{1,20}", 0..8)
}

fn command() -> impl Strategy<Value = RemotingCommand> {
    (
        any::<bool>(),
        any::<i16>(),
        language(),
        any::<i16>(),
        any::<i32>(),
        any::<i32>(),
        prop::option::of(".{1,40}"),
        prop::option::of(ext_fields()),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(
            |(binary, code, language, version, opaque, flag, remark, ext_fields, body)| {
                let serialize_type =
                    if binary { SerializeType::RocketMq } else { SerializeType::Json };
                // An empty map and no map are the same on the binary wire.
                let ext_fields = match serialize_type {
                    SerializeType::RocketMq => ext_fields.filter(|fields| !fields.is_empty()),
                    SerializeType::Json => ext_fields,
                };
                RemotingCommand {
                    code: i32::from(code),
                    language,
                    version: i32::from(version),
                    opaque,
                    flag,
                    remark,
                    ext_fields,
                    body: Bytes::from(body),
                    serialize_type,
                }
            },
        )
}

/// Whatever the plain JSON header decoder accepts, it decodes exactly as the tree decoder.
pub fn plain_json_header_agrees_with_the_tree(header: &[u8]) -> Result<(), TestCaseError> {
    if let Some(plain) = header_json::decode_plain(header) {
        let tree = check(header_json::decode_tree(header))?;
        prop_assert_eq!(plain, tree, "{}", String::from_utf8_lossy(header));
    }
    Ok(())
}

/// Encode, split off as a frame, decode: the same command, and exactly the frame consumed.
pub fn command_round_trips(command: &RemotingCommand) -> Result<(), TestCaseError> {
    let mut buf = BytesMut::new();
    command.encode(&mut buf).map_err(|err| TestCaseError::fail(err.to_string()))?;
    let encoded_len = buf.len();
    buf.extend_from_slice(b"next");
    let frame = some(check(FrameDecoder::default().decode(&mut buf))?, "frame")?;
    prop_assert_eq!(&buf[..], b"next");
    prop_assert_eq!(encoded_len, 8 + frame.header.len() + frame.body.len());
    let decoded = check(RemotingCommand::from_frame(frame))?;
    prop_assert_eq!(&decoded, command);
    Ok(())
}

/// Every strict prefix of a frame is incomplete, and every strict prefix of its header is a
/// decoding error; neither panics.
pub fn truncation_never_panics(command: &RemotingCommand) -> Result<(), TestCaseError> {
    let mut full = BytesMut::new();
    check(command.encode(&mut full))?;
    for cut in 0..full.len() {
        let mut prefix = BytesMut::from(&full[..cut]);
        prop_assert_eq!(check(FrameDecoder::default().decode(&mut prefix))?, None);
    }
    let header = check(command.encode_header())?;
    for cut in 0..header.len() {
        let result = match command.serialize_type {
            SerializeType::Json => header_json::decode(&header[..cut]),
            SerializeType::RocketMq => header_binary::decode(&header[..cut]),
        };
        prop_assert!(result.is_err(), "prefix of {} bytes decoded", cut);
    }
    Ok(())
}

/// Arbitrary bytes fed to every decoder: `Ok` or `Err`, never a panic.
pub fn arbitrary_bytes_never_panic(bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut buf = BytesMut::from(bytes);
    while let Ok(Some(frame)) = FrameDecoder::default().decode(&mut buf) {
        let _ = RemotingCommand::from_frame(frame);
    }
    let _ = header_json::decode(bytes);
    let _ = header_binary::decode(bytes);
    let _ = json::parse(bytes);
    let _ = TopicRouteData::decode(bytes);
    let _ = HeartbeatData::decode(bytes);
    let _ = ConsumeStats::decode(bytes);
    Ok(())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::int),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key =
            prop_oneof!["[a-z]{0,6}".prop_map(Value::String), any::<i32>().prop_map(Value::int),];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..6)
                .prop_map(|entries| Value::Object(Object(entries))),
        ]
    })
}

/// Fastjson text parses back to the same tree; standard text is valid strict JSON.
pub fn json_round_trips(value: &Value) -> Result<(), TestCaseError> {
    let fast = json::to_vec(value, JsonStyle::Fastjson);
    prop_assert_eq!(&check(json::parse(&fast))?, value);
    let standard = json::to_vec(value, JsonStyle::Standard);
    prop_assert!(serde_json::from_slice::<serde_json::Value>(&standard).is_ok());
    prop_assert!(json::parse(&standard).is_ok());
    Ok(())
}

fn round_trip_body<T: JsonBody + PartialEq + std::fmt::Debug>(
    body: &T,
) -> Result<(), TestCaseError> {
    for style in [JsonStyle::Fastjson, JsonStyle::Standard] {
        let bytes = body.encode_with(style);
        let decoded = check(T::decode(&bytes))?;
        prop_assert_eq!(&decoded, body);
    }
    Ok(())
}

fn route() -> impl Strategy<Value = TopicRouteData> {
    let queue = ("[a-z-]{1,8}", any::<i32>(), any::<i32>(), 0..8i32, any::<i32>()).prop_map(
        |(broker_name, read_queue_nums, write_queue_nums, perm, topic_sys_flag)| QueueData {
            broker_name,
            read_queue_nums,
            write_queue_nums,
            perm,
            topic_sys_flag,
        },
    );
    let broker = (
        ".{0,8}",
        ".{0,8}",
        prop::collection::btree_map(any::<i64>(), ".{0,16}", 0..4),
        prop::option::of(".{0,8}"),
        any::<bool>(),
    )
        .prop_map(|(cluster, broker_name, broker_addrs, zone_name, enable_acting_master)| {
            BrokerData { cluster, broker_name, broker_addrs, zone_name, enable_acting_master }
        });
    (
        prop::option::of(".{0,12}"),
        prop::collection::vec(queue, 0..4),
        prop::collection::vec(broker, 0..4),
        prop::collection::btree_map(".{0,8}", prop::collection::vec(".{0,8}", 0..3), 0..3),
    )
        .prop_map(|(order_topic_conf, queue_datas, broker_datas, filter_server_table)| {
            TopicRouteData {
                order_topic_conf,
                queue_datas,
                broker_datas,
                filter_server_table,
                topic_queue_mapping_by_broker: None,
            }
        })
}

fn heartbeat() -> impl Strategy<Value = HeartbeatData> {
    let subscription = (
        any::<bool>(),
        ".{0,8}",
        ".{0,8}",
        prop::collection::vec(".{0,6}", 0..3),
        prop::collection::vec(any::<i32>(), 0..3),
        any::<i64>(),
        prop_oneof![Just("TAG".to_owned()), Just("SQL92".to_owned())],
    )
        .prop_map(
            |(
                class_filter_mode,
                topic,
                sub_string,
                tags_set,
                code_set,
                sub_version,
                expression_type,
            )| {
                SubscriptionData {
                    class_filter_mode,
                    topic,
                    sub_string,
                    tags_set,
                    code_set,
                    sub_version,
                    expression_type,
                }
            },
        );
    let consumer = (
        ".{0,8}",
        0usize..3,
        any::<bool>(),
        0usize..6,
        prop::collection::vec(subscription, 0..3),
        any::<bool>(),
    )
        .prop_map(
            |(
                group_name,
                consume_type,
                clustering,
                from_where,
                subscription_data_set,
                unit_mode,
            )| {
                let consume_type = [
                    ConsumeType::ConsumeActively,
                    ConsumeType::ConsumePassively,
                    ConsumeType::ConsumePop,
                ][consume_type];
                let message_model =
                    if clustering { MessageModel::Clustering } else { MessageModel::Broadcasting };
                let consume_from_where = [
                    ConsumeFromWhere::ConsumeFromLastOffset,
                    ConsumeFromWhere::ConsumeFromLastOffsetAndFromMinWhenBootFirst,
                    ConsumeFromWhere::ConsumeFromMinOffset,
                    ConsumeFromWhere::ConsumeFromMaxOffset,
                    ConsumeFromWhere::ConsumeFromFirstOffset,
                    ConsumeFromWhere::ConsumeFromTimestamp,
                ][from_where];
                ConsumerData {
                    group_name,
                    consume_type,
                    message_model,
                    consume_from_where,
                    subscription_data_set,
                    unit_mode,
                }
            },
        );
    (
        ".{0,12}",
        prop::collection::vec(".{0,8}", 0..3),
        prop::collection::vec(consumer, 0..3),
        any::<i32>(),
        any::<bool>(),
    )
        .prop_map(
            |(client_id, producers, consumer_data_set, heartbeat_fingerprint, without_sub)| {
                HeartbeatData {
                    client_id,
                    producer_data_set: producers
                        .into_iter()
                        .map(|group_name| ProducerData { group_name })
                        .collect(),
                    consumer_data_set,
                    heartbeat_fingerprint,
                    without_sub,
                }
            },
        )
}

fn consume_stats() -> impl Strategy<Value = ConsumeStats> {
    let queue = (".{0,6}", ".{0,6}", any::<i32>())
        .prop_map(|(topic, broker_name, queue_id)| MessageQueue { topic, broker_name, queue_id });
    let offsets = (any::<i64>(), any::<i64>(), prop::option::of(any::<i64>()), any::<i64>())
        .prop_map(|(broker_offset, consumer_offset, pull_offset, last_timestamp)| OffsetWrapper {
            broker_offset,
            consumer_offset,
            pull_offset,
            last_timestamp,
        });
    (prop::collection::btree_map(queue, offsets, 0..4), -1.0e9..1.0e9f64)
        .prop_map(|(offset_table, consume_tps)| ConsumeStats { offset_table, consume_tps })
}

fn pull_header() -> impl Strategy<Value = PullMessageRequestHeader> {
    (
        (".{0,10}", ".{0,10}", any::<i32>(), any::<i64>(), any::<i32>(), any::<i32>()),
        (
            any::<i64>(),
            any::<i64>(),
            prop::option::of(".{0,10}"),
            any::<i64>(),
            prop::option::of("TAG|SQL92"),
        ),
        (prop::option::of(any::<i32>()), prop::option::of(".{0,8}")),
    )
        .prop_map(|(first, second, third)| PullMessageRequestHeader {
            consumer_group: first.0,
            topic: first.1,
            queue_id: first.2,
            queue_offset: first.3,
            max_msg_nums: first.4,
            sys_flag: first.5,
            commit_offset: second.0,
            suspend_timeout_millis: second.1,
            subscription: second.2,
            sub_version: second.3,
            expression_type: second.4,
            max_msg_bytes: third.0,
            request_source: None,
            proxy_froward_client_id: None,
            broker_name: third.1,
        })
}

/// A typed header survives extFields and both header serializations.
pub fn typed_header_round_trips(
    header: &PullMessageRequestHeader,
    binary: bool,
) -> Result<(), TestCaseError> {
    let mut command = RemotingCommand::request(11).with_header(header);
    if binary {
        command.serialize_type = SerializeType::RocketMq;
        // Empty strings are null on the binary wire; the header is then missing that field.
        if command.ext_fields.as_ref().is_some_and(|fields| fields.values().any(String::is_empty)) {
            return Ok(());
        }
    }
    let mut buf = BytesMut::new();
    check(command.encode(&mut buf))?;
    let frame = some(check(FrameDecoder::default().decode(&mut buf))?, "frame")?;
    let decoded = check(RemotingCommand::from_frame(frame))?;
    prop_assert_eq!(&check(decoded.decode_header::<PullMessageRequestHeader>())?, header);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn prop_command_round_trips(command in command()) {
        command_round_trips(&command)?;
    }

    #[test]
    fn prop_plain_json_header_decodes_every_header_we_write_as_the_tree_does(mut command in command()) {
        command.serialize_type = SerializeType::Json;
        let header = check(command.encode_header())?;
        prop_assert!(header_json::decode_plain(&header).is_some(), "{}", String::from_utf8_lossy(&header));
        plain_json_header_agrees_with_the_tree(&header)?;
    }

    #[test]
    fn prop_plain_json_header_agrees_with_the_tree_on_near_misses(
        text in r#"\{( *"(code|version|opaque|flag|language|remark|extFields|x)" *: *(-?[0-9]{1,11}|"[a-zA-Z\\u01]{0,6}"|null|true|1\.5|\{("[a-c]":("[a-z]{0,3}"|1|null),?){0,3}\}) *,?){0,6}\} ?"#
    ) {
        plain_json_header_agrees_with_the_tree(text.as_bytes())?;
    }

    #[test]
    fn prop_truncation_never_panics(command in command()) {
        truncation_never_panics(&command)?;
    }

    #[test]
    fn prop_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        arbitrary_bytes_never_panic(&bytes)?;
    }

    #[test]
    fn prop_framed_garbage_never_panics(binary in any::<bool>(), header in prop::collection::vec(any::<u8>(), 0..128)) {
        let mut bytes = i32::try_from(4 + header.len()).unwrap().to_be_bytes().to_vec();
        bytes.push(u8::from(binary));
        bytes.extend_from_slice(&u32::try_from(header.len()).unwrap().to_be_bytes()[1..]);
        bytes.extend_from_slice(&header);
        arbitrary_bytes_never_panic(&bytes)?;
    }

    #[test]
    fn prop_json_round_trips(value in json_value()) {
        json_round_trips(&value)?;
    }

    #[test]
    fn prop_json_text_never_panics(text in "[{}\\[\\]\":,0-9a-z\\\\ -]{0,64}") {
        let _ = json::parse(text.as_bytes());
    }

    #[test]
    fn prop_route_round_trips(route in route()) {
        round_trip_body(&route)?;
    }

    #[test]
    fn prop_heartbeat_round_trips(heartbeat in heartbeat()) {
        round_trip_body(&heartbeat)?;
    }

    #[test]
    fn prop_consume_stats_round_trips(stats in consume_stats()) {
        let bytes = stats.encode();
        let decoded = ConsumeStats::decode(&bytes).map_err(|err| TestCaseError::fail(err.to_string()))?;
        prop_assert_eq!(decoded.offset_table, stats.offset_table);
        // Doubles go through text; Java's shortest representation round-trips exactly.
        prop_assert_eq!(decoded.consume_tps.to_bits(), stats.consume_tps.to_bits());
    }

    #[test]
    fn prop_typed_header_round_trips(header in pull_header(), binary in any::<bool>()) {
        typed_header_round_trips(&header, binary)?;
    }

    #[test]
    fn prop_send_v2_ext_fields_round_trip(fields in prop::collection::btree_map("[a-n]", "-?[0-9]{1,9}", 8..14)) {
        // Any extFields that satisfy the V2 header survive decode -> encode of its own keys.
        if let Ok(header) = SendMessageRequestHeaderV2::from_ext_fields(&fields) {
            let mut back = ExtFields::new();
            header.to_ext_fields(&mut back);
            prop_assert_eq!(SendMessageRequestHeaderV2::from_ext_fields(&back).unwrap(), header);
        }
    }
}

#[test]
fn cluster_info_with_many_brokers_round_trips() {
    let mut info = ClusterInfo::default();
    for index in 0..20 {
        let name = format!("broker-{index}");
        info.broker_addr_table.insert(
            name.clone(),
            BrokerData {
                cluster: "c".into(),
                broker_name: name.clone(),
                broker_addrs: BTreeMap::from([(0, format!("10.0.0.{index}:10911"))]),
                zone_name: None,
                enable_acting_master: false,
            },
        );
        info.cluster_addr_table.entry("c".into()).or_insert_with(BTreeSet::new).insert(name);
    }
    assert_eq!(ClusterInfo::decode(&info.encode()).unwrap(), info);
}
