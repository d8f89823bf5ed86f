//! Client-management, retry, transaction and topic-admin headers (spec §8.9–§8.16).

use super::command_header;

command_header! {
    /// `UnregisterClientRequestHeader` (35).
    pub struct UnregisterClientRequestHeader {
        req client_id: String = "clientID",
        opt producer_group: String = "producerGroup",
        opt consumer_group: String = "consumerGroup",
    }
}

command_header! {
    /// `GetConsumerListByGroupRequestHeader` (38).
    pub struct GetConsumerListByGroupRequestHeader {
        req consumer_group: String = "consumerGroup",
    }
}

command_header! {
    /// `NotifyConsumerIdsChangedRequestHeader` (40, broker → client, oneway).
    pub struct NotifyConsumerIdsChangedRequestHeader {
        req consumer_group: String = "consumerGroup",
    }
}

command_header! {
    /// `ConsumerSendMsgBackRequestHeader` (36).
    pub struct ConsumerSendMsgBackRequestHeader {
        /// Commit-log physical offset of the failed message.
        req offset: i64 = "offset",
        req group: String = "group",
        req delay_level: i32 = "delayLevel",
        opt origin_msg_id: String = "originMsgId",
        opt origin_topic: String = "originTopic",
        /// Java primitive, default false.
        opt unit_mode: bool = "unitMode",
        opt max_reconsume_times: i32 = "maxReconsumeTimes",
    }
}

command_header! {
    /// `EndTransactionRequestHeader` (37, oneway).
    pub struct EndTransactionRequestHeader {
        req producer_group: String = "producerGroup",
        /// Queue offset of the half message.
        req tran_state_table_offset: i64 = "tranStateTableOffset",
        /// Physical offset of the half message.
        req commit_log_offset: i64 = "commitLogOffset",
        /// 0 unknown, 8 commit, 12 rollback.
        req commit_or_rollback: i32 = "commitOrRollback",
        opt from_transaction_check: bool = "fromTransactionCheck",
        req msg_id: String = "msgId",
        opt transaction_id: String = "transactionId",
        /// [5.x]
        opt topic: String = "topic",
    }
}

command_header! {
    /// `CheckTransactionStateRequestHeader` (39, broker → producer, oneway).
    pub struct CheckTransactionStateRequestHeader {
        req tran_state_table_offset: i64 = "tranStateTableOffset",
        req commit_log_offset: i64 = "commitLogOffset",
        opt msg_id: String = "msgId",
        opt transaction_id: String = "transactionId",
        opt offset_msg_id: String = "offsetMsgId",
        /// [5.x]
        opt topic: String = "topic",
    }
}

command_header! {
    /// `CreateTopicRequestHeader` (17).
    pub struct CreateTopicRequestHeader {
        req topic: String = "topic",
        req default_topic: String = "defaultTopic",
        req read_queue_nums: i32 = "readQueueNums",
        req write_queue_nums: i32 = "writeQueueNums",
        req perm: i32 = "perm",
        /// `SINGLE_TAG` or `MULTI_TAG`.
        req topic_filter_type: String = "topicFilterType",
        opt topic_sys_flag: i32 = "topicSysFlag",
        req order: bool = "order",
        /// [5.x] attribute string, e.g. `+message.type=NORMAL`.
        opt attributes: String = "attributes",
        /// [5.x]
        opt force: bool = "force",
    }
}

command_header! {
    /// `DeleteTopicRequestHeader` (215, broker).
    pub struct DeleteTopicRequestHeader {
        req topic: String = "topic",
    }
}
