//! Unit tests of the pure routing state: registration, masters and slaves, expiry with an
//! explicit clock, connection close, data versions, topic operations.

use std::collections::BTreeMap;

use super::*;

const CLUSTER: &str = "DefaultCluster";
const SECOND_MS: i64 = 1000;

fn topic(name: &str, queues: i32) -> TopicConfig {
    TopicConfig {
        topic_name: name.to_owned(),
        read_queue_nums: queues,
        write_queue_nums: queues,
        ..TopicConfig::default()
    }
}

fn wrapper(counter: i64, topics: &[TopicConfig]) -> TopicConfigSerializeWrapper {
    TopicConfigSerializeWrapper {
        topic_config_table: topics.iter().map(|t| (t.topic_name.clone(), t.clone())).collect(),
        data_version: DataVersion { counter, state_version: 0, timestamp: 1_700_000_000_000 },
        ..TopicConfigSerializeWrapper::default()
    }
}

fn registration(name: &str, id: i64, addr: &str, topics: &[TopicConfig]) -> BrokerRegistration {
    BrokerRegistration {
        cluster_name: CLUSTER.to_owned(),
        broker_addr: addr.to_owned(),
        broker_name: name.to_owned(),
        broker_id: id,
        ha_server_addr: format!("{addr}-ha"),
        topic_config_wrapper: wrapper(1, topics),
        filter_server_list: Some(Vec::new()),
        connection_id: Some(u64::try_from(id).unwrap() + 100),
        ..BrokerRegistration::default()
    }
}

fn register(
    manager: &mut RouteInfoManager,
    registration: BrokerRegistration,
    now_ms: i64,
) -> RegisterResult {
    match manager.register_broker(registration, false, now_ms) {
        RegisterOutcome::Registered(result) => result,
        RegisterOutcome::Rejected => panic!("registration rejected"),
    }
}

fn two_topics() -> Vec<TopicConfig> {
    vec![topic("TopicA", 4), topic("TBW102", 8)]
}

fn addrs(route: &TopicRouteData, name: &str) -> BTreeMap<i64, String> {
    route.broker_datas.iter().find(|data| data.broker_name == name).unwrap().broker_addrs.clone()
}

#[test]
fn master_registration_creates_cluster_broker_and_topics() {
    let mut manager = RouteInfoManager::default();
    let result =
        register(&mut manager, registration("broker-a", 0, "10.0.0.1:10911", &two_topics()), 0);
    assert_eq!(result, RegisterResult::default(), "a master learns no master address");
    let route = manager.pickup_topic_route("TopicA", false).unwrap();
    assert_eq!(route.queue_datas.len(), 1);
    assert_eq!(route.queue_datas[0].broker_name, "broker-a");
    assert_eq!(route.queue_datas[0].read_queue_nums, 4);
    assert_eq!(route.queue_datas[0].perm, 6);
    assert_eq!(addrs(&route, "broker-a"), BTreeMap::from([(0, "10.0.0.1:10911".to_owned())]));
    let info = manager.cluster_info();
    assert_eq!(info.cluster_addr_table[CLUSTER].iter().collect::<Vec<_>>(), vec!["broker-a"]);
    assert_eq!(manager.all_topics().topic_list, vec!["TBW102".to_owned(), "TopicA".to_owned()]);
    assert!(manager.pickup_topic_route("Unknown", false).is_none());
}

#[test]
fn route_lists_every_group_and_every_slave() {
    let mut manager = RouteInfoManager::default();
    register(&mut manager, registration("broker-a", 0, "10.0.0.1:10911", &two_topics()), 0);
    register(&mut manager, registration("broker-a", 1, "10.0.0.2:10911", &two_topics()), 0);
    register(
        &mut manager,
        registration("broker-b", 0, "10.0.1.1:10911", &[topic("TopicA", 2), topic("X", 1)]),
        0,
    );
    register(
        &mut manager,
        registration("broker-b", 2, "10.0.1.3:10911", &[topic("TopicA", 2), topic("X", 1)]),
        0,
    );
    let route = manager.pickup_topic_route("TopicA", false).unwrap();
    let queue_names: Vec<_> = route.queue_datas.iter().map(|q| q.broker_name.as_str()).collect();
    assert_eq!(queue_names, vec!["broker-a", "broker-b"]);
    assert_eq!(route.queue_datas[1].read_queue_nums, 2);
    assert_eq!(addrs(&route, "broker-a").len(), 2);
    assert_eq!(
        addrs(&route, "broker-b"),
        BTreeMap::from([(0, "10.0.1.1:10911".to_owned()), (2, "10.0.1.3:10911".to_owned())])
    );
    assert!(route.filter_server_table.is_empty());
    let only_b = manager.pickup_topic_route("X", false).unwrap();
    assert_eq!(only_b.broker_datas.len(), 1);
}

