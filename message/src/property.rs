//! Property names (Java `MessageConst`, storage.md §4.2).
//!
//! Rust names drop Java's `PROPERTY_` prefix: `PROPERTY_WAIT_STORE_MSG_OK` is [`WAIT`],
//! `PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX` is [`UNIQ_KEY`]. Where the Java name differs from
//! the value, the doc comment gives the Java name.

/// Space-separated business keys; each one is indexed (storage.md §9).
pub const KEYS: &str = "KEYS";
/// Tag string; tagsCode is its Java `String.hashCode`.
pub const TAGS: &str = "TAGS";
/// "Wait store msg ok": absent means true; otherwise only case-insensitive "true" is true.
/// Java `PROPERTY_WAIT_STORE_MSG_OK`.
pub const WAIT: &str = "WAIT";
/// Delay level (decimal). Java `PROPERTY_DELAY_TIME_LEVEL`.
pub const DELAY: &str = "DELAY";
/// Original topic of a retried message.
pub const RETRY_TOPIC: &str = "RETRY_TOPIC";
/// Original topic saved when a message is redirected (delay, transaction half, timer).
pub const REAL_TOPIC: &str = "REAL_TOPIC";
/// Original queue id saved on redirect. Java `PROPERTY_REAL_QUEUE_ID`.
pub const REAL_QID: &str = "REAL_QID";
/// "true" for transactional half messages. Java `PROPERTY_TRANSACTION_PREPARED`.
pub const TRAN_MSG: &str = "TRAN_MSG";
/// Producer group (transactions). Java `PROPERTY_PRODUCER_GROUP`.
pub const PGROUP: &str = "PGROUP";
/// Queue min offset, added client-side after a pull.
pub const MIN_OFFSET: &str = "MIN_OFFSET";
/// Queue max offset, added client-side after a pull.
pub const MAX_OFFSET: &str = "MAX_OFFSET";
/// Java `PROPERTY_BUYER_ID`.
pub const BUYER_ID: &str = "BUYER_ID";
/// msgId of the original message (retry).
pub const ORIGIN_MESSAGE_ID: &str = "ORIGIN_MESSAGE_ID";
/// Java `PROPERTY_TRANSFER_FLAG`.
pub const TRANSFER_FLAG: &str = "TRANSFER_FLAG";
/// Java `PROPERTY_CORRECTION_FLAG`.
pub const CORRECTION_FLAG: &str = "CORRECTION_FLAG";
/// Java `PROPERTY_MQ2_FLAG`.
pub const MQ2_FLAG: &str = "MQ2_FLAG";
/// Reconsume count carried by retried messages.
pub const RECONSUME_TIME: &str = "RECONSUME_TIME";
/// Region id; also a send-response extField.
pub const MSG_REGION: &str = "MSG_REGION";
/// Trace switch; also a send-response extField. Java `PROPERTY_TRACE_SWITCH`.
pub const TRACE_ON: &str = "TRACE_ON";
/// Client-generated unique id (storage.md §6.2); indexed. Java
/// `PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX`.
pub const UNIQ_KEY: &str = "UNIQ_KEY";
/// Java `PROPERTY_EXTEND_UNIQ_INFO`.
pub const EXTEND_UNIQ_INFO: &str = "EXTEND_UNIQ_INFO";
/// Maximum reconsume count before the DLQ.
pub const MAX_RECONSUME_TIMES: &str = "MAX_RECONSUME_TIMES";
/// Java `PROPERTY_CONSUME_START_TIMESTAMP`.
pub const CONSUME_START_TIME: &str = "CONSUME_START_TIME";
/// [5.x] Inner-batch message count.
pub const INNER_NUM: &str = "INNER_NUM";
/// [5.x] Inner-batch base queue offset.
pub const INNER_BASE: &str = "INNER_BASE";
/// Duplication mode only.
pub const DUP_INFO: &str = "DUP_INFO";
/// Transaction check immunity, in seconds.
pub const CHECK_IMMUNITY_TIME_IN_SECONDS: &str = "CHECK_IMMUNITY_TIME_IN_SECONDS";
/// Java `PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET`.
pub const TRANSACTION_PREPARED_QUEUE_OFFSET: &str = "TRAN_PREPARED_QUEUE_OFFSET";
/// Transaction id. Java `PROPERTY_TRANSACTION_ID`.
pub const TRANSACTION_ID: &str = "__transactionId__";
/// Transaction check count.
pub const TRANSACTION_CHECK_TIMES: &str = "TRANSACTION_CHECK_TIMES";
/// Java `PROPERTY_INSTANCE_ID`.
pub const INSTANCE_ID: &str = "INSTANCE_ID";
/// Request/reply correlation id.
pub const CORRELATION_ID: &str = "CORRELATION_ID";
/// Request/reply: client to reply to. Java `PROPERTY_MESSAGE_REPLY_TO_CLIENT`.
pub const REPLY_TO_CLIENT: &str = "REPLY_TO_CLIENT";
/// Request/reply time-to-live. Java `PROPERTY_MESSAGE_TTL`.
pub const TTL: &str = "TTL";
/// Request/reply arrive time. Java `PROPERTY_REPLY_MESSAGE_ARRIVE_TIME`.
pub const ARRIVE_TIME: &str = "ARRIVE_TIME";
/// Request/reply push time.
pub const PUSH_REPLY_TIME: &str = "PUSH_REPLY_TIME";
/// Broker cluster name, added by the broker on every send.
pub const CLUSTER: &str = "CLUSTER";
/// Message type (`reply` for reply messages). Java `PROPERTY_MESSAGE_TYPE`.
pub const MSG_TYPE: &str = "MSG_TYPE";
/// [5.x] Pop checkpoint; stripped by the broker on send.
pub const POP_CK: &str = "POP_CK";
/// [5.x] Pop checkpoint offset.
pub const POP_CK_OFFSET: &str = "POP_CK_OFFSET";
/// [5.x] First pop time. Java `PROPERTY_FIRST_POP_TIME`.
pub const FIRST_POP_TIME: &str = "1ST_POP_TIME";
/// Java `PROPERTY_SHARDING_KEY`.
pub const SHARDING_KEY: &str = "__SHARDINGKEY";
/// Java `PROPERTY_FORWARD_QUEUE_ID`.
pub const FORWARD_QUEUE_ID: &str = "PROPERTY_FORWARD_QUEUE_ID";
/// Java `PROPERTY_REDIRECT`.
pub const REDIRECT: &str = "REDIRECT";
/// LMQ fan-out queues, `,`-separated.
pub const INNER_MULTI_DISPATCH: &str = "INNER_MULTI_DISPATCH";
/// LMQ fan-out queue offsets, `,`-separated.
pub const INNER_MULTI_QUEUE_OFFSET: &str = "INNER_MULTI_QUEUE_OFFSET";
/// Java `PROPERTY_TRACE_CONTEXT`.
pub const TRACE_CONTEXT: &str = "TRACE_CONTEXT";
/// [5.x] Timer message delay, seconds.
pub const TIMER_DELAY_SEC: &str = "TIMER_DELAY_SEC";
/// [5.x] Timer message delivery time, ms since the epoch.
pub const TIMER_DELIVER_MS: &str = "TIMER_DELIVER_MS";
/// [5.x] Java `PROPERTY_BORN_HOST`.
pub const BORN_HOST: &str = "__BORNHOST";
/// [5.x] Java `PROPERTY_BORN_TIMESTAMP`.
pub const BORN_TIMESTAMP: &str = "BORN_TIMESTAMP";
/// [5.x] Timer enqueue time, ms.
pub const TIMER_ENQUEUE_MS: &str = "TIMER_ENQUEUE_MS";
/// [5.x] Timer dequeue time, ms.
pub const TIMER_DEQUEUE_MS: &str = "TIMER_DEQUEUE_MS";
/// [5.x] Timer roll count.
pub const TIMER_ROLL_TIMES: &str = "TIMER_ROLL_TIMES";
/// [5.x] Timer timeout, ms.
pub const TIMER_OUT_MS: &str = "TIMER_OUT_MS";
/// [5.x] Timer deletion of a unique key.
pub const TIMER_DEL_UNIQKEY: &str = "TIMER_DEL_UNIQKEY";
/// [5.x] Timer deletion time, ms.
pub const TIMER_DEL_MS: &str = "TIMER_DEL_MS";
/// [5.x] Timer delay level.
pub const TIMER_DELAY_LEVEL: &str = "TIMER_DELAY_LEVEL";
/// [5.x] Timer message delay, ms.
pub const TIMER_DELAY_MS: &str = "TIMER_DELAY_MS";
/// [5.x] Record CRC property (storage.md §4.3). Java `PROPERTY_CRC32`.
pub const CRC32: &str = "__CRC32#";
/// [5.x] DLQ: topic the message came from.
pub const DLQ_ORIGIN_TOPIC: &str = "DLQ_ORIGIN_TOPIC";
/// [5.x] DLQ: msgId of the message it came from.
pub const DLQ_ORIGIN_MESSAGE_ID: &str = "DLQ_ORIGIN_MESSAGE_ID";

