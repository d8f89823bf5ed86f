//! The message model: [`Message`] (what a producer sends) and [`MessageExt`] (a stored message
//! as read back from a record).

use std::net::SocketAddr;

use bytes::Bytes;

use crate::error::Result;
use crate::msg_id::encode_offset_msg_id;
use crate::properties::{Properties, encode_properties, parse_properties};
use crate::record::{MessageVersion, RecordRef, encode_record};
use crate::{property, sysflag};

/// A message as a producer builds it: topic, flag, body and properties.
///
/// `Message::new` adds no properties. (Java's `Message` constructor always puts `WAIT=true`;
/// a client that wants Java's bytes calls [`Message::set_wait_store_msg_ok`].)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Topic name.
    pub topic: String,
    /// Opaque user flag, stored in the record's `FLAG` field.
    pub flag: i32,
    /// Body bytes (compressed only if the sender compressed them).
    pub body: Bytes,
    /// Properties, including the system ones (`TAGS`, `KEYS`, `UNIQ_KEY`, ...).
    pub properties: Properties,
}

impl Message {
    /// A message with no flag and no properties.
    #[must_use]
    pub fn new(topic: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Self { topic: topic.into(), flag: 0, body: body.into(), properties: Properties::new() }
    }

    /// The value of property `name`.
    #[must_use]
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).map(String::as_str)
    }

    /// Sets property `name` to `value`, replacing any earlier value.
    pub fn put_property(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.properties.insert(name.into(), value.into());
    }

    /// Removes property `name` and returns its value.
    pub fn remove_property(&mut self, name: &str) -> Option<String> {
        self.properties.remove(name)
    }

    /// The `TAGS` property.
    #[must_use]
    pub fn tags(&self) -> Option<&str> {
        self.property(property::TAGS)
    }

    /// Sets `TAGS`.
    pub fn set_tags(&mut self, tags: impl Into<String>) {
        self.put_property(property::TAGS, tags);
    }

    /// The raw `KEYS` property (keys separated by single spaces).
    #[must_use]
    pub fn keys(&self) -> Option<&str> {
        self.property(property::KEYS)
    }

    /// The individual keys of `KEYS`, split on single spaces, empty pieces skipped (the keys
    /// the store indexes).
    pub fn key_list(&self) -> impl Iterator<Item = &str> {
        self.keys().unwrap_or_default().split(property::KEY_SEPARATOR).filter(|key| !key.is_empty())
    }

    /// Sets `KEYS` to the keys joined by single spaces.
    pub fn set_keys<I, K>(&mut self, keys: I)
    where
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        let mut joined = String::new();
        for key in keys {
            if !joined.is_empty() {
                joined.push_str(property::KEY_SEPARATOR);
            }
            joined.push_str(key.as_ref());
        }
        self.put_property(property::KEYS, joined);
    }

    /// The `UNIQ_KEY` property: the id clients call `msgId`.
    #[must_use]
    pub fn uniq_key(&self) -> Option<&str> {
        self.property(property::UNIQ_KEY)
    }

    /// Sets `UNIQ_KEY`.
    pub fn set_uniq_key(&mut self, uniq_key: impl Into<String>) {
        self.put_property(property::UNIQ_KEY, uniq_key);
    }

    /// The delay level from `DELAY`: 0 when absent or not a decimal i32 (Java
    /// `Integer.parseInt` rules: optional sign, ASCII digits). The broker treats levels ≤ 0
    /// as "no delay".
    #[must_use]
    pub fn delay_level(&self) -> i32 {
        self.property(property::DELAY).and_then(|level| level.parse().ok()).unwrap_or(0)
    }

    /// Sets `DELAY` to `level`.
    pub fn set_delay_level(&mut self, level: i32) {
        self.put_property(property::DELAY, level.to_string());
    }

    /// `WAIT`: absent means true; otherwise true only for case-insensitive `"true"` (Java
    /// `Boolean.parseBoolean`). False tells the broker not to wait for flush or replication.
    #[must_use]
    pub fn wait_store_msg_ok(&self) -> bool {
        self.property(property::WAIT).is_none_or(|wait| wait.eq_ignore_ascii_case("true"))
    }

    /// Sets `WAIT` to `"true"` or `"false"`.
    pub fn set_wait_store_msg_ok(&mut self, wait: bool) {
        self.put_property(property::WAIT, if wait { "true" } else { "false" });
    }

    /// True when `TRAN_MSG` is case-insensitive `"true"` (a transactional half message).
    #[must_use]
    pub fn is_transaction_prepared(&self) -> bool {
        self.property(property::TRAN_MSG).is_some_and(|tran| tran.eq_ignore_ascii_case("true"))
    }

    /// The `REAL_TOPIC` property (original topic of a redirected message).
    #[must_use]
    pub fn real_topic(&self) -> Option<&str> {
        self.property(property::REAL_TOPIC)
    }

    /// The `REAL_QID` property parsed as i32, if present and numeric.
    #[must_use]
    pub fn real_queue_id(&self) -> Option<i32> {
        self.property(property::REAL_QID).and_then(|qid| qid.parse().ok())
    }

    /// The `RETRY_TOPIC` property (business topic of a retried message).
    #[must_use]
    pub fn retry_topic(&self) -> Option<&str> {
        self.property(property::RETRY_TOPIC)
    }

    /// The `__transactionId__` property.
    #[must_use]
    pub fn transaction_id(&self) -> Option<&str> {
        self.property(property::TRANSACTION_ID)
    }

    /// The properties in their stored form.
    #[must_use]
    pub fn encode_properties(&self) -> Vec<u8> {
        encode_properties(&self.properties)
    }
}

