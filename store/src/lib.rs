//! ferromq-store: a synchronous, embeddable message store with Apache RocketMQ's on-disk
//! format, byte for byte.
//!
//! Messages of every topic are appended to one **CommitLog** of fixed-size memory-mapped
//! segments. Each (topic, queue id) has a **ConsumeQueue** of 20-byte units pointing into it,
//! and an **IndexFile** hash index finds messages by key. A store directory written here
//! opens in RocketMQ 4.9/5.x and the other way round (`../shared/spec/storage.md`).
//!
//! What it is not: a server. There is no tokio and no network here; the broker crate wraps
//! this engine, and any Rust program can embed it.
//!
//! ```
//! use ferromq_store::{MessageStore, PutMessage, StoreConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let mut config = StoreConfig::new(dir.path());
//! config.mapped_file_size_commit_log = 1 << 20; // 1 MiB segments for the example
//! let store = MessageStore::open(config)?;
//!
//! let put = store.put(&PutMessage::new("TopicTest", 0, b"hello"))?;
//! assert!(put.status.is_ok());
//!
//! let got = store.get("TopicTest", 0, 0, 32, &|_tags_code| true)?;
//! assert_eq!(got.messages.len(), 1);
//! store.close()?;
//! # Ok(())
//! # }
//! ```
//!
//! Durability depends on [`FlushMode`]; see its variants for what survives a process crash
//! and a power cut.

mod checkpoint;
mod commit_log;
mod config;
mod consume_queue;
mod crash_point;
mod dispatch;
mod error;
mod expiry;
mod file_queue;
mod index_file;
mod io;
mod mmap;
mod recovery;
#[cfg(any(test, feature = "internals"))]
mod sim;
mod store;

pub use config::{FlushMode, RecoveryMode, StoreConfig};
pub use error::{Error, Result};
pub use store::{
    Arrival, GetResult, GetStatus, MessageStore, PutMessage, PutResult, PutStatus, QueryResult,
};

/// Test and benchmark internals; not part of the stable API.
#[cfg(any(test, feature = "internals"))]
#[doc(hidden)]
pub mod internals {
    pub use crate::crash_point::{ALL as KILL_POINTS, ENV as KILL_AT_ENV};
    pub use crate::sim::{CutFates, OpKind, OpRecord, PowerCut, SIM_PAGE_SIZE, SimRng, SimStorage};
}
