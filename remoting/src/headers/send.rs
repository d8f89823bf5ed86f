//! SEND_MESSAGE (10), SEND_MESSAGE_V2 (310), SEND_BATCH_MESSAGE (320) headers (spec §8.1).

use super::{CommandHeader, command_header};
use crate::codes::RequestCode;
use crate::error::Result;
use crate::ext_fields::ExtFields;

command_header! {
    /// `SendMessageRequestHeader`: long names, sent with code 10 (Go, C++, Rust clients).
    pub struct SendMessageRequestHeader {
        req producer_group: String = "producerGroup",
        req topic: String = "topic",
        /// Template topic for auto-creation, normally `TBW102`.
        req default_topic: String = "defaultTopic",
        req default_topic_queue_nums: i32 = "defaultTopicQueueNums",
        /// Target queue; negative means "broker picks".
        req queue_id: i32 = "queueId",
        req sys_flag: i32 = "sysFlag",
        req born_timestamp: i64 = "bornTimestamp",
        /// `Message.flag`.
        req flag: i32 = "flag",
        /// Properties string (0x01/0x02 separators).
        opt properties: String = "properties",
        opt reconsume_times: i32 = "reconsumeTimes",
        opt unit_mode: bool = "unitMode",
        opt batch: bool = "batch",
        opt max_reconsume_times: i32 = "maxReconsumeTimes",
        /// Target broker name.
        opt broker_name: String = "bname",
    }
}

command_header! {
    /// `SendMessageRequestHeaderV2`: the same fields under one-letter names, sent with codes
    /// 310 and 320 (Java default). Convert with `From` both ways.
    pub struct SendMessageRequestHeaderV2 {
        req a: String = "a",
        req b: String = "b",
        req c: String = "c",
        req d: i32 = "d",
        req e: i32 = "e",
        req f: i32 = "f",
        req g: i64 = "g",
        req h: i32 = "h",
        opt i: String = "i",
        opt j: i32 = "j",
        opt k: bool = "k",
        opt l: i32 = "l",
        opt m: bool = "m",
        opt n: String = "n",
    }
}

command_header! {
    /// `SendMessageResponseHeader`. A send response must also carry `MSG_REGION` and
    /// `TRACE_ON` extFields (added by the broker, not part of this header).
    pub struct SendMessageResponseHeader {
        /// Offset message id; comma-separated for traditional batches.
        req msg_id: String = "msgId",
        req queue_id: i32 = "queueId",
        req queue_offset: i64 = "queueOffset",
        /// The message's `UNIQ_KEY`.
        opt transaction_id: String = "transactionId",
        opt batch_uniq_id: String = "batchUniqId",
        opt recall_handle: String = "recallHandle",
    }
}

impl From<SendMessageRequestHeaderV2> for SendMessageRequestHeader {
    fn from(v2: SendMessageRequestHeaderV2) -> Self {
        Self {
            producer_group: v2.a,
            topic: v2.b,
            default_topic: v2.c,
            default_topic_queue_nums: v2.d,
            queue_id: v2.e,
            sys_flag: v2.f,
            born_timestamp: v2.g,
            flag: v2.h,
            properties: v2.i,
            reconsume_times: v2.j,
            unit_mode: v2.k,
            max_reconsume_times: v2.l,
            batch: v2.m,
            broker_name: v2.n,
        }
    }
}

impl From<SendMessageRequestHeader> for SendMessageRequestHeaderV2 {
    fn from(v1: SendMessageRequestHeader) -> Self {
        Self {
            a: v1.producer_group,
            b: v1.topic,
            c: v1.default_topic,
            d: v1.default_topic_queue_nums,
            e: v1.queue_id,
            f: v1.sys_flag,
            g: v1.born_timestamp,
            h: v1.flag,
            i: v1.properties,
            j: v1.reconsume_times,
            k: v1.unit_mode,
            l: v1.max_reconsume_times,
            m: v1.batch,
            n: v1.broker_name,
        }
    }
}

/// Reads a send request header the way the Java broker does: V2 (one-letter) names for
/// codes 310, 320 and 325, long names otherwise, always returned in long-name form.
///
/// # Errors
///
/// As [`CommandHeader::from_ext_fields`]; a V2 error names the one-letter key.
pub fn decode_send_request_header(
    code: i32,
    fields: &ExtFields,
) -> Result<SendMessageRequestHeader> {
    match RequestCode(code) {
        RequestCode::SEND_MESSAGE_V2
        | RequestCode::SEND_BATCH_MESSAGE
        | RequestCode::SEND_REPLY_MESSAGE_V2 => {
            SendMessageRequestHeaderV2::from_ext_fields(fields).map(Into::into)
        }
        _ => SendMessageRequestHeader::from_ext_fields(fields),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn fields(entries: &[(&str, &str)]) -> ExtFields {
        entries.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect()
    }

    #[test]
    fn v2_names_map_to_v1_fields() {
        let v2 = fields(&[
            ("a", "PID"),
            ("b", "T"),
            ("c", "TBW102"),
            ("d", "4"),
            ("e", "1"),
            ("f", "0"),
            ("g", "1795314130887"),
            ("h", "0"),
            ("i", "WAIT\u{1}true\u{2}"),
            ("m", "true"),
            ("n", "broker-a"),
        ]);
        let header = decode_send_request_header(320, &v2).unwrap();
        assert_eq!(header.producer_group, "PID");
        assert_eq!(header.queue_id, 1);
        assert_eq!(header.born_timestamp, 1_795_314_130_887);
        assert_eq!(header.batch, Some(true));
        assert_eq!(header.broker_name.as_deref(), Some("broker-a"));
        let mut back = ExtFields::new();
        SendMessageRequestHeaderV2::from(header).to_ext_fields(&mut back);
        assert_eq!(back, v2);
    }

    #[test]
    fn missing_v1_field_is_named() {
        let v1 = fields(&[("producerGroup", "PID"), ("topic", "T")]);
        assert_eq!(
            decode_send_request_header(10, &v1).unwrap_err(),
            Error::MissingField { field: "defaultTopic".to_owned() }
        );
    }
}