#[test]
fn slave_learns_master_and_ha_address_while_master_is_live() {
    let mut manager = RouteInfoManager::default();
    // Slave first: no master yet.
    let early =
        register(&mut manager, registration("broker-a", 1, "10.0.0.2:10911", &two_topics()), 0);
    assert_eq!(early, RegisterResult::default());
    register(&mut manager, registration("broker-a", 0, "10.0.0.1:10911", &two_topics()), 0);
    let result =
        register(&mut manager, registration("broker-a", 1, "10.0.0.2:10911", &two_topics()), 0);
    assert_eq!(result.master_addr.as_deref(), Some("10.0.0.1:10911"));
    assert_eq!(result.ha_server_addr.as_deref(), Some("10.0.0.1:10911-ha"));
}

#[test]
fn slaves_stay_listed_when_the_master_is_gone() {
    let mut manager = RouteInfoManager::default();
    register(&mut manager, registration("broker-a", 0, "10.0.0.1:10911", &two_topics()), 0);
    register(&mut manager, registration("broker-a", 1, "10.0.0.2:10911", &two_topics()), 0);
    manager.unregister_brokers(&[BrokerIdentity {
        cluster_name: CLUSTER.to_owned(),
        broker_addr: "10.0.0.1:10911".to_owned(),
        broker_name: "broker-a".to_owned(),
        broker_id: 0,
    }]);
    let route = manager.pickup_topic_route("TopicA", false).unwrap();
    assert_eq!(addrs(&route, "broker-a"), BTreeMap::from([(1, "10.0.0.2:10911".to_owned())]));
    assert_eq!(route.queue_datas[0].perm, 6, "classic groups keep their permission");
    // A slave re-registering without its master still cannot change the queues.
    let result = register(
        &mut manager,
        registration("broker-a", 1, "10.0.0.2:10911", &[topic("TopicA", 16), topic("Y", 1)]),
        5,
    );
    assert_eq!(result, RegisterResult::default(), "no live master to report");
    assert_eq!(
        manager.pickup_topic_route("TopicA", false).unwrap().queue_datas[0].read_queue_nums,
        4
    );
    assert!(manager.pickup_topic_route("Y", false).is_none());
    // When the last member goes, the group, its topics and its cluster go.
    manager.unregister_brokers(&[BrokerIdentity {
        cluster_name: CLUSTER.to_owned(),
        broker_addr: "10.0.0.2:10911".to_owned(),
        broker_name: "broker-a".to_owned(),
        broker_id: 1,
    }]);
    assert!(manager.pickup_topic_route("TopicA", false).is_none());
    assert!(manager.cluster_info().cluster_addr_table.is_empty());
    assert!(manager.all_topics().topic_list.is_empty());
}

#[test]
fn expiry_uses_each_brokers_timeout() {
    let mut manager = RouteInfoManager::default();
    register(&mut manager, registration("broker-a", 0, "10.0.0.1:10911", &two_topics()), 0);
    let mut short =
        registration("broker-b", 0, "10.0.1.1:10911", &[topic("B", 1), topic("TBW102", 8)]);
    short.heartbeat_timeout_ms = Some(10 * SECOND_MS);
    register(&mut manager, short, 0);
    assert!(
        manager.scan_not_active_brokers(10 * SECOND_MS).is_empty(),
        "exactly at the timeout is alive"
    );
    let expired = manager.scan_not_active_brokers(10 * SECOND_MS + 1);
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].addr_info, BrokerAddrInfo::new(CLUSTER, "10.0.1.1:10911"));
    assert_eq!(expired[0].connection_id, Some(100));
    assert!(manager.pickup_topic_route("B", false).is_none());
    assert_eq!(manager.pickup_topic_route("TBW102", false).unwrap().broker_datas.len(), 1);
    // A heartbeat at 100 s keeps broker-a past the default 120 s.
    assert!(
        manager.update_broker_timestamp(
            &BrokerAddrInfo::new(CLUSTER, "10.0.0.1:10911"),
            100 * SECOND_MS
        )
    );
    assert!(manager.scan_not_active_brokers(200 * SECOND_MS).is_empty());
    assert_eq!(manager.scan_not_active_brokers(220 * SECOND_MS + 1).len(), 1);
    assert!(manager.cluster_info().broker_addr_table.is_empty());
    assert!(!manager.update_broker_timestamp(&BrokerAddrInfo::new(CLUSTER, "10.0.0.1:10911"), 0));
}

