//! The GET_ROUTEINFO_BY_TOPIC and GET_BROKER_CLUSTER_INFO frames captured from real clients
//! (`shared/wire-samples`: ali-ons, rocketmq-client-cpp, rocketmq-client-rust) are sent
//! byte for byte over TCP and answered as a Java name server answers them: with the request's
//! opaque, a route in fastjson form for the old clients (versions 121 and 63) and in standard
//! form for the new one (474), and TOPIC_NOT_EXIST for a topic nobody registered.
#![cfg(test)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::BytesMut;
use common::{Broker, text, topic};
use ferromq_remoting::bodies::{ClusterInfo, JsonBody, TopicRouteData};
use ferromq_remoting::transport::RemotingClient;
use ferromq_remoting::{FrameDecoder, RemotingCommand, RequestCode, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/wire-samples")
}

fn decode(bytes: &[u8]) -> RemotingCommand {
    let mut buf = BytesMut::from(bytes);
    let frame = FrameDecoder::default().decode(&mut buf).unwrap().unwrap();
    assert!(buf.is_empty());
    RemotingCommand::from_frame(frame).unwrap()
}

async fn exchange(addr: &str, frame: &[u8]) -> RemotingCommand {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(frame).await.unwrap();
    let decoder = FrameDecoder::default();
    let mut buf = BytesMut::new();
    loop {
        if let Some(frame) = decoder.decode(&mut buf).unwrap() {
            return RemotingCommand::from_frame(frame).unwrap();
        }
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_buf(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(read, 0, "closed before answering");
    }
}

#[tokio::test]
async fn captured_client_frames_are_answered() {
    let dir = samples_dir();
    assert!(dir.is_dir(), "wire samples missing at {}", dir.display());
    let namesrv = common::start().await;
    let client = RemotingClient::default();
    let topics = [
        topic("TBW102", 8),
        topic("kit_ons_mwr8t8gyd700a1_probe", 4),
        topic("kit_py_1a2012cf6e17cfc11", 4),
    ];
    Broker::new("broker-a", 0, "127.0.0.1:10911", &topics).register(&client, &namesrv.addr).await;

    let mut route_samples = 0;
    for client_dir in
        ["ali-ons-3.12.0", "rocketmq-client-cpp-via-python-0.4.4", "rocketmq-client-rust-1.0.0"]
    {
        for index in 1..=2 {
            let path = dir.join(client_dir).join(format!("105-GET_ROUTEINFO_BY_TOPIC-{index}.bin"));
            let bytes = std::fs::read(&path).unwrap();
            let request = decode(&bytes);
            assert_eq!(request.code, RequestCode::GET_ROUTEINFO_BY_TOPIC.code());
            let topic = request.ext_field("topic").unwrap().to_owned();
            let response = exchange(&namesrv.addr, &bytes).await;
            assert!(response.is_response());
            assert_eq!(response.opaque, request.opaque, "{}", path.display());
            if topic.ends_with("_absent") {
                assert_eq!(response.code, ResponseCode::TOPIC_NOT_EXIST.code());
                continue;
            }
            assert_eq!(
                response.code,
                ResponseCode::SUCCESS.code(),
                "{}: {:?}",
                path.display(),
                response.remark
            );
            let body = text(&response.body);
            if request.version >= 401 {
                assert!(body.contains(r#""brokerAddrs":{"0":"127.0.0.1:10911"}"#), "{body}");
            } else {
                assert!(body.contains(r#""brokerAddrs":{0:"127.0.0.1:10911"}"#), "{body}");
            }
            let route = TopicRouteData::decode(&response.body).unwrap();
            assert_eq!(route.queue_datas[0].broker_name, "broker-a");
            route_samples += 1;
        }
    }
    assert_eq!(route_samples, 5);

    let bytes =
        std::fs::read(dir.join("ali-ons-3.12.0/106-GET_BROKER_CLUSTER_INFO-1.bin")).unwrap();
    let response = exchange(&namesrv.addr, &bytes).await;
    assert_eq!(response.code, ResponseCode::SUCCESS.code());
    assert_eq!(response.opaque, decode(&bytes).opaque);
    let info = ClusterInfo::decode(&response.body).unwrap();
    assert_eq!(info.broker_addr_table["broker-a"].broker_addrs[&0], "127.0.0.1:10911");
    namesrv.stop().await;
}
