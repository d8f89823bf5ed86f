//! Route assembly over TCP with several broker groups, masters and slaves: every group that
//! holds the topic is listed with all its members; when a master unregisters its slaves stay
//! listed so consumers keep reading, and a group goes only with its last member.
#![cfg(test)]

mod common;

use std::collections::BTreeMap;

use common::{Broker, CLUSTER, call, route, topic};
use ferromq_remoting::headers::UnregisterBrokerRequestHeader;
use ferromq_remoting::transport::RemotingClient;
use ferromq_remoting::{RemotingCommand, RequestCode, ResponseCode};

fn unregister(broker: &Broker) -> RemotingCommand {
    RemotingCommand::request(RequestCode::UNREGISTER_BROKER.code()).with_header(
        &UnregisterBrokerRequestHeader {
            broker_name: broker.name.clone(),
            broker_addr: broker.addr.clone(),
            cluster_name: CLUSTER.to_owned(),
            broker_id: broker.id,
        },
    )
}

fn members(route: &ferromq_remoting::bodies::TopicRouteData, name: &str) -> Vec<i64> {
    let data = route.broker_datas.iter().find(|data| data.broker_name == name).unwrap();
    data.broker_addrs.keys().copied().collect()
}

#[tokio::test]
async fn groups_slaves_and_a_lost_master() {
    let namesrv = common::start().await;
    let client = RemotingClient::default();
    let a_topics = [topic("Orders", 8), topic("TBW102", 8)];
    let b_topics = [topic("Orders", 4), topic("Payments", 2)];
    let a0 = Broker::new("broker-a", 0, "10.0.0.1:10911", &a_topics);
    let a1 = Broker::new("broker-a", 1, "10.0.0.2:10911", &a_topics);
    let a2 = Broker::new("broker-a", 2, "10.0.0.3:10911", &a_topics);
    let b0 = Broker::new("broker-b", 0, "10.0.1.1:10911", &b_topics);
    let b1 = Broker::new("broker-b", 1, "10.0.1.2:10911", &b_topics);
    for broker in [&a0, &a1, &a2, &b0, &b1] {
        broker.register(&client, &namesrv.addr).await;
    }

    let orders = route(&client, &namesrv.addr, "Orders").await.unwrap();
    let queues: BTreeMap<_, _> =
        orders.queue_datas.iter().map(|q| (q.broker_name.as_str(), q.write_queue_nums)).collect();
    assert_eq!(queues, BTreeMap::from([("broker-a", 8), ("broker-b", 4)]));
    assert_eq!(members(&orders, "broker-a"), vec![0, 1, 2]);
    assert_eq!(members(&orders, "broker-b"), vec![0, 1]);
    let payments = route(&client, &namesrv.addr, "Payments").await.unwrap();
    assert_eq!(payments.broker_datas.len(), 1, "only broker-b holds Payments");

    // broker-a's master goes: its slaves stay, with the queues the master registered.
    let response = call(&client, &namesrv.addr, unregister(&a0)).await;
    assert_eq!(response.code, ResponseCode::SUCCESS.code());
    let orders = route(&client, &namesrv.addr, "Orders").await.unwrap();
    assert_eq!(members(&orders, "broker-a"), vec![1, 2]);
    assert_eq!(orders.queue_datas.len(), 2);
    // A slave re-registering learns there is no live master.
    let again = a1.register(&client, &namesrv.addr).await;
    assert_eq!(again.ext_field("masterAddr"), None);

    // The master comes back: slaves learn its address again.
    a0.register(&client, &namesrv.addr).await;
    let again = a2.register(&client, &namesrv.addr).await;
    assert_eq!(again.ext_field("masterAddr"), Some("10.0.0.1:10911"));
    assert_eq!(again.ext_field("haServerAddr"), Some("10.0.0.1:10912"));

    // broker-b's members all go: the group and its only topic disappear.
    call(&client, &namesrv.addr, unregister(&b0)).await;
    call(&client, &namesrv.addr, unregister(&b1)).await;
    assert!(route(&client, &namesrv.addr, "Payments").await.is_none());
    let orders = route(&client, &namesrv.addr, "Orders").await.unwrap();
    assert_eq!(orders.broker_datas.len(), 1);
    namesrv.stop().await;
}
