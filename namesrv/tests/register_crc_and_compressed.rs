//! REGISTER_BROKER body handling over TCP: the body CRC (a mismatch is SYSTEM_ERROR
//! `crc32 not match` and registers nothing), the compressed body of `encode(true)`, the bare
//! TopicConfigSerializeWrapper of brokers older than V3_0_11, the 5.x deflated body flagged as
//! uncompressed, an empty body, a single-topic registration before a full one, and malformed
//! bodies answered without closing anything.
#![cfg(test)]

mod common;

use common::{Broker, call, route, topic};
use ferromq_remoting::bodies::JsonBody;
use ferromq_remoting::transport::RemotingClient;
use ferromq_remoting::{RemotingCommand, RequestCode, ResponseCode};

fn broker() -> Broker {
    Broker::new("broker-a", 0, "127.0.0.1:10911", &[topic("TopicTest", 4), topic("TBW102", 8)])
}

fn register(broker: &Broker, body: Vec<u8>, compressed: bool, crc: Option<i32>) -> RemotingCommand {
    let mut header = broker.header(&body, compressed);
    if crc.is_some() {
        header.body_crc32 = crc;
    }
    RemotingCommand::request(RequestCode::REGISTER_BROKER.code())
        .with_header(&header)
        .with_body(body)
}

#[tokio::test]
async fn crc_mismatch_is_refused_and_registers_nothing() {
    let namesrv = common::start().await;
    let client = RemotingClient::default();
    let broker = broker();
    let body = broker.body().encode();
    let response =
        call(&client, &namesrv.addr, register(&broker, body.clone(), false, Some(12345))).await;
    assert_eq!(response.code, ResponseCode::SYSTEM_ERROR.code());
    assert_eq!(response.remark.as_deref(), Some("crc32 not match"));
    assert!(route(&client, &namesrv.addr, "TopicTest").await.is_none());
    // 0 means "not checked", as in Java.
    let response = call(&client, &namesrv.addr, register(&broker, body, false, Some(0))).await;
    assert_eq!(response.code, ResponseCode::SUCCESS.code());
    assert!(route(&client, &namesrv.addr, "TopicTest").await.is_some());
    namesrv.stop().await;
}

#[tokio::test]
async fn compressed_body_registers_its_topics() {
    let namesrv = common::start().await;
    let client = RemotingClient::default();
    let broker = broker();
    let compressed = broker.body().encode_compressed();
    assert_ne!(compressed, broker.body().encode());
    let response = call(&client, &namesrv.addr, register(&broker, compressed, true, None)).await;
    assert_eq!(response.code, ResponseCode::SUCCESS.code(), "{:?}", response.remark);
    let route = route(&client, &namesrv.addr, "TopicTest").await.unwrap();
    assert_eq!(route.queue_datas[0].write_queue_nums, 4);
    namesrv.stop().await;
}

#[tokio::test]
async fn deflated_body_flagged_uncompressed_is_recognised() {
    // A Java 5.x broker with compressedRegister=true deflates the body but sends
    // compressed=false; Java's name server fails on it, this one inflates it.
    let namesrv = common::start().await;
    let client = RemotingClient::default();
    let broker = broker();
    let compressed = broker.body().encode_compressed();
    let response = call(&client, &namesrv.addr, register(&broker, compressed, false, None)).await;
    assert_eq!(response.code, ResponseCode::SUCCESS.code(), "{:?}", response.remark);
    assert!(route(&client, &namesrv.addr, "TopicTest").await.is_some());
    // A body that only starts like zlib is still an error, not a panic.
    let response =
        call(&client, &namesrv.addr, register(&broker, b"x-not-zlib".to_vec(), false, None)).await;
    assert_eq!(response.code, ResponseCode::SYSTEM_ERROR.code());
    namesrv.stop().await;
}

#[tokio::test]
async fn old_brokers_send_a_bare_topic_config_wrapper() {
    let namesrv = common::start().await;
    let client = RemotingClient::default();
    let broker = broker();
    let body = broker.body().topic_config_serialize_wrapper.encode();
    let mut request = register(&broker, body, false, None);
    request.version = 30; // older than V3_0_11 (37)
    let response = call(&client, &namesrv.addr, request).await;
    assert_eq!(response.code, ResponseCode::SUCCESS.code(), "{:?}", response.remark);
    assert!(route(&client, &namesrv.addr, "TBW102").await.is_some());
    namesrv.stop().await;
}

#[tokio::test]
async fn empty_body_and_single_topic_registrations() {
    let namesrv = common::start().await;
    let client = RemotingClient::default();
    let broker = broker();
    // A broker id not registered yet may not start with a single topic.
    let single = Broker { topics: vec![topic("Lonely", 1)], ..broker.clone() };
    let response = call(&client, &namesrv.addr, single.register_request()).await;
    assert_eq!(response.code, ResponseCode::SYSTEM_ERROR.code());
    assert_eq!(response.remark.as_deref(), Some("register broker failed"));
    // An empty body registers the broker with no topics.
    let response =
        call(&client, &namesrv.addr, register(&broker, Vec::new(), false, Some(0))).await;
    assert_eq!(response.code, ResponseCode::SUCCESS.code());
    assert!(route(&client, &namesrv.addr, "TopicTest").await.is_none());
    // Now the id is known, so an incremental single-topic registration is accepted.
    let response = call(&client, &namesrv.addr, single.register_request()).await;
    assert_eq!(response.code, ResponseCode::SUCCESS.code());
    assert!(route(&client, &namesrv.addr, "Lonely").await.is_some());
    namesrv.stop().await;
}

#[tokio::test]
async fn malformed_bodies_are_system_errors_on_a_connection_that_stays_open() {
    let namesrv = common::start().await;
    let client = RemotingClient::default();
    let broker = broker();
    let connection = client.connection(&namesrv.addr).await.unwrap();
    for body in [&b"{not json"[..], br#"{"topicConfigSerializeWrapper":7}"#, b"\xff\xfe"] {
        let response =
            call(&client, &namesrv.addr, register(&broker, body.to_vec(), false, None)).await;
        assert_eq!(response.code, ResponseCode::SYSTEM_ERROR.code(), "{body:?}");
        assert!(response.remark.is_some());
    }
    for body in [&b"garbage"[..], b"x\x9c\x03\x00"] {
        let response =
            call(&client, &namesrv.addr, register(&broker, body.to_vec(), true, None)).await;
        assert_eq!(response.code, ResponseCode::SYSTEM_ERROR.code(), "{body:?}");
    }
    assert!(!connection.is_closed());
    broker.register(&client, &namesrv.addr).await;
    namesrv.stop().await;
}
