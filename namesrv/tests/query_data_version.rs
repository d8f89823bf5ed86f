//! QUERY_DATA_VERSION over TCP: `changed` is true for an unknown broker or a different
//! DataVersion and false for the registered one, whose JSON comes back as the body.
#![cfg(test)]

mod common;

use common::{Broker, CLUSTER, call, text, topic};
use ferromq_remoting::bodies::{DataVersion, JsonBody};
use ferromq_remoting::headers::QueryDataVersionRequestHeader;
use ferromq_remoting::transport::RemotingClient;
use ferromq_remoting::{RemotingCommand, RequestCode, ResponseCode};

fn query(broker: &Broker, version: Option<DataVersion>) -> RemotingCommand {
    let request = RemotingCommand::request(RequestCode::QUERY_DATA_VERSION.code()).with_header(
        &QueryDataVersionRequestHeader {
            broker_name: broker.name.clone(),
            broker_addr: broker.addr.clone(),
            cluster_name: CLUSTER.to_owned(),
            broker_id: broker.id,
        },
    );
    match version {
        Some(version) => request.with_body(version.encode()),
        None => request,
    }
}

#[tokio::test]
async fn changed_and_unchanged() {
    let namesrv = common::start().await;
    let client = RemotingClient::default();
    let broker =
        Broker::new("broker-a", 0, "127.0.0.1:10911", &[topic("T", 4), topic("TBW102", 8)]);

    let unknown = call(&client, &namesrv.addr, query(&broker, Some(broker.data_version))).await;
    assert_eq!(unknown.code, ResponseCode::SUCCESS.code());
    assert_eq!(unknown.ext_field("changed"), Some("true"));
    assert!(unknown.body.is_empty(), "no stored version to return");

    broker.register(&client, &namesrv.addr).await;
    let same = call(&client, &namesrv.addr, query(&broker, Some(broker.data_version))).await;
    assert_eq!(same.ext_field("changed"), Some("false"));
    assert_eq!(text(&same.body), r#"{"counter":1,"stateVersion":0,"timestamp":1700000000000}"#);

    let newer = DataVersion { counter: 2, ..broker.data_version };
    let changed = call(&client, &namesrv.addr, query(&broker, Some(newer))).await;
    assert_eq!(changed.ext_field("changed"), Some("true"));
    let timestamp_only = DataVersion { timestamp: 1, ..broker.data_version };
    let changed = call(&client, &namesrv.addr, query(&broker, Some(timestamp_only))).await;
    assert_eq!(changed.ext_field("changed"), Some("true"));
    let no_body = call(&client, &namesrv.addr, query(&broker, None)).await;
    assert_eq!(no_body.ext_field("changed"), Some("true"));

    let mut malformed = query(&broker, None);
    malformed.body = b"{oops".to_vec().into();
    let response = call(&client, &namesrv.addr, malformed).await;
    assert_eq!(response.code, ResponseCode::SYSTEM_ERROR.code());
    namesrv.stop().await;
}