/// A stored message, decoded from a CommitLog record: the [`Message`] plus the fields the
/// broker assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageExt {
    /// Topic, flag, body and properties.
    pub message: Message,
    /// `QUEUEID`.
    pub queue_id: i32,
    /// `TOTALSIZE` of the record.
    pub store_size: usize,
    /// `QUEUEOFFSET`.
    pub queue_offset: i64,
    /// `SYSFLAG` as stored (a decompressed body keeps the compression bits, as in Java).
    pub sysflag: i32,
    /// `BORNTIMESTAMP`, ms since the epoch.
    pub born_timestamp: i64,
    /// `BORNHOST`.
    pub born_host: SocketAddr,
    /// `STORETIMESTAMP`, ms since the epoch.
    pub store_timestamp: i64,
    /// `STOREHOST`.
    pub store_host: SocketAddr,
    /// The offset message id (storage.md §6.1), from `store_host` and `commit_log_offset`.
    pub msg_id: String,
    /// `PHYSICALOFFSET`.
    pub commit_log_offset: i64,
    /// `BODYCRC` as stored.
    pub body_crc: i32,
    /// `RECONSUMETIMES`.
    pub reconsume_times: i32,
    /// `PREPARED TX OFFSET`.
    pub prepared_transaction_offset: i64,
}

impl MessageExt {
    /// Builds the owned view of `rec`, with `body` standing for its (possibly inflated) body.
    /// Properties are parsed leniently; `msg_id` is the offset message id.
    #[must_use]
    pub fn from_record(rec: &RecordRef<'_>, body: Bytes) -> Self {
        Self {
            message: Message {
                topic: rec.topic.to_owned(),
                flag: rec.flag,
                body,
                properties: parse_properties(rec.properties),
            },
            queue_id: rec.queue_id,
            store_size: rec.encoded_len(),
            queue_offset: rec.queue_offset,
            sysflag: rec.sysflag,
            born_timestamp: rec.born_timestamp,
            born_host: rec.born_host,
            store_timestamp: rec.store_timestamp,
            store_host: rec.store_host,
            msg_id: encode_offset_msg_id(rec.store_host, rec.physical_offset),
            commit_log_offset: rec.physical_offset,
            body_crc: rec.body_crc,
            reconsume_times: rec.reconsume_times,
            prepared_transaction_offset: rec.prepared_transaction_offset,
        }
    }

