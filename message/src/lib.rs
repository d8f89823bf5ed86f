//! RocketMQ's message model and byte formats, byte-compatible with Apache RocketMQ 4.9 and
//! 5.x: the stored CommitLog record (also the pull-response body), the client batch body,
//! the properties string, message ids and the hashes written to disk.
//!
//! This crate is **pure**: no I/O, no threads, no async. Every decoder takes a byte slice,
//! borrows from it where it can, and returns a [`Result`] — arbitrary input never panics,
//! and no decoder allocates by a length it read before checking the bytes are there. The
//! store, the remoting codec, the broker and the client all build on it; it depends on none
//! of them. It is **not** a client: it neither sends nor stores anything.
//!
//! Byte layouts are drawn in `docs/formats.md`; their meaning is in the spec
//! (`storage.md` §3–§6).
//!
//! | module | what |
//! |---|---|
//! | [`record`] | the CommitLog record: encode, check (recovery), decode, BLANK, pull bodies |
//! | [`batch`] | the SEND_BATCH_MESSAGE body |
//! | [`properties`], [`property`] | the properties string and the property names |
//! | [`sysflag`] | the record's SYSFLAG bits |
//! | [`hash`] | Java `String.hashCode` (tagsCode, index keys) and the masked CRC-32 |
//! | [`msg_id`] | offset message ids and UNIQ_KEYs |
//! | [`message`] | [`Message`] and [`MessageExt`] |
//! | [`validate`] | topic and group names, with the Java broker's remarks |
//! | [`zlib`] | bounded body inflate / deflate |
//!
//! ```
//! use ferromq_message::properties::{encode_properties, Properties};
//! use ferromq_message::record::{self, MessageVersion, RecordCheck, RecordRef};
//!
//! let mut properties = Properties::new();
//! properties.insert("TAGS".into(), "TagA".into());
//! let properties = encode_properties(&properties);
//! let rec = RecordRef {
//!     version: MessageVersion::for_topic("TopicTest"),
//!     body_crc: 0, // computed by the encoder
//!     queue_id: 1,
//!     flag: 0,
//!     queue_offset: 5,
//!     physical_offset: 1234,
//!     sysflag: 0,
//!     born_timestamp: 1_700_000_000_000,
//!     born_host: "192.168.0.10:50000".parse()?,
//!     store_timestamp: 1_700_000_000_123,
//!     store_host: "192.168.0.2:10911".parse()?,
//!     reconsume_times: 0,
//!     prepared_transaction_offset: 0,
//!     body: b"Hello",
//!     topic: "TopicTest",
//!     properties: &properties,
//! };
//! let mut out = Vec::new();
//! let len = record::encode_record(&rec, &mut out)?;
//! assert_eq!(len, 115);
//!
//! let RecordCheck::Message(back) = record::check_record(&out, true)? else {
//!     return Err("expected a message record, found a blank".into());
//! };
//! assert_eq!(back.property("TAGS"), Some(&b"TagA"[..]));
//! assert_eq!(back.offset_msg_id(), "C0A8000200002A9F00000000000004D2");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod batch;
mod error;
pub mod hash;
pub mod message;
pub mod msg_id;
pub mod properties;
pub mod property;
mod reader;
pub mod record;
pub mod sysflag;
pub mod validate;
pub mod zlib;

#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;

pub use error::{Error, Result};
pub use message::{Message, MessageExt};
pub use properties::Properties;
