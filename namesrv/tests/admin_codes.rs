//! The codes `mqadmin` sends to a name server, over TCP: topic lists, DELETE_TOPIC_IN_NAMESRV,
//! WIPE/ADD_WRITE_PERM_OF_BROKER, REGISTER_TOPIC_IN_NAMESRV, GET_BROKER_MEMBER_GROUP,
//! BROKER_HEARTBEAT, and GET/UPDATE_NAMESRV_CONFIG (black list, validation, persistence, and
//! the switches it flips at run time).
#![cfg(test)]

mod common;

use std::collections::BTreeMap;

use common::{Broker, CLUSTER, call, route, text, topic};
use ferromq_remoting::bodies::{
    GetBrokerMemberGroupResponseBody, JsonBody, QueueData, TopicList, TopicRouteData,
};
use ferromq_remoting::headers::{
    AddWritePermOfBrokerRequestHeader, DeleteTopicFromNamesrvRequestHeader,
    GetBrokerMemberGroupRequestHeader, GetTopicsByClusterRequestHeader,
    WipeWritePermOfBrokerRequestHeader,
};
use ferromq_remoting::transport::RemotingClient;
use ferromq_remoting::{RemotingCommand, RequestCode, ResponseCode};

fn request(code: RequestCode) -> RemotingCommand {
    RemotingCommand::request(code.code())
}

async fn topics(client: &RemotingClient, addr: &str, request: RemotingCommand) -> TopicList {
    let response = call(client, addr, request).await;
    assert_eq!(response.code, ResponseCode::SUCCESS.code(), "{:?}", response.remark);
    TopicList::decode(&response.body).unwrap()
}

async fn setup() -> (common::Namesrv, RemotingClient) {
    let namesrv = common::start().await;
    let client = RemotingClient::default();
    let mut unit = topic("UnitTopic", 2);
    unit.topic_sys_flag = 1;
    Broker::new("broker-a", 0, "127.0.0.1:10911", &[topic("Orders", 4), topic("TBW102", 8), unit])
        .register(&client, &namesrv.addr)
        .await;
    let mut other =
        Broker::new("broker-b", 0, "127.0.0.1:20911", &[topic("Orders", 2), topic("Audit", 1)]);
    other.cluster = "OtherCluster".to_owned();
    other.register(&client, &namesrv.addr).await;
    (namesrv, client)
}

#[tokio::test]
async fn topic_lists() {
    let (namesrv, client) = setup().await;
    let all =
        topics(&client, &namesrv.addr, request(RequestCode::GET_ALL_TOPIC_LIST_FROM_NAMESERVER))
            .await;
    assert_eq!(all.topic_list, ["Audit", "Orders", "TBW102", "UnitTopic"]);
    let by_cluster = request(RequestCode::GET_TOPICS_BY_CLUSTER)
        .with_header(&GetTopicsByClusterRequestHeader { cluster: "OtherCluster".to_owned() });
    assert_eq!(topics(&client, &namesrv.addr, by_cluster).await.topic_list, ["Audit", "Orders"]);
    let system =
        call(&client, &namesrv.addr, request(RequestCode::GET_SYSTEM_TOPIC_LIST_FROM_NS)).await;
    assert_eq!(
        text(&system.body),
        r#"{"brokerAddr":"127.0.0.1:10911","topicList":["DefaultCluster","OtherCluster","broker-a","broker-b"]}"#
    );
    let unit = topics(&client, &namesrv.addr, request(RequestCode::GET_UNIT_TOPIC_LIST)).await;
    assert_eq!(unit.topic_list, ["UnitTopic"]);
    let unit_sub =
        topics(&client, &namesrv.addr, request(RequestCode::GET_HAS_UNIT_SUB_TOPIC_LIST)).await;
    assert!(unit_sub.topic_list.is_empty());
    let ununit =
        topics(&client, &namesrv.addr, request(RequestCode::GET_HAS_UNIT_SUB_UNUNIT_TOPIC_LIST))
            .await;
    assert!(ununit.topic_list.is_empty());
    namesrv.stop().await;
}

#[tokio::test]
async fn delete_topic_and_write_permissions() {
    let (namesrv, client) = setup().await;
    let delete_in_other = request(RequestCode::DELETE_TOPIC_IN_NAMESRV).with_header(
        &DeleteTopicFromNamesrvRequestHeader {
            topic: "Orders".to_owned(),
            cluster_name: Some("OtherCluster".to_owned()),
        },
    );
    assert_eq!(
        call(&client, &namesrv.addr, delete_in_other).await.code,
        ResponseCode::SUCCESS.code()
    );
    let orders = route(&client, &namesrv.addr, "Orders").await.unwrap();
    assert_eq!(orders.queue_datas.len(), 1);

    let wipe = request(RequestCode::WIPE_WRITE_PERM_OF_BROKER)
        .with_header(&WipeWritePermOfBrokerRequestHeader { broker_name: "broker-a".to_owned() });
    let response = call(&client, &namesrv.addr, wipe).await;
    assert_eq!(response.ext_field("wipeTopicCount"), Some("3"));
    assert_eq!(route(&client, &namesrv.addr, "Orders").await.unwrap().queue_datas[0].perm, 4);
    let add = request(RequestCode::ADD_WRITE_PERM_OF_BROKER)
        .with_header(&AddWritePermOfBrokerRequestHeader { broker_name: "broker-a".to_owned() });
    let response = call(&client, &namesrv.addr, add).await;
    assert_eq!(response.ext_field("addTopicCount"), Some("3"));
    assert_eq!(route(&client, &namesrv.addr, "Orders").await.unwrap().queue_datas[0].perm, 6);

    let delete_everywhere = request(RequestCode::DELETE_TOPIC_IN_NAMESRV).with_header(
        &DeleteTopicFromNamesrvRequestHeader { topic: "Orders".to_owned(), cluster_name: None },
    );
    call(&client, &namesrv.addr, delete_everywhere).await;
    assert!(route(&client, &namesrv.addr, "Orders").await.is_none());
    namesrv.stop().await;
}

