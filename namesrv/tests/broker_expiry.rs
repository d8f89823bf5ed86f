//! Liveness over TCP: a broker silent for longer than its heartbeat timeout is dropped by the
//! periodic scan (and its connection closed), while one that keeps sending BROKER_HEARTBEAT
//! or QUERY_DATA_VERSION stays. Timeouts are shortened through the registration header
//! (`heartbeatTimeoutMillis`) and the scan interval through the config.
#![cfg(test)]

mod common;

use std::time::Duration;

use common::{Broker, CLUSTER, call, route, topic, wait_for_route};
use ferromq_remoting::bodies::JsonBody;
use ferromq_remoting::headers::{BrokerHeartbeatRequestHeader, QueryDataVersionRequestHeader};
use ferromq_remoting::transport::RemotingClient;
use ferromq_remoting::{RemotingCommand, RequestCode, ResponseCode};

fn heartbeat(broker: &Broker) -> RemotingCommand {
    RemotingCommand::request(RequestCode::BROKER_HEARTBEAT.code()).with_header(
        &BrokerHeartbeatRequestHeader {
            cluster_name: CLUSTER.to_owned(),
            broker_addr: broker.addr.clone(),
            broker_name: broker.name.clone(),
            broker_id: Some(broker.id),
            ..BrokerHeartbeatRequestHeader::default()
        },
    )
}

fn query_data_version(broker: &Broker) -> RemotingCommand {
    RemotingCommand::request(RequestCode::QUERY_DATA_VERSION.code())
        .with_header(&QueryDataVersionRequestHeader {
            broker_name: broker.name.clone(),
            broker_addr: broker.addr.clone(),
            cluster_name: CLUSTER.to_owned(),
            broker_id: broker.id,
        })
        .with_body(broker.data_version.encode())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_brokers_expire_and_heartbeating_ones_stay() {
    let namesrv = common::start_with(|config| config.scan_not_active_broker_interval_ms = 50).await;
    let observer = RemotingClient::default();
    let silent_client = RemotingClient::default();
    let beating_client = RemotingClient::default();
    let querying_client = RemotingClient::default();
    let mut silent =
        Broker::new("silent", 0, "10.0.0.1:10911", &[topic("Silent", 1), topic("TBW102", 8)]);
    silent.heartbeat_timeout_ms = Some(200);
    let mut beating =
        Broker::new("beating", 0, "10.0.0.2:10911", &[topic("Beating", 1), topic("TBW102", 8)]);
    // Generous, so a slow machine cannot expire the brokers that keep reporting.
    beating.heartbeat_timeout_ms = Some(2000);
    let mut querying =
        Broker::new("querying", 0, "10.0.0.3:10911", &[topic("Querying", 1), topic("TBW102", 8)]);
    querying.heartbeat_timeout_ms = Some(2000);
    silent.register(&silent_client, &namesrv.addr).await;
    beating.register(&beating_client, &namesrv.addr).await;
    querying.register(&querying_client, &namesrv.addr).await;
    let silent_connection = silent_client.connection(&namesrv.addr).await.unwrap();

    let keep_alive = async {
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let response = call(&beating_client, &namesrv.addr, heartbeat(&beating)).await;
            assert_eq!(response.code, ResponseCode::SUCCESS.code());
            let response =
                call(&querying_client, &namesrv.addr, query_data_version(&querying)).await;
            assert_eq!(response.ext_field("changed"), Some("false"));
        }
    };
    keep_alive.await;

    // About 3 s have passed: the silent broker (200 ms timeout) is gone; the others, silent
    // for 100 ms at most, are not, although 3 s exceeds their 2 s timeout.
    let gone = wait_for_route(&observer, &namesrv.addr, "Silent", Option::is_none).await;
    assert!(gone.is_none(), "the silent broker expired");
    assert!(route(&observer, &namesrv.addr, "Beating").await.is_some());
    assert!(route(&observer, &namesrv.addr, "Querying").await.is_some());
    assert_eq!(route(&observer, &namesrv.addr, "TBW102").await.unwrap().broker_datas.len(), 2);
    // Java closes an expired broker's channel; so do we.
    tokio::time::timeout(Duration::from_secs(5), silent_connection.closed()).await.unwrap();
    namesrv.stop().await;
}
