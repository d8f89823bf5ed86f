//! QUERY_MESSAGE (12) and VIEW_MESSAGE_BY_ID (33) headers (spec §8.3, §8.4).

use super::command_header;

command_header! {
    /// `QueryMessageRequestHeader`. The extField `_UNIQUE_KEY_QUERY=true` (not part of the
    /// header) switches to a unique-key lookup.
    pub struct QueryMessageRequestHeader {
        req topic: String = "topic",
        req key: String = "key",
        req max_num: i32 = "maxNum",
        req begin_timestamp: i64 = "beginTimestamp",
        req end_timestamp: i64 = "endTimestamp",
    }
}

command_header! {
    /// `QueryMessageResponseHeader`.
    pub struct QueryMessageResponseHeader {
        req index_last_update_timestamp: i64 = "indexLastUpdateTimestamp",
        req index_last_update_phyoffset: i64 = "indexLastUpdatePhyoffset",
    }
}

command_header! {
    /// `ViewMessageRequestHeader`: fetch one record by commit-log offset.
    pub struct ViewMessageRequestHeader {
        req offset: i64 = "offset",
        /// [5.x]
        opt topic: String = "topic",
    }
}