#[tokio::test]
async fn register_topic_member_group_and_heartbeat() {
    let (namesrv, client) = setup().await;
    let body = TopicRouteData {
        queue_datas: vec![QueueData {
            broker_name: "broker-b".to_owned(),
            read_queue_nums: 3,
            write_queue_nums: 3,
            perm: 6,
            topic_sys_flag: 0,
        }],
        ..TopicRouteData::default()
    };
    let mut register_topic =
        request(RequestCode::REGISTER_TOPIC_IN_NAMESRV).with_body(body.encode());
    register_topic.set_ext_field("topic", "Manual");
    assert_eq!(
        call(&client, &namesrv.addr, register_topic).await.code,
        ResponseCode::SUCCESS.code()
    );
    assert_eq!(
        route(&client, &namesrv.addr, "Manual").await.unwrap().queue_datas[0].read_queue_nums,
        3
    );

    let group = request(RequestCode::GET_BROKER_MEMBER_GROUP).with_header(
        &GetBrokerMemberGroupRequestHeader {
            cluster_name: CLUSTER.to_owned(),
            broker_name: "broker-a".to_owned(),
        },
    );
    let response = call(&client, &namesrv.addr, group).await;
    let group = GetBrokerMemberGroupResponseBody::decode(&response.body)
        .unwrap()
        .broker_member_group
        .unwrap();
    assert_eq!(group.broker_addrs, BTreeMap::from([(0, "127.0.0.1:10911".to_owned())]));
    assert_eq!(
        text(&response.body),
        r#"{"brokerMemberGroup":{"brokerAddrs":{0:"127.0.0.1:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"}}"#
    );

    let mut heartbeat = request(RequestCode::BROKER_HEARTBEAT);
    heartbeat.set_ext_field("clusterName", CLUSTER);
    heartbeat.set_ext_field("brokerAddr", "127.0.0.1:10911");
    heartbeat.set_ext_field("brokerName", "broker-a");
    assert_eq!(call(&client, &namesrv.addr, heartbeat).await.code, ResponseCode::SUCCESS.code());
    namesrv.stop().await;
}

#[tokio::test]
async fn namesrv_config_get_and_update() {
    let (namesrv, client) = setup().await;
    let config = call(&client, &namesrv.addr, request(RequestCode::GET_NAMESRV_CONFIG)).await;
    let config_text = text(&config.body);
    assert!(config_text.contains("listenPort=9876\n"), "{config_text}");
    assert!(config_text.contains("enableAllTopicList=true\n"), "{config_text}");

    let black_listed = request(RequestCode::UPDATE_NAMESRV_CONFIG)
        .with_body(b"kvConfigPath=/tmp/elsewhere\n".to_vec());
    let response = call(&client, &namesrv.addr, black_listed).await;
    assert_eq!(response.code, ResponseCode::NO_PERMISSION.code());
    assert_eq!(response.remark.as_deref(), Some("Can not update config in black list."));

    let invalid =
        request(RequestCode::UPDATE_NAMESRV_CONFIG).with_body(b"enableTopicList=maybe\n".to_vec());
    let response = call(&client, &namesrv.addr, invalid).await;
    assert_eq!(response.code, ResponseCode::SYSTEM_ERROR.code());
    assert!(response.remark.unwrap().contains("enableTopicList"));

    let update = request(RequestCode::UPDATE_NAMESRV_CONFIG)
        .with_body(b"enableAllTopicList=false\nnoSuchKey=1\n".to_vec());
    assert_eq!(call(&client, &namesrv.addr, update).await.code, ResponseCode::SUCCESS.code());
    let all =
        call(&client, &namesrv.addr, request(RequestCode::GET_ALL_TOPIC_LIST_FROM_NAMESERVER))
            .await;
    assert_eq!(all.code, ResponseCode::SYSTEM_ERROR.code());
    assert_eq!(all.remark.as_deref(), Some("disable"));
    // Persisted to configStorePath, unknown keys dropped as Java's update drops them.
    let stored = std::fs::read_to_string(namesrv.dir.path().join("namesrv.properties")).unwrap();
    assert!(stored.contains("enableAllTopicList=false\n"), "{stored}");
    assert!(!stored.contains("noSuchKey"), "{stored}");
    let loaded = ferromq_namesrv::NamesrvConfig::from_properties_file(
        &namesrv.dir.path().join("namesrv.properties"),
    )
    .unwrap();
    assert!(!loaded.enable_all_topic_list);
    namesrv.stop().await;
}
