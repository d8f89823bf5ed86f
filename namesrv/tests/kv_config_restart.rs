//! KV config over TCP: put, get, delete and list a namespace; the file is RocketMQ's
//! `kvConfig.json` and survives a restart; the ORDER_TOPIC_CONFIG namespace is returned to
//! registering brokers and, with `orderMessageEnable`, fills a route's `orderTopicConf`.
#![cfg(test)]

mod common;

use common::{Broker, call, route, text, topic};
use ferromq_remoting::bodies::{JsonBody, KvTable};
use ferromq_remoting::headers::{
    DeleteKvConfigRequestHeader, GetKvConfigRequestHeader, GetKvListByNamespaceRequestHeader,
    PutKvConfigRequestHeader,
};
use ferromq_remoting::transport::RemotingClient;
use ferromq_remoting::{RemotingCommand, RequestCode, ResponseCode};

const ORDER: &str = "ORDER_TOPIC_CONFIG";

fn put(namespace: &str, key: &str, value: &str) -> RemotingCommand {
    RemotingCommand::request(RequestCode::PUT_KV_CONFIG.code()).with_header(
        &PutKvConfigRequestHeader {
            namespace: namespace.to_owned(),
            key: key.to_owned(),
            value: value.to_owned(),
        },
    )
}

fn get(namespace: &str, key: &str) -> RemotingCommand {
    RemotingCommand::request(RequestCode::GET_KV_CONFIG.code()).with_header(
        &GetKvConfigRequestHeader { namespace: namespace.to_owned(), key: key.to_owned() },
    )
}

fn delete(namespace: &str, key: &str) -> RemotingCommand {
    RemotingCommand::request(RequestCode::DELETE_KV_CONFIG.code()).with_header(
        &DeleteKvConfigRequestHeader { namespace: namespace.to_owned(), key: key.to_owned() },
    )
}

fn list(namespace: &str) -> RemotingCommand {
    RemotingCommand::request(RequestCode::GET_KVLIST_BY_NAMESPACE.code())
        .with_header(&GetKvListByNamespaceRequestHeader { namespace: namespace.to_owned() })
}

#[tokio::test]
async fn kv_config_persists_across_restart() {
    let namesrv = common::start().await;
    let client = RemotingClient::default();
    for request in [
        put(ORDER, "Orders", "broker-a:4;broker-b:4"),
        put(ORDER, "Gone", "x"),
        put("NS", "k", "v"),
    ] {
        let response = call(&client, &namesrv.addr, request).await;
        assert_eq!(response.code, ResponseCode::SUCCESS.code(), "{:?}", response.remark);
    }
    assert_eq!(
        call(&client, &namesrv.addr, delete(ORDER, "Gone")).await.code,
        ResponseCode::SUCCESS.code()
    );
    let found = call(&client, &namesrv.addr, get(ORDER, "Orders")).await;
    assert_eq!(found.code, ResponseCode::SUCCESS.code());
    assert_eq!(found.ext_field("value"), Some("broker-a:4;broker-b:4"));
    let missing = call(&client, &namesrv.addr, get(ORDER, "Gone")).await;
    assert_eq!(missing.code, ResponseCode::QUERY_NOT_FOUND.code());
    assert_eq!(
        missing.remark.as_deref(),
        Some("No config item, Namespace: ORDER_TOPIC_CONFIG Key: Gone")
    );
    let listed = call(&client, &namesrv.addr, list(ORDER)).await;
    assert_eq!(text(&listed.body), r#"{"table":{"Orders":"broker-a:4;broker-b:4"}}"#);
    let no_namespace = call(&client, &namesrv.addr, list("Nope")).await;
    assert_eq!(no_namespace.code, ResponseCode::QUERY_NOT_FOUND.code());
    assert_eq!(no_namespace.remark.as_deref(), Some("No config item, Namespace: Nope"));

    // The file is RocketMQ's format, written before the answers above.
    let on_disk = std::fs::read_to_string(namesrv.kv_path()).unwrap();
    assert_eq!(
        on_disk,
        r#"{"configTable":{"NS":{"k":"v"},"ORDER_TOPIC_CONFIG":{"Orders":"broker-a:4;broker-b:4"}}}"#
    );

    // Restart on the same file, with order messages enabled.
    let dir = namesrv.stop().await;
    client.close_all();
    let mut config = common::test_config(dir.path());
    config.order_message_enable = true;
    let namesrv = common::start_in(dir, config).await;
    let found = call(&client, &namesrv.addr, get("NS", "k")).await;
    assert_eq!(found.ext_field("value"), Some("v"));

    // Brokers get the order-topic table back when they register...
    let broker =
        Broker::new("broker-a", 0, "127.0.0.1:10911", &[topic("Orders", 4), topic("TBW102", 8)]);
    let registered = broker.register(&client, &namesrv.addr).await;
    let table = KvTable::decode(&registered.body).unwrap();
    assert_eq!(table.table.get("Orders").map(String::as_str), Some("broker-a:4;broker-b:4"));
    // ...and routes carry it.
    let orders = route(&client, &namesrv.addr, "Orders").await.unwrap();
    assert_eq!(orders.order_topic_conf.as_deref(), Some("broker-a:4;broker-b:4"));
    assert_eq!(route(&client, &namesrv.addr, "TBW102").await.unwrap().order_topic_conf, None);
    namesrv.stop().await;
}

#[tokio::test]
async fn malformed_kv_file_stops_startup_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kvConfig.json"), b"{\"configTable\":[").unwrap();
    let config = common::test_config(dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = ferromq_namesrv::run(listener, config, std::future::pending()).await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert!(error.to_string().contains("kvConfig.json"), "{error}");
}