#[test]
fn closed_connection_removes_its_brokers_only() {
    let mut manager = RouteInfoManager::default();
    register(&mut manager, registration("broker-a", 0, "10.0.0.1:10911", &two_topics()), 0);
    register(&mut manager, registration("broker-a", 1, "10.0.0.2:10911", &two_topics()), 0);
    assert!(manager.on_connection_closed(999).is_empty());
    let closed = manager.on_connection_closed(100);
    assert_eq!(closed, vec![BrokerAddrInfo::new(CLUSTER, "10.0.0.1:10911")]);
    let route = manager.pickup_topic_route("TopicA", false).unwrap();
    assert_eq!(addrs(&route, "broker-a"), BTreeMap::from([(1, "10.0.0.2:10911".to_owned())]));
}

#[test]
fn data_version_decides_whether_topics_are_reapplied() {
    let mut manager = RouteInfoManager::default();
    let addr_info = BrokerAddrInfo::new(CLUSTER, "10.0.0.1:10911");
    assert!(manager.is_broker_topic_config_changed(&addr_info, Some(&DataVersion::default())));
    register(&mut manager, registration("broker-a", 0, "10.0.0.1:10911", &two_topics()), 0);
    let registered = wrapper(1, &[]).data_version;
    assert!(!manager.is_broker_topic_config_changed(&addr_info, Some(&registered)));
    assert!(manager.is_broker_topic_config_changed(&addr_info, None));
    let newer = DataVersion { counter: 2, ..registered };
    assert!(manager.is_broker_topic_config_changed(&addr_info, Some(&newer)));
    assert_eq!(manager.broker_data_version(&addr_info), Some(registered));

    // Same version: a changed queue count of a known topic is not applied (Java skips it).
    register(
        &mut manager,
        registration("broker-a", 0, "10.0.0.1:10911", &[topic("TopicA", 9), topic("TBW102", 8)]),
        1,
    );
    assert_eq!(
        manager.pickup_topic_route("TopicA", false).unwrap().queue_datas[0].read_queue_nums,
        4
    );
    // A new version applies it.
    let mut changed =
        registration("broker-a", 0, "10.0.0.1:10911", &[topic("TopicA", 9), topic("TBW102", 8)]);
    changed.topic_config_wrapper.data_version = newer;
    register(&mut manager, changed, 2);
    assert_eq!(
        manager.pickup_topic_route("TopicA", false).unwrap().queue_datas[0].read_queue_nums,
        9
    );
}

#[test]
fn single_topic_registration_needs_a_full_one_first() {
    let mut manager = RouteInfoManager::default();
    let single = registration("broker-a", 0, "10.0.0.1:10911", &[topic("TopicA", 4)]);
    assert_eq!(manager.register_broker(single.clone(), false, 0), RegisterOutcome::Rejected);
    assert!(manager.cluster_info().broker_addr_table.is_empty(), "nothing left behind");
    assert!(manager.cluster_info().cluster_addr_table.is_empty());
    register(&mut manager, registration("broker-a", 0, "10.0.0.1:10911", &two_topics()), 0);
    let mut incremental = registration("broker-a", 0, "10.0.0.1:10911", &[topic("NewTopic", 2)]);
    incremental.topic_config_wrapper.data_version.counter = 2;
    register(&mut manager, incremental, 1);
    assert!(manager.pickup_topic_route("NewTopic", false).is_some());
    assert!(
        manager.pickup_topic_route("TopicA", false).is_some(),
        "an incremental registration keeps other topics"
    );
}

#[test]
fn slave_promoted_to_master_drops_its_old_id() {
    let mut manager = RouteInfoManager::default();
    register(&mut manager, registration("broker-a", 1, "10.0.0.2:10911", &two_topics()), 0);
    register(&mut manager, registration("broker-a", 0, "10.0.0.2:10911", &two_topics()), 1);
    let route = manager.pickup_topic_route("TopicA", false).unwrap();
    assert_eq!(addrs(&route, "broker-a"), BTreeMap::from([(0, "10.0.0.2:10911".to_owned())]));
}

