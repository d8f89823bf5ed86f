//! GET_ROUTEINFO_BY_TOPIC over TCP for a master and its slave: the body is byte for byte what
//! a Java name server writes — fastjson's default form (bare numeric `brokerAddrs` keys) for
//! requests below version 401, the standard form (quoted, sorted keys) from 401 on or with
//! `acceptStandardJsonOnly` — plus TOPIC_NOT_EXIST with Java's remark, and cluster info.
//!
//! The expected texts follow spec §5: bean properties alphabetical, nulls (`orderTopicConf`,
//! `zoneName`, `topicQueueMappingByBroker`) omitted, `filterServerTable` an empty object.
#![cfg(test)]

mod common;

use common::{Broker, call, route_request, text, topic};
use ferromq_remoting::headers::GetRouteInfoRequestHeader;
use ferromq_remoting::transport::RemotingClient;
use ferromq_remoting::{RemotingCommand, RequestCode, ResponseCode};

const FASTJSON_ROUTE: &str = concat!(
    r#"{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"},"#,
    r#""brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}],"#,
    r#""filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"#,
    r#""readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#
);

const STANDARD_ROUTE: &str = concat!(
    r#"{"brokerDatas":[{"brokerAddrs":{"0":"127.0.0.1:10911","1":"127.0.0.1:10921"},"#,
    r#""brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}],"#,
    r#""filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"#,
    r#""readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#
);

const CLUSTER_INFO: &str = concat!(
    r#"{"brokerAddrTable":{"broker-a":{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"},"#,
    r#""brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}},"#,
    r#""clusterAddrTable":{"DefaultCluster":["broker-a"]}}"#
);

#[tokio::test]
async fn route_json_matches_java_in_both_forms() {
    let namesrv = common::start().await;
    let client = RemotingClient::default();
    let topics = [topic("TopicTest", 4), topic("TBW102", 8)];
    Broker::new("broker-a", 0, "127.0.0.1:10911", &topics).register(&client, &namesrv.addr).await;
    let slave = Broker::new("broker-a", 1, "127.0.0.1:10921", &topics);
    let registered = slave.register(&client, &namesrv.addr).await;
    assert_eq!(registered.ext_field("masterAddr"), Some("127.0.0.1:10911"));
    assert_eq!(registered.ext_field("haServerAddr"), Some("127.0.0.1:10912"));

    // V4_9_3 (400) and older: fastjson's default form.
    for version in [121, 400] {
        let response = call(&client, &namesrv.addr, route_request("TopicTest", version)).await;
        assert_eq!(response.code, ResponseCode::SUCCESS.code());
        assert_eq!(response.remark, None);
        assert_eq!(text(&response.body), FASTJSON_ROUTE, "version {version}");
    }
    // V4_9_4 (401) and newer: standard JSON.
    for version in [401, 479] {
        let response = call(&client, &namesrv.addr, route_request("TopicTest", version)).await;
        assert_eq!(text(&response.body), STANDARD_ROUTE, "version {version}");
    }
    // An old client asking for standard JSON gets it.
    let header = GetRouteInfoRequestHeader {
        topic: "TopicTest".to_owned(),
        accept_standard_json_only: Some(true),
    };
    let mut request =
        RemotingCommand::request(RequestCode::GET_ROUTEINFO_BY_TOPIC.code()).with_header(&header);
    request.version = 317;
    assert_eq!(text(&call(&client, &namesrv.addr, request).await.body), STANDARD_ROUTE);
    namesrv.stop().await;
}

#[tokio::test]
async fn unknown_topic_is_topic_not_exist_with_javas_remark() {
    let namesrv = common::start().await;
    let client = RemotingClient::default();
    let response = call(&client, &namesrv.addr, route_request("NoSuchTopic", 479)).await;
    assert_eq!(response.code, ResponseCode::TOPIC_NOT_EXIST.code());
    assert_eq!(
        response.remark.as_deref(),
        Some(
            "No topic route info in name server for the topic: NoSuchTopic\n\
             See https://rocketmq.apache.org/docs/bestPractice/06FAQ for further details."
        )
    );
    assert!(response.body.is_empty());
    namesrv.stop().await;
}

#[tokio::test]
async fn cluster_info_is_fastjson_default_form() {
    let namesrv = common::start().await;
    let client = RemotingClient::default();
    let empty = call(&client, &namesrv.addr, cluster_info_request()).await;
    assert_eq!(text(&empty.body), r#"{"brokerAddrTable":{},"clusterAddrTable":{}}"#);
    let topics = [topic("TopicTest", 4), topic("TBW102", 8)];
    Broker::new("broker-a", 0, "127.0.0.1:10911", &topics).register(&client, &namesrv.addr).await;
    Broker::new("broker-a", 1, "127.0.0.1:10921", &topics).register(&client, &namesrv.addr).await;
    let response = call(&client, &namesrv.addr, cluster_info_request()).await;
    assert_eq!(response.code, ResponseCode::SUCCESS.code());
    assert_eq!(text(&response.body), CLUSTER_INFO);
    namesrv.stop().await;
}

fn cluster_info_request() -> RemotingCommand {
    RemotingCommand::request(RequestCode::GET_BROKER_CLUSTER_INFO.code())
}

#[tokio::test]
async fn zone_mode_keeps_the_clients_zone_in_fastjson_form() {
    let namesrv = common::start().await;
    let client = RemotingClient::default();
    for (name, addr, zone) in
        [("broker-a", "127.0.0.1:10911", "zone-a"), ("broker-b", "127.0.0.1:20911", "zone-b")]
    {
        let mut register = Broker::new(name, 0, addr, &[topic("TopicTest", 4), topic("TBW102", 8)])
            .register_request();
        register.set_ext_field("__ZONE_NAME", zone);
        assert_eq!(call(&client, &namesrv.addr, register).await.code, ResponseCode::SUCCESS.code());
    }
    let mut request = route_request("TopicTest", 479);
    request.set_ext_field("__ZONE_MODE", "true");
    request.set_ext_field("__ZONE_NAME", "zone-a");
    let response = call(&client, &namesrv.addr, request).await;
    assert_eq!(response.code, ResponseCode::SUCCESS.code());
    // Java's hook re-encodes with the default features, even for a new client.
    assert_eq!(
        text(&response.body),
        concat!(
            r#"{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911"},"brokerName":"broker-a","#,
            r#""cluster":"DefaultCluster","enableActingMaster":false,"zoneName":"zone-a"}],"#,
            r#""filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"#,
            r#""readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#
        )
    );
    // Without zone mode both groups are listed.
    let all = call(&client, &namesrv.addr, route_request("TopicTest", 479)).await;
    assert!(text(&all.body).contains("broker-b"));
    namesrv.stop().await;
}
