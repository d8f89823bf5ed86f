//! The crate's error type: bad configuration and file-system failures. Bad network input
//! never becomes an `Error`; it is answered on the wire (SYSTEM_ERROR with a remark).

use std::path::PathBuf;

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the name server could not load its configuration or state, or persist it.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config value does not parse, is out of range, or asks for an unsupported feature.
    #[error("invalid config: {key} is {value:?}, expected {expected}")]
    InvalidConfig {
        /// The properties key, e.g. `listenPort`.
        key: String,
        /// The value given (truncated to 64 characters).
        value: String,
        /// The allowed values.
        expected: &'static str,
    },
    /// Reading or writing a file failed.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The KV config file exists but is not RocketMQ's `{"configTable":{...}}` JSON.
    #[error("kv config file {path} is malformed: {source}")]
    KvConfigMalformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: ferromq_remoting::Error,
    },
}

impl Error {
    pub(crate) fn invalid_config(key: &str, value: &str, expected: &'static str) -> Self {
        Self::InvalidConfig {
            key: key.to_owned(),
            value: value.chars().take(64).collect(),
            expected,
        }
    }
}

impl From<Error> for std::io::Error {
    fn from(error: Error) -> Self {
        let kind = match &error {
            Error::InvalidConfig { .. } | Error::KvConfigMalformed { .. } => {
                std::io::ErrorKind::InvalidData
            }
            Error::Io { source, .. } => source.kind(),
        };
        std::io::Error::new(kind, error)
    }
}