#[test]
fn an_older_state_version_for_a_taken_id_is_ignored() {
    let mut manager = RouteInfoManager::default();
    let mut newer = registration("broker-a", 0, "10.0.0.1:10911", &two_topics());
    newer.topic_config_wrapper.data_version.state_version = 5;
    register(&mut manager, newer, 0);
    let stale = registration("broker-a", 0, "10.0.0.9:10911", &two_topics());
    assert_eq!(register(&mut manager, stale, 1), RegisterResult::default());
    let route = manager.pickup_topic_route("TopicA", false).unwrap();
    assert_eq!(addrs(&route, "broker-a"), BTreeMap::from([(0, "10.0.0.1:10911".to_owned())]));
    assert_eq!(manager.broker_data_version(&BrokerAddrInfo::new(CLUSTER, "10.0.0.9:10911")), None);
}

#[test]
fn write_permission_wipe_and_add() {
    let mut manager = RouteInfoManager::default();
    register(&mut manager, registration("broker-a", 0, "10.0.0.1:10911", &two_topics()), 0);
    assert_eq!(manager.wipe_write_perm("broker-a"), 2);
    assert_eq!(manager.pickup_topic_route("TopicA", false).unwrap().queue_datas[0].perm, 4);
    assert_eq!(manager.wipe_write_perm("unknown"), 0);
    assert_eq!(manager.add_write_perm("broker-a"), 2);
    assert_eq!(manager.pickup_topic_route("TopicA", false).unwrap().queue_datas[0].perm, 6);
}

#[test]
fn delete_topic_everywhere_or_per_cluster() {
    let mut manager = RouteInfoManager::default();
    register(&mut manager, registration("broker-a", 0, "10.0.0.1:10911", &two_topics()), 0);
    let mut other = registration("broker-c", 0, "10.0.2.1:10911", &two_topics());
    other.cluster_name = "OtherCluster".to_owned();
    register(&mut manager, other, 0);
    manager.delete_topic("TopicA", Some("OtherCluster"));
    let route = manager.pickup_topic_route("TopicA", false).unwrap();
    assert_eq!(route.queue_datas.len(), 1);
    assert_eq!(route.queue_datas[0].broker_name, "broker-a");
    manager.delete_topic("TopicA", Some("NoSuchCluster"));
    assert!(manager.pickup_topic_route("TopicA", false).is_some());
    manager.delete_topic("TopicA", None);
    assert!(manager.pickup_topic_route("TopicA", false).is_none());
    assert_eq!(manager.topics_by_cluster("OtherCluster").topic_list, vec!["TBW102".to_owned()]);
    assert!(manager.topics_by_cluster("NoSuchCluster").topic_list.is_empty());
}

#[test]
fn register_topic_requires_known_brokers() {
    let mut manager = RouteInfoManager::default();
    register(&mut manager, registration("broker-a", 0, "10.0.0.1:10911", &two_topics()), 0);
    let queue = |name: &str| QueueData {
        broker_name: name.to_owned(),
        read_queue_nums: 3,
        write_queue_nums: 3,
        perm: 6,
        topic_sys_flag: 0,
    };
    assert!(!manager.register_topic("New", vec![queue("broker-a"), queue("ghost")]));
    assert!(manager.pickup_topic_route("New", false).is_none(), "nothing applied");
    assert!(manager.register_topic("New", vec![queue("broker-a")]));
    assert_eq!(manager.pickup_topic_route("New", false).unwrap().queue_datas[0].read_queue_nums, 3);
}

#[test]
fn system_and_unit_topic_lists() {
    let mut manager = RouteInfoManager::default();
    let mut unit = topic("Unit", 1);
    unit.topic_sys_flag = TOPIC_SYS_FLAG_UNIT;
    let mut unit_sub = topic("UnitSub", 1);
    unit_sub.topic_sys_flag = TOPIC_SYS_FLAG_UNIT_SUB;
    let mut both = topic("Both", 1);
    both.topic_sys_flag = TOPIC_SYS_FLAG_UNIT | TOPIC_SYS_FLAG_UNIT_SUB;
    register(
        &mut manager,
        registration("broker-a", 0, "10.0.0.1:10911", &[unit, unit_sub, both]),
        0,
    );
    let system = manager.system_topics();
    assert_eq!(system.topic_list, vec![CLUSTER.to_owned(), "broker-a".to_owned()]);
    assert_eq!(system.broker_addr.as_deref(), Some("10.0.0.1:10911"));
    assert_eq!(manager.unit_topics().topic_list, vec!["Both".to_owned(), "Unit".to_owned()]);
    assert_eq!(
        manager.has_unit_sub_topics().topic_list,
        vec!["Both".to_owned(), "UnitSub".to_owned()]
    );
    assert_eq!(manager.has_unit_sub_ununit_topics().topic_list, vec!["UnitSub".to_owned()]);
}