/// Properties whose name starts with this prefix are transient: never stored by the broker.
pub const TRANSIENT_PREFIX: &str = "__RMQ.TRANSIENT.";
/// Transient: the topic's sysflag, set by the client when pulling.
pub const TRANSIENT_TOPIC_CONFIG: &str = "__RMQ.TRANSIENT.TOPIC_SYS_FLAG";
/// Transient: the group's sysflag, set by the client when pulling.
pub const TRANSIENT_GROUP_CONFIG: &str = "__RMQ.TRANSIENT.GROUP_SYS_FLAG";

/// Separator between the keys in [`KEYS`].
pub const KEY_SEPARATOR: &str = " ";

/// Names a Java client refuses as user properties (`MessageConst.STRING_HASH_SET`).
pub const RESERVED: &[&str] = &[
    TRACE_ON,
    MSG_REGION,
    KEYS,
    TAGS,
    WAIT,
    DELAY,
    RETRY_TOPIC,
    REAL_TOPIC,
    REAL_QID,
    TRAN_MSG,
    PGROUP,
    MIN_OFFSET,
    MAX_OFFSET,
    BUYER_ID,
    ORIGIN_MESSAGE_ID,
    TRANSFER_FLAG,
    CORRECTION_FLAG,
    MQ2_FLAG,
    RECONSUME_TIME,
    UNIQ_KEY,
    MAX_RECONSUME_TIMES,
    CONSUME_START_TIME,
    POP_CK,
    POP_CK_OFFSET,
    FIRST_POP_TIME,
    TRANSACTION_PREPARED_QUEUE_OFFSET,
    DUP_INFO,
    EXTEND_UNIQ_INFO,
    INSTANCE_ID,
    CORRELATION_ID,
    REPLY_TO_CLIENT,
    TTL,
    ARRIVE_TIME,
    PUSH_REPLY_TIME,
    CLUSTER,
    MSG_TYPE,
    INNER_MULTI_QUEUE_OFFSET,
    TIMER_DELAY_MS,
    TIMER_DELAY_SEC,
    TIMER_DELIVER_MS,
    TIMER_ENQUEUE_MS,
    TIMER_DEQUEUE_MS,
    TIMER_ROLL_TIMES,
    TIMER_OUT_MS,
    TIMER_DEL_UNIQKEY,
    TIMER_DEL_MS,
    TIMER_DELAY_LEVEL,
    BORN_HOST,
    BORN_TIMESTAMP,
    DLQ_ORIGIN_TOPIC,
    DLQ_ORIGIN_MESSAGE_ID,
    CRC32,
];

/// True when `name` is in [`RESERVED`].
#[must_use]
pub fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name)
}

/// True when `name` is transient (starts with [`TRANSIENT_PREFIX`]).
#[must_use]
pub fn is_transient(name: &str) -> bool {
    name.starts_with(TRANSIENT_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_names_are_built_from_the_prefix() {
        assert!(is_transient(TRANSIENT_TOPIC_CONFIG));
        assert!(is_transient(TRANSIENT_GROUP_CONFIG));
        assert!(!is_transient(TAGS));
    }

    #[test]
    fn reserved_set_matches_java_membership() {
        assert!(is_reserved(UNIQ_KEY));
        assert!(is_reserved(CRC32));
        // Java leaves these out of STRING_HASH_SET, so users may set them.
        assert!(!is_reserved(TRANSACTION_ID));
        assert!(!is_reserved(INNER_NUM));
        assert!(!is_reserved("my_key"));
    }
}