    /// The topic.
    #[must_use]
    pub fn topic(&self) -> &str {
        &self.message.topic
    }

    /// The body.
    #[must_use]
    pub fn body(&self) -> &Bytes {
        &self.message.body
    }

    /// The id a Java client shows as `msgId`: `UNIQ_KEY` if present, else the offset id.
    #[must_use]
    pub fn client_msg_id(&self) -> &str {
        self.message.uniq_key().unwrap_or(&self.msg_id)
    }

    /// The transaction type bits of the sysflag.
    #[must_use]
    pub fn transaction_type(&self) -> i32 {
        sysflag::transaction_type(self.sysflag)
    }

    /// Appends this message as a stored record (version chosen by
    /// [`MessageVersion::for_topic`]); the body is written as held, the CRC recomputed.
    ///
    /// # Errors
    ///
    /// As [`encode_record`].
    pub fn encode_record(&self, out: &mut Vec<u8>) -> Result<usize> {
        let properties = self.message.encode_properties();
        let rec = RecordRef {
            version: MessageVersion::for_topic(&self.message.topic),
            body_crc: self.body_crc,
            queue_id: self.queue_id,
            flag: self.message.flag,
            queue_offset: self.queue_offset,
            physical_offset: self.commit_log_offset,
            sysflag: self.sysflag,
            born_timestamp: self.born_timestamp,
            born_host: self.born_host,
            store_timestamp: self.store_timestamp,
            store_host: self.store_host,
            reconsume_times: self.reconsume_times,
            prepared_transaction_offset: self.prepared_transaction_offset,
            body: &self.message.body,
            topic: &self.message.topic,
            properties: &properties,
        };
        encode_record(&rec, out)
    }
}

/// `addr` with an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) turned into plain IPv4.
///
/// Java's sockets report such peers as IPv4 (`Inet4Address`), so a Java broker stores them
/// in the 8-byte form. A dual-stack Rust listener reports them as IPv6; pass peer addresses
/// through this before encoding to get Java's bytes. The record codec itself keeps
/// addresses exactly as given.
#[must_use]
pub fn canonical_socket_addr(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_defaults_to_true_and_parses_like_java() {
        let mut msg = Message::new("T", &b"x"[..]);
        assert!(msg.wait_store_msg_ok());
        msg.put_property(property::WAIT, "TRUE");
        assert!(msg.wait_store_msg_ok());
        msg.put_property(property::WAIT, "yes");
        assert!(!msg.wait_store_msg_ok());
        msg.set_wait_store_msg_ok(false);
        assert_eq!(msg.property(property::WAIT), Some("false"));
    }

    #[test]
    fn delay_level_is_zero_when_absent_or_unparsable() {
        let mut msg = Message::new("T", Bytes::new());
        assert_eq!(msg.delay_level(), 0);
        msg.set_delay_level(3);
        assert_eq!(msg.delay_level(), 3);
        msg.put_property(property::DELAY, "+4");
        assert_eq!(msg.delay_level(), 4);
        msg.put_property(property::DELAY, " 4");
        assert_eq!(msg.delay_level(), 0);
    }

    #[test]
    fn keys_join_and_split_on_single_spaces() {
        let mut msg = Message::new("T", Bytes::new());
        assert_eq!(msg.key_list().count(), 0);
        msg.set_keys(["k1", "k2"]);
        assert_eq!(msg.keys(), Some("k1 k2"));
        msg.put_property(property::KEYS, "a  b ");
        assert_eq!(msg.key_list().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn canonical_addr_unmaps_ipv4_mapped_ipv6() {
        let mapped: SocketAddr = "[::ffff:192.168.0.10]:50000".parse().unwrap();
        assert_eq!(canonical_socket_addr(mapped), "192.168.0.10:50000".parse().unwrap());
        let v6: SocketAddr = "[fe80::1]:1".parse().unwrap();
        assert_eq!(canonical_socket_addr(v6), v6);
    }
}
