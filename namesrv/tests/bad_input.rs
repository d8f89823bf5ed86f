//! Bad input on one connection is answered (unknown codes, missing header fields, malformed
//! bodies) or, for a frame that cannot be decoded, closes that connection only; other
//! connections keep being served. Oneway requests are never answered.
#![cfg(test)]

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::{Broker, call, route, topic};
use ferromq_remoting::transport::RemotingClient;
use ferromq_remoting::{FrameDecoder, RemotingCommand, RequestCode, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads one response frame from a raw stream.
async fn read_command(stream: &mut TcpStream, buf: &mut BytesMut) -> RemotingCommand {
    let decoder = FrameDecoder::default();
    loop {
        if let Some(frame) = decoder.decode(buf).unwrap() {
            return RemotingCommand::from_frame(frame).unwrap();
        }
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_buf(buf))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(read, 0, "connection closed before a response");
    }
}

async fn send(stream: &mut TcpStream, command: &RemotingCommand) {
    let mut wire = BytesMut::new();
    command.encode(&mut wire).unwrap();
    stream.write_all(&wire).await.unwrap();
}

/// True when the server closes the stream within 5 s.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut scratch = [0_u8; 64];
    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut scratch)).await {
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

#[tokio::test]
async fn unknown_codes_and_missing_fields_are_answered() {
    let namesrv = common::start().await;
    let client = RemotingClient::default();
    for code in [9999, RequestCode::SEND_MESSAGE.code(), RequestCode::PULL_MESSAGE.code()] {
        let response = call(&client, &namesrv.addr, RemotingCommand::request(code)).await;
        assert_eq!(response.code, ResponseCode::REQUEST_CODE_NOT_SUPPORTED.code());
        assert_eq!(response.remark, Some(format!(" request type {code} not supported")));
    }
    let no_topic = RemotingCommand::request(RequestCode::GET_ROUTEINFO_BY_TOPIC.code());
    let response = call(&client, &namesrv.addr, no_topic).await;
    assert_eq!(response.code, ResponseCode::SYSTEM_ERROR.code());
    assert_eq!(response.remark.as_deref(), Some("missing mandatory field `topic`"));
    let mut bad_id = Broker::new("broker-a", 0, "127.0.0.1:10911", &[topic("T", 1), topic("U", 1)])
        .register_request();
    bad_id.set_ext_field("brokerId", "zero");
    let response = call(&client, &namesrv.addr, bad_id).await;
    assert_eq!(response.code, ResponseCode::SYSTEM_ERROR.code());
    assert!(response.remark.unwrap().contains("brokerId"));
    let mut bad_route = RemotingCommand::request(RequestCode::REGISTER_TOPIC_IN_NAMESRV.code());
    bad_route.set_ext_field("topic", "T");
    bad_route.body = b"[not a route".to_vec().into();
    let response = call(&client, &namesrv.addr, bad_route).await;
    assert_eq!(response.code, ResponseCode::SYSTEM_ERROR.code());
    namesrv.stop().await;
}

#[tokio::test]
async fn malformed_frames_close_only_their_connection() {
    let namesrv = common::start().await;
    let client = RemotingClient::default();
    Broker::new("broker-a", 0, "127.0.0.1:10911", &[topic("T", 1), topic("TBW102", 8)])
        .register(&client, &namesrv.addr)
        .await;
    let garbage: [&[u8]; 3] = [
        // Serialize type 7 does not exist.
        b"\x00\x00\x00\x08\x07\x00\x00\x02{}xx",
        // Negative frame length.
        b"\xff\xff\xff\xfb\x00\x00\x00\x00",
        // A JSON header that is not JSON.
        b"\x00\x00\x00\x09\x00\x00\x00\x05{code",
    ];
    for bytes in garbage {
        let mut bad = TcpStream::connect(&namesrv.addr).await.unwrap();
        bad.write_all(bytes).await.unwrap();
        assert!(closed_by_server(&mut bad).await, "{bytes:?}");
        // The well-behaved connection is unaffected.
        assert!(route(&client, &namesrv.addr, "T").await.is_some());
    }
    namesrv.stop().await;
}

#[tokio::test]
async fn oneway_requests_are_not_answered() {
    let namesrv = common::start().await;
    let mut stream = TcpStream::connect(&namesrv.addr).await.unwrap();
    let mut oneway = RemotingCommand::request(RequestCode::GET_BROKER_CLUSTER_INFO.code());
    oneway.opaque = 1;
    oneway.mark_oneway();
    send(&mut stream, &oneway).await;
    let mut unknown_oneway = RemotingCommand::request(9999);
    unknown_oneway.opaque = 2;
    unknown_oneway.mark_oneway();
    send(&mut stream, &unknown_oneway).await;
    let mut normal = RemotingCommand::request(RequestCode::GET_BROKER_CLUSTER_INFO.code());
    normal.opaque = 3;
    send(&mut stream, &normal).await;
    let mut buf = BytesMut::new();
    let response = read_command(&mut stream, &mut buf).await;
    assert_eq!(response.opaque, 3, "the oneway requests got no answer");
    assert_eq!(response.code, ResponseCode::SUCCESS.code());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(buf.is_empty());
    namesrv.stop().await;
}
