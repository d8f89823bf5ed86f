//! Name-server headers (spec §6.3, §11).

use super::command_header;

command_header! {
    /// `RegisterBrokerRequestHeader` (103). Optional extField `__ZONE_NAME` is read separately.
    pub struct RegisterBrokerRequestHeader {
        req broker_name: String = "brokerName",
        /// `brokerIP1:listenPort`.
        req broker_addr: String = "brokerAddr",
        req cluster_name: String = "clusterName",
        /// `brokerIP2:haListenPort`.
        req ha_server_addr: String = "haServerAddr",
        req broker_id: i64 = "brokerId",
        /// [5.x]
        opt heartbeat_timeout_millis: i64 = "heartbeatTimeoutMillis",
        /// [5.x]
        opt enable_acting_master: bool = "enableActingMaster",
        /// Java primitive, default false.
        opt compressed: bool = "compressed",
        /// 0 = not checked.
        opt body_crc32: i32 = "bodyCrc32",
    }
}

command_header! {
    /// `RegisterBrokerResponseHeader`; both set only for a slave whose master is live.
    pub struct RegisterBrokerResponseHeader {
        opt ha_server_addr: String = "haServerAddr",
        opt master_addr: String = "masterAddr",
    }
}

command_header! {
    /// `UnRegisterBrokerRequestHeader` (104).
    pub struct UnregisterBrokerRequestHeader {
        req broker_name: String = "brokerName",
        req broker_addr: String = "brokerAddr",
        req cluster_name: String = "clusterName",
        req broker_id: i64 = "brokerId",
    }
}

command_header! {
    /// `QueryDataVersionRequestHeader` (322); body is the broker's DataVersion.
    pub struct QueryDataVersionRequestHeader {
        req broker_name: String = "brokerName",
        req broker_addr: String = "brokerAddr",
        req cluster_name: String = "clusterName",
        req broker_id: i64 = "brokerId",
    }
}

command_header! {
    /// `QueryDataVersionResponseHeader`.
    pub struct QueryDataVersionResponseHeader {
        req changed: bool = "changed",
    }
}

command_header! {
    /// `BrokerHeartbeatRequestHeader` (904, 5.x).
    pub struct BrokerHeartbeatRequestHeader {
        req cluster_name: String = "clusterName",
        req broker_addr: String = "brokerAddr",
        req broker_name: String = "brokerName",
        opt broker_id: i64 = "brokerId",
        opt epoch: i32 = "epoch",
        opt max_offset: i64 = "maxOffset",
        opt confirm_offset: i64 = "confirmOffset",
        /// (sic) Java's spelling.
        opt heartbeat_timeout_mills: i64 = "heartbeatTimeoutMills",
        opt election_priority: i32 = "electionPriority",
    }
}

command_header! {
    /// `GetRouteInfoRequestHeader` (105).
    pub struct GetRouteInfoRequestHeader {
        req topic: String = "topic",
        /// Ask for standard JSON (quoted numeric keys) regardless of version.
        opt accept_standard_json_only: bool = "acceptStandardJsonOnly",
    }
}

command_header! {
    /// `PutKVConfigRequestHeader` (100).
    pub struct PutKvConfigRequestHeader {
        req namespace: String = "namespace",
        req key: String = "key",
        req value: String = "value",
    }
}

command_header! {
    /// `GetKVConfigRequestHeader` (101).
    pub struct GetKvConfigRequestHeader {
        req namespace: String = "namespace",
        req key: String = "key",
    }
}

command_header! {
    /// `GetKVConfigResponseHeader`.
    pub struct GetKvConfigResponseHeader {
        opt value: String = "value",
    }
}

command_header! {
    /// `DeleteKVConfigRequestHeader` (102).
    pub struct DeleteKvConfigRequestHeader {
        req namespace: String = "namespace",
        req key: String = "key",
    }
}

command_header! {
    /// `GetKVListByNamespaceRequestHeader` (219).
    pub struct GetKvListByNamespaceRequestHeader {
        req namespace: String = "namespace",
    }
}

command_header! {
    /// `DeleteTopicFromNamesrvRequestHeader` (216).
    pub struct DeleteTopicFromNamesrvRequestHeader {
        req topic: String = "topic",
        /// [5.x]
        opt cluster_name: String = "clusterName",
    }
}

command_header! {
    /// `GetTopicsByClusterRequestHeader` (224).
    pub struct GetTopicsByClusterRequestHeader {
        req cluster: String = "cluster",
    }
}

command_header! {
    /// `WipeWritePermOfBrokerRequestHeader` (205).
    pub struct WipeWritePermOfBrokerRequestHeader {
        req broker_name: String = "brokerName",
    }
}

command_header! {
    /// `WipeWritePermOfBrokerResponseHeader`.
    pub struct WipeWritePermOfBrokerResponseHeader {
        req wipe_topic_count: i32 = "wipeTopicCount",
    }
}

command_header! {
    /// `AddWritePermOfBrokerRequestHeader` (327).
    pub struct AddWritePermOfBrokerRequestHeader {
        req broker_name: String = "brokerName",
    }
}

command_header! {
    /// `AddWritePermOfBrokerResponseHeader`.
    pub struct AddWritePermOfBrokerResponseHeader {
        req add_topic_count: i32 = "addTopicCount",
    }
}

command_header! {
    /// `RegisterTopicRequestHeader` (217, 5.x); body is TopicRouteData.
    pub struct RegisterTopicRequestHeader {
        req topic: String = "topic",
    }
}

command_header! {
    /// `GetBrokerMemberGroupRequestHeader` (901, 5.x).
    pub struct GetBrokerMemberGroupRequestHeader {
        req cluster_name: String = "clusterName",
        req broker_name: String = "brokerName",
    }
}
