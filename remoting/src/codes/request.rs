//! Request codes: the complete 5.x table plus the 4.9-only codes (spec §6.4).

use super::code_table;

code_table! {
    /// A request code (`RequestCode.java`), e.g. `RequestCode::SEND_MESSAGE`.
    RequestCode {
        /// Send, long-name header (§8.1).
        SEND_MESSAGE = 10,
        /// Pull / long-poll (§8.2).
        PULL_MESSAGE = 11,
        /// Query by key via the index (§8.3).
        QUERY_MESSAGE = 12,
        QUERY_BROKER_OFFSET = 13,
        /// Read a committed consumer offset (§8.5).
        QUERY_CONSUMER_OFFSET = 14,
        /// Commit a consumer offset, usually oneway (§8.6).
        UPDATE_CONSUMER_OFFSET = 15,
        /// Create or update a topic (§8.16).
        UPDATE_AND_CREATE_TOPIC = 17,
        /// [5.x]
        UPDATE_AND_CREATE_TOPIC_LIST = 18,
        GET_ALL_TOPIC_CONFIG = 21,
        GET_TOPIC_CONFIG_LIST = 22,
        GET_TOPIC_NAME_LIST = 23,
        UPDATE_BROKER_CONFIG = 25,
        GET_BROKER_CONFIG = 26,
        TRIGGER_DELETE_FILES = 27,
        GET_BROKER_RUNTIME_INFO = 28,
        SEARCH_OFFSET_BY_TIMESTAMP = 29,
        GET_MAX_OFFSET = 30,
        GET_MIN_OFFSET = 31,
        GET_EARLIEST_MSG_STORETIME = 32,
        VIEW_MESSAGE_BY_ID = 33,
        /// Client heartbeat; body HeartbeatData (§8.8).
        HEART_BEAT = 34,
        UNREGISTER_CLIENT = 35,
        CONSUMER_SEND_MSG_BACK = 36,
        END_TRANSACTION = 37,
        GET_CONSUMER_LIST_BY_GROUP = 38,
        /// Broker → producer, oneway.
        CHECK_TRANSACTION_STATE = 39,
        /// Broker → consumer, oneway.
        NOTIFY_CONSUMER_IDS_CHANGED = 40,
        LOCK_BATCH_MQ = 41,
        UNLOCK_BATCH_MQ = 42,
        GET_ALL_CONSUMER_OFFSET = 43,
        GET_ALL_DELAY_OFFSET = 45,
        CHECK_CLIENT_CONFIG = 46,
        /// [5.x]
        GET_CLIENT_CONFIG = 47,
        /// [4.9]
        UPDATE_AND_CREATE_ACL_CONFIG = 50,
        /// [4.9]
        DELETE_ACL_CONFIG = 51,
        /// [4.9]
        GET_BROKER_CLUSTER_ACL_INFO = 52,
        /// [4.9]
        UPDATE_GLOBAL_WHITE_ADDRS_CONFIG = 53,
        /// Deprecated.
        GET_BROKER_CLUSTER_ACL_CONFIG = 54,
        /// [5.x]
        GET_TIMER_CHECK_POINT = 60,
        /// [5.x]
        GET_TIMER_METRICS = 61,
        PUT_KV_CONFIG = 100,
        GET_KV_CONFIG = 101,
        DELETE_KV_CONFIG = 102,
        REGISTER_BROKER = 103,
        UNREGISTER_BROKER = 104,
        GET_ROUTEINFO_BY_TOPIC = 105,
        GET_BROKER_CLUSTER_INFO = 106,
        UPDATE_AND_CREATE_SUBSCRIPTIONGROUP = 200,
        GET_ALL_SUBSCRIPTIONGROUP_CONFIG = 201,
        GET_TOPIC_STATS_INFO = 202,
        GET_CONSUMER_CONNECTION_LIST = 203,
        GET_PRODUCER_CONNECTION_LIST = 204,
        WIPE_WRITE_PERM_OF_BROKER = 205,
        GET_ALL_TOPIC_LIST_FROM_NAMESERVER = 206,
        DELETE_SUBSCRIPTIONGROUP = 207,
        GET_CONSUME_STATS = 208,
        SUSPEND_CONSUMER = 209,
        RESUME_CONSUMER = 210,
        RESET_CONSUMER_OFFSET_IN_CONSUMER = 211,
        RESET_CONSUMER_OFFSET_IN_BROKER = 212,
        ADJUST_CONSUMER_THREAD_POOL = 213,
        WHO_CONSUME_THE_MESSAGE = 214,
        DELETE_TOPIC_IN_BROKER = 215,
        DELETE_TOPIC_IN_NAMESRV = 216,
        /// [5.x]
        REGISTER_TOPIC_IN_NAMESRV = 217,
        GET_KVLIST_BY_NAMESPACE = 219,
        RESET_CONSUMER_CLIENT_OFFSET = 220,
        GET_CONSUMER_STATUS_FROM_CLIENT = 221,
        INVOKE_BROKER_TO_RESET_OFFSET = 222,
        INVOKE_BROKER_TO_GET_CONSUMER_STATUS = 223,
        GET_TOPICS_BY_CLUSTER = 224,
        /// [5.x]
        UPDATE_AND_CREATE_SUBSCRIPTIONGROUP_LIST = 225,
        QUERY_TOPIC_CONSUME_BY_WHO = 300,
        REGISTER_FILTER_SERVER = 301,
        REGISTER_MESSAGE_FILTER_CLASS = 302,
        QUERY_CONSUME_TIME_SPAN = 303,
        GET_SYSTEM_TOPIC_LIST_FROM_NS = 304,
        GET_SYSTEM_TOPIC_LIST_FROM_BROKER = 305,
        CLEAN_EXPIRED_CONSUMEQUEUE = 306,
        GET_CONSUMER_RUNNING_INFO = 307,
        QUERY_CORRECTION_OFFSET = 308,
        CONSUME_MESSAGE_DIRECTLY = 309,
        /// Send, one-letter header `a..n` (Java default).
        SEND_MESSAGE_V2 = 310,
        GET_UNIT_TOPIC_LIST = 311,
        GET_HAS_UNIT_SUB_TOPIC_LIST = 312,
        GET_HAS_UNIT_SUB_UNUNIT_TOPIC_LIST = 313,
        CLONE_GROUP_OFFSET = 314,
        VIEW_BROKER_STATS_DATA = 315,
        CLEAN_UNUSED_TOPIC = 316,
        GET_BROKER_CONSUME_STATS = 317,
        UPDATE_NAMESRV_CONFIG = 318,
        GET_NAMESRV_CONFIG = 319,
        /// Batch send, V2 header with `m=true`.
        SEND_BATCH_MESSAGE = 320,
        QUERY_CONSUME_QUEUE = 321,
        QUERY_DATA_VERSION = 322,
        RESUME_CHECK_HALF_MESSAGE = 323,
        SEND_REPLY_MESSAGE = 324,
        SEND_REPLY_MESSAGE_V2 = 325,
        PUSH_REPLY_MESSAGE_TO_CLIENT = 326,
        ADD_WRITE_PERM_OF_BROKER = 327,
        GET_ALL_PRODUCER_INFO = 328,
        DELETE_EXPIRED_COMMITLOG = 329,
        /// [5.x]
        QUERY_TOPICS_BY_CONSUMER = 343,
        /// [5.x]
        QUERY_SUBSCRIPTION_BY_CONSUMER = 345,
        /// [5.x]
        GET_TOPIC_CONFIG = 351,
        /// [5.x]
        GET_SUBSCRIPTIONGROUP_CONFIG = 352,
        /// [5.x]
        UPDATE_AND_GET_GROUP_FORBIDDEN = 353,
        /// [5.x]
        CHECK_ROCKSDB_CQ_WRITE_PROGRESS = 354,
        /// [5.x]
        EXPORT_ROCKSDB_CONFIG_TO_JSON = 355,
        /// [5.x] Same as PULL_MESSAGE for lite pull consumers.
        LITE_PULL_MESSAGE = 361,
        /// [5.x]
        RECALL_MESSAGE = 370,
        /// [5.x]
        QUERY_ASSIGNMENT = 400,
        /// [5.x]
        SET_MESSAGE_REQUEST_MODE = 401,
        /// [5.x]
        GET_ALL_MESSAGE_REQUEST_MODE = 402,
        /// [5.x]
        UPDATE_AND_CREATE_STATIC_TOPIC = 513,
        /// [5.x]
        GET_BROKER_MEMBER_GROUP = 901,
        /// [5.x]
        ADD_BROKER = 902,
        /// [5.x]
        REMOVE_BROKER = 903,
        /// [5.x] Broker liveness to the name server (§11.4).
        BROKER_HEARTBEAT = 904,
        /// [5.x]
        NOTIFY_MIN_BROKER_ID_CHANGE = 905,
        /// [5.x]
        EXCHANGE_BROKER_HA_INFO = 906,
        /// [5.x]
        GET_BROKER_HA_STATUS = 907,
        /// [5.x]
        RESET_MASTER_FLUSH_OFFSET = 908,
        /// [5.x] Controller.
        CONTROLLER_ALTER_SYNC_STATE_SET = 1001,
        CONTROLLER_ELECT_MASTER = 1002,
        CONTROLLER_REGISTER_BROKER = 1003,
        CONTROLLER_GET_REPLICA_INFO = 1004,
        CONTROLLER_GET_METADATA_INFO = 1005,
        CONTROLLER_GET_SYNC_STATE_DATA = 1006,
        GET_BROKER_EPOCH_CACHE = 1007,
        NOTIFY_BROKER_ROLE_CHANGED = 1008,
        UPDATE_CONTROLLER_CONFIG = 1009,
        GET_CONTROLLER_CONFIG = 1010,
        CLEAN_BROKER_DATA = 1011,
        CONTROLLER_GET_NEXT_BROKER_ID = 1012,
        CONTROLLER_APPLY_BROKER_ID = 1013,
        BROKER_CLOSE_CHANNEL_REQUEST = 1014,
        CHECK_NOT_ACTIVE_BROKER_REQUEST = 1015,
        GET_BROKER_LIVE_INFO_REQUEST = 1016,
        GET_SYNC_STATE_DATA_REQUEST = 1017,
        RAFT_BROKER_HEART_BEAT_EVENT_REQUEST = 1018,
        /// [5.x] Cold-data flow control.
        UPDATE_COLD_DATA_FLOW_CTR_CONFIG = 2001,
        REMOVE_COLD_DATA_FLOW_CTR_CONFIG = 2002,
        GET_COLD_DATA_FLOW_CTR_INFO = 2003,
        SET_COMMITLOG_READ_MODE = 2004,
        /// [5.x] Authentication and authorization.
        AUTH_CREATE_USER = 3001,
        AUTH_UPDATE_USER = 3002,
        AUTH_DELETE_USER = 3003,
        AUTH_GET_USER = 3004,
        AUTH_LIST_USER = 3005,
        AUTH_CREATE_ACL = 3006,
        AUTH_UPDATE_ACL = 3007,
        AUTH_DELETE_ACL = 3008,
        AUTH_GET_ACL = 3009,
        AUTH_LIST_ACL = 3010,
        /// [5.x] POP consumption; does not fit a binary header's i16.
        POP_MESSAGE = 200050,
        ACK_MESSAGE = 200051,
        PEEK_MESSAGE = 200052,
        CHANGE_MESSAGE_INVISIBLETIME = 200053,
        NOTIFICATION = 200054,
        POLLING_INFO = 200055,
        POP_ROLLBACK = 200056,
        BATCH_ACK_MESSAGE = 200151,
    }
}