#[test]
fn acting_master_presents_the_lowest_slave_as_master() {
    let mut manager = RouteInfoManager::default();
    let acting = |id: i64, addr: &str| {
        let mut registration = registration("broker-a", id, addr, &two_topics());
        registration.enable_acting_master = Some(true);
        registration
    };
    register(&mut manager, acting(0, "10.0.0.1:10911"), 0);
    register(&mut manager, acting(1, "10.0.0.2:10911"), 0);
    register(&mut manager, acting(2, "10.0.0.3:10911"), 0);
    manager.on_connection_closed(100);
    // The group lost its master: its queues became read-only.
    let route = manager.pickup_topic_route("TopicA", false).unwrap();
    assert_eq!(route.queue_datas[0].perm, 4);
    assert_eq!(addrs(&route, "broker-a").keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    let rewritten = manager.pickup_topic_route("TopicA", true).unwrap();
    assert_eq!(
        addrs(&rewritten, "broker-a"),
        BTreeMap::from([(0, "10.0.0.2:10911".to_owned()), (2, "10.0.0.3:10911".to_owned())])
    );
}

#[test]
fn filter_servers_and_member_group() {
    let mut manager = RouteInfoManager::default();
    let mut with_filters = registration("broker-a", 0, "10.0.0.1:10911", &two_topics());
    with_filters.filter_server_list = Some(vec!["10.0.0.1:9999".to_owned()]);
    register(&mut manager, with_filters, 0);
    let route = manager.pickup_topic_route("TopicA", false).unwrap();
    assert_eq!(route.filter_server_table["10.0.0.1:10911"], vec!["10.0.0.1:9999".to_owned()]);
    let group = manager.broker_member_group(CLUSTER, "broker-a");
    assert_eq!(group.broker_addrs, BTreeMap::from([(0, "10.0.0.1:10911".to_owned())]));
    assert!(manager.broker_member_group(CLUSTER, "nobody").broker_addrs.is_empty());
}

#[test]
fn delete_topics_with_registration_when_enabled() {
    let mut manager = RouteInfoManager::default();
    register(&mut manager, registration("broker-a", 0, "10.0.0.1:10911", &two_topics()), 0);
    let mut fewer =
        registration("broker-a", 0, "10.0.0.1:10911", &[topic("TBW102", 8), topic("C", 1)]);
    fewer.topic_config_wrapper.data_version.counter = 2;
    assert!(matches!(manager.register_broker(fewer, true, 1), RegisterOutcome::Registered(_)));
    assert!(manager.pickup_topic_route("TopicA", false).is_none());
    assert!(manager.pickup_topic_route("C", false).is_some());
}

#[test]
fn zone_filter_keeps_own_zone_and_masterless_groups() {
    let mut manager = RouteInfoManager::default();
    let zoned = |name: &str, id: i64, addr: &str, zone: &str| {
        let mut registration = registration(name, id, addr, &two_topics());
        registration.zone_name = Some(zone.to_owned());
        registration.filter_server_list = Some(vec![format!("{addr}-filter")]);
        registration
    };
    register(&mut manager, zoned("near", 0, "10.0.0.1:10911", "zone-a"), 0);
    register(&mut manager, zoned("far", 0, "10.0.1.1:10911", "zone-b"), 0);
    register(&mut manager, zoned("headless", 0, "10.0.2.1:10911", "zone-b"), 0);
    register(&mut manager, zoned("headless", 1, "10.0.2.2:10911", "zone-b"), 0);
    manager.on_connection_closed(100);
    // Connection 100 carried every master (id 0): only "headless" keeps a member.
    register(&mut manager, zoned("near", 0, "10.0.0.1:10911", "zone-a"), 0);
    register(&mut manager, zoned("far", 0, "10.0.1.1:10911", "zone-b"), 0);
    let mut route = manager.pickup_topic_route("TopicA", false).unwrap();
    assert_eq!(route.broker_datas.len(), 3);
    filter_route_by_zone(&mut route, "ZONE-A");
    let names: Vec<_> = route.broker_datas.iter().map(|data| data.broker_name.as_str()).collect();
    assert_eq!(names, vec!["headless", "near"]);
    let queues: Vec<_> = route.queue_datas.iter().map(|queue| queue.broker_name.as_str()).collect();
    assert_eq!(queues, vec!["headless", "near"]);
    assert!(!route.filter_server_table.contains_key("10.0.1.1:10911"));
    assert!(route.filter_server_table.contains_key("10.0.0.1:10911"));
}
