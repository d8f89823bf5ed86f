//! The store's one error type.
//!
//! Variants separate what a caller handles differently: a bad argument or configuration, a
//! corrupt file, an I/O failure, a full disk, and a poisoned store (a flush failed, so nothing
//! written since can be acknowledged until the store is reopened).

use std::io;
use std::path::PathBuf;

/// Result of store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is outside its allowed range.
    #[error("invalid config: {field} = {value}, expected {expected}")]
    InvalidConfig {
        /// RocketMQ's name of the field, e.g. `mappedFileSizeCommitLog`.
        field: &'static str,
        /// The rejected value, rendered.
        value: String,
        /// The allowed range or form.
        expected: String,
    },

    /// A caller-supplied argument is unusable (bad topic, oversize message, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A file does not hold what its format requires.
    #[error("corrupt {path}: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What was expected and what was found, with the offset.
        reason: String,
    },

    /// An I/O operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What the store was doing, e.g. `create segment`.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// The disk has no room for a new segment (`ENOSPC` from `fallocate`).
    #[error("disk full: cannot allocate {size_bytes} bytes for {path}")]
    DiskFull {
        /// The file that could not be allocated.
        path: PathBuf,
        /// Bytes requested.
        size_bytes: u64,
    },

    /// An earlier flush failed: the store refuses writes until it is reopened, because data
    /// that flush covered may never reach the disk.
    #[error("store is poisoned by an earlier failed flush ({cause}); reopen it")]
    Poisoned {
        /// The first failure, rendered.
        cause: String,
    },

    /// The store directory is locked by another open store (this or another process).
    #[error("store directory {path} is already in use by another store")]
    Locked {
        /// The store's root directory.
        path: PathBuf,
    },

    /// The store was closed.
    #[error("store is closed")]
    Closed,

    /// A record failed to encode or decode.
    #[error(transparent)]
    Message(#[from] ferromq_message::Error),
}

impl Error {
    /// Wraps an I/O error with what was being done and to which path.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    /// Whether this is a failed `fsync`/`msync` (of data or of a directory): the store is
    /// poisoned by one, whatever was being flushed.
    pub(crate) fn is_sync_failure(&self) -> bool {
        matches!(self, Error::Io { op: "flush" | "sync dir", .. })
    }

    /// Builds a corruption error for `path`.
    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Corrupt { path: path.into(), reason: reason.into() }
    }
}
