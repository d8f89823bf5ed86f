//! Name servers run side by side and never talk: a broker registers with each; each answers
//! alone, and losing one (or unregistering from one) leaves the other's routes intact.
#![cfg(test)]

mod common;

use common::{Broker, CLUSTER, call, route, topic};
use ferromq_remoting::headers::UnregisterBrokerRequestHeader;
use ferromq_remoting::transport::RemotingClient;
use ferromq_remoting::{RemotingCommand, RequestCode, ResponseCode};

#[tokio::test]
async fn each_name_server_answers_alone() {
    let first = common::start().await;
    let second = common::start().await;
    let broker_link = RemotingClient::default();
    let consumer = RemotingClient::default();
    let broker =
        Broker::new("broker-a", 0, "127.0.0.1:10911", &[topic("TopicTest", 4), topic("TBW102", 8)]);
    // Brokers register with every name server.
    for namesrv in [&first.addr, &second.addr] {
        broker.register(&broker_link, namesrv).await;
    }
    for namesrv in [&first.addr, &second.addr] {
        let route = route(&consumer, namesrv, "TopicTest").await.unwrap();
        assert_eq!(route.broker_datas[0].broker_addrs[&0], "127.0.0.1:10911");
    }
    // A registration with one is not seen by the other.
    let only_first =
        Broker::new("broker-b", 0, "127.0.0.1:20911", &[topic("OnlyFirst", 1), topic("TBW102", 8)]);
    only_first.register(&broker_link, &first.addr).await;
    assert!(route(&consumer, &first.addr, "OnlyFirst").await.is_some());
    assert!(route(&consumer, &second.addr, "OnlyFirst").await.is_none());
    // Unregistering from the second leaves the first untouched.
    let unregister = RemotingCommand::request(RequestCode::UNREGISTER_BROKER.code()).with_header(
        &UnregisterBrokerRequestHeader {
            broker_name: broker.name.clone(),
            broker_addr: broker.addr.clone(),
            cluster_name: CLUSTER.to_owned(),
            broker_id: 0,
        },
    );
    assert_eq!(
        call(&broker_link, &second.addr, unregister).await.code,
        ResponseCode::SUCCESS.code()
    );
    assert!(route(&consumer, &second.addr, "TopicTest").await.is_none());
    assert!(route(&consumer, &first.addr, "TopicTest").await.is_some());
    // One name server stops; the other keeps answering.
    first.stop().await;
    broker.register(&broker_link, &second.addr).await;
    assert!(route(&consumer, &second.addr, "TopicTest").await.is_some());
    second.stop().await;
}
