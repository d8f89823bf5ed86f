//! A broker whose connection closes is dropped at once (`Handler::on_close`), without
//! waiting for the expiry scan; closing a client's (non-broker) connection changes nothing.
#![cfg(test)]

mod common;

use common::{Broker, route, topic, wait_for_route};
use ferromq_remoting::transport::RemotingClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_broker_connection_drops_its_routes_immediately() {
    // The default scan (10 s) and timeout (120 s) cannot be what removes the broker here.
    let namesrv = common::start().await;
    let consumer = RemotingClient::default();
    let master_link = RemotingClient::default();
    let slave_link = RemotingClient::default();
    let topics = [topic("TopicTest", 4), topic("TBW102", 8)];
    Broker::new("broker-a", 0, "10.0.0.1:10911", &topics)
        .register(&master_link, &namesrv.addr)
        .await;
    Broker::new("broker-a", 1, "10.0.0.2:10911", &topics)
        .register(&slave_link, &namesrv.addr)
        .await;
    assert_eq!(
        route(&consumer, &namesrv.addr, "TopicTest").await.unwrap().broker_datas[0]
            .broker_addrs
            .len(),
        2
    );

    // A client connection closing is not a broker going away.
    let other = RemotingClient::default();
    assert!(route(&other, &namesrv.addr, "TopicTest").await.is_some());
    other.close_all();

    master_link.close_all();
    let route_now = wait_for_route(&consumer, &namesrv.addr, "TopicTest", |route| {
        route.as_ref().is_some_and(|route| route.broker_datas[0].broker_addrs.len() == 1)
    })
    .await
    .unwrap();
    assert_eq!(route_now.broker_datas[0].broker_addrs.keys().copied().collect::<Vec<_>>(), vec![1]);

    slave_link.close_all();
    let gone = wait_for_route(&consumer, &namesrv.addr, "TopicTest", Option::is_none).await;
    assert!(gone.is_none());
    namesrv.stop().await;
}
