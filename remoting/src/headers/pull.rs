//! PULL_MESSAGE (11) / LITE_PULL_MESSAGE (361) headers (spec §8.2).

use super::command_header;

/// Bits of the pull request's `sysFlag` (`PullSysFlag`, spec §8.2.1).
pub mod pull_sys_flag {
    /// Also commit `commitOffset` for this group and queue.
    pub const COMMIT_OFFSET: i32 = 0x1;
    /// The broker may hold the request (long polling).
    pub const SUSPEND: i32 = 0x2;
    /// The request carries `subscription` / `expressionType`.
    pub const SUBSCRIPTION: i32 = 0x4;
    /// Legacy class-filter mode.
    pub const CLASS_FILTER: i32 = 0x8;
    /// [5.x] Lite pull.
    pub const LITE_PULL: i32 = 0x10;
}

command_header! {
    /// `PullMessageRequestHeader`.
    pub struct PullMessageRequestHeader {
        req consumer_group: String = "consumerGroup",
        req topic: String = "topic",
        req queue_id: i32 = "queueId",
        /// First logical offset wanted.
        req queue_offset: i64 = "queueOffset",
        req max_msg_nums: i32 = "maxMsgNums",
        /// [`pull_sys_flag`] bits.
        req sys_flag: i32 = "sysFlag",
        req commit_offset: i64 = "commitOffset",
        /// Longest the broker may hold the request, ms.
        req suspend_timeout_millis: i64 = "suspendTimeoutMillis",
        opt subscription: String = "subscription",
        req sub_version: i64 = "subVersion",
        /// `TAG` (default) or `SQL92`.
        opt expression_type: String = "expressionType",
        opt max_msg_bytes: i32 = "maxMsgBytes",
        opt request_source: i32 = "requestSource",
        /// (sic) Java's spelling.
        opt proxy_froward_client_id: String = "proxyFrowardClientId",
        opt broker_name: String = "bname",
    }
}

command_header! {
    /// `PullMessageResponseHeader`.
    pub struct PullMessageResponseHeader {
        req suggest_which_broker_id: i64 = "suggestWhichBrokerId",
        req next_begin_offset: i64 = "nextBeginOffset",
        req min_offset: i64 = "minOffset",
        /// Exclusive.
        req max_offset: i64 = "maxOffset",
        opt offset_delta: i64 = "offsetDelta",
        opt topic_sys_flag: i32 = "topicSysFlag",
        opt group_sys_flag: i32 = "groupSysFlag",
        /// NO_PERMISSION reason: 1 broker, 2 group, 3 topic, 4 broadcasting, 5 subscription.
        opt forbidden_type: i32 = "forbiddenType",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext_fields::ExtFields;
    use crate::headers::CommandHeader;

    #[test]
    fn response_header_writes_java_names() {
        let header = PullMessageResponseHeader {
            suggest_which_broker_id: 0,
            next_begin_offset: 32,
            min_offset: 0,
            max_offset: 100,
            ..PullMessageResponseHeader::default()
        };
        let mut fields = ExtFields::new();
        header.to_ext_fields(&mut fields);
        let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
        assert_eq!(keys, ["maxOffset", "minOffset", "nextBeginOffset", "suggestWhichBrokerId"]);
        assert_eq!(PullMessageResponseHeader::from_ext_fields(&fields).unwrap(), header);
    }
}
