//! The client's one error type.
//!
//! Variants separate what a caller handles differently: bad arguments or configuration
//! (fix the call), no route or no name server (fix the deployment), a broker's refusal
//! (with its response code, e.g. `SYSTEM_BUSY` for flow control), a transport failure or
//! timeout (retry later), and a send that failed on every attempt.

use std::time::Duration;

use ferromq_remoting::ResponseCode;
use ferromq_remoting::transport::TransportError;

/// Result alias of the client.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in the client.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration field is out of range.
    #[error("invalid config: {field} = {value}, expected {expected}")]
    InvalidConfig {
        /// The field's name.
        field: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        expected: &'static str,
    },
    /// An argument is not acceptable (bad topic, empty body, mixed batch, unknown queue, …);
    /// the Java client reports these as `MESSAGE_ILLEGAL` or `IllegalArgumentException`.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The message body (or encoded batch) is larger than the producer's `maxMessageSize`.
    #[error("the message body size is {size} bytes, larger than the maximum {max} bytes")]
    MessageTooLarge {
        /// Body (or encoded batch) size, bytes.
        size: usize,
        /// The limit, bytes.
        max: usize,
    },
    /// No name server address is configured.
    #[error("no name server address is configured (set namesrv_addr or NAMESRV_ADDR)")]
    NoNameServer,
    /// Neither the topic nor the auto-creation template topic has a route.
    #[error("no route info of this topic: {topic}")]
    NoRoute {
        /// The topic.
        topic: String,
    },
    /// A broker name has no usable address in the route table.
    #[error("the broker[{broker_name}] does not exist in the route table")]
    BrokerNotFound {
        /// Broker (group) name.
        broker_name: String,
    },
    /// A broker or name server answered with an error code.
    #[error("{addr} answered {code}: {remark}", code = ResponseCode(*code))]
    Broker {
        /// Who answered.
        addr: String,
        /// The response code.
        code: i32,
        /// The response remark (may be empty).
        remark: String,
    },
    /// Connecting, sending or waiting for a response failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The whole budget of an operation ran out (e.g. a send's `sendMsgTimeout` across
    /// retries).
    #[error("{what} timed out after {elapsed:?}")]
    Timeout {
        /// The operation.
        what: &'static str,
        /// Time spent.
        elapsed: Duration,
    },
    /// Every attempt of a send failed; `last` is the error of the last attempt.
    #[error(
        "send to topic {topic} failed {attempts} times in {elapsed_ms} ms, brokers tried \
         {brokers:?}: {last}"
    )]
    SendFailed {
        /// Topic.
        topic: String,
        /// Attempts made.
        attempts: u32,
        /// Time spent, ms.
        elapsed_ms: u64,
        /// Broker names tried, in order.
        brokers: Vec<String>,
        /// The last attempt's error.
        last: Box<Error>,
    },
    /// A response body or header could not be decoded.
    #[error("cannot decode {what}: {source}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Why.
        source: ferromq_remoting::Error,
    },
    /// A message record could not be decoded or encoded.
    #[error(transparent)]
    Message(#[from] ferromq_message::Error),
    /// The client is not started, or already shut down.
    #[error("the client is not running ({0})")]
    NotRunning(&'static str),
    /// Reading or writing a local file (broadcast offsets) failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An admin query found nothing (no message for a key, no consumer online, …).
    #[error("{0}")]
    NotFound(String),
    /// A master switch stopped half-way: the old master is already a slave, but the new
    /// one was not promoted. The group has no master until it is.
    #[error(
        "the old master {demoted} is now a slave, but promoting {promote} failed: {source}; \
         promote it with `ferromq broker update-config -b {promote} -k brokerRole -v {role} \
         -k brokerId -v 0`"
    )]
    SwitchIncomplete {
        /// The old master, now a slave.
        demoted: String,
        /// The broker that should have become the master.
        promote: String,
        /// The role it should have taken.
        role: String,
        /// Why promoting it failed.
        source: Box<Error>,
    },
}

impl Error {
    /// The broker response code, for [`Error::Broker`] (also when wrapped in
    /// [`Error::SendFailed`]).
    #[must_use]
    pub fn response_code(&self) -> Option<i32> {
        match self {
            Self::Broker { code, .. } => Some(*code),
            Self::SendFailed { last, .. } => last.response_code(),
            _ => None,
        }
    }

    /// True when a broker refused because it is overloaded (`SYSTEM_BUSY`, or
    /// `FLOW_CONTROL`): back off and retry.
    #[must_use]
    pub fn is_broker_busy(&self) -> bool {
        matches!(
            self.response_code().map(ResponseCode),
            Some(ResponseCode::SYSTEM_BUSY | ResponseCode::FLOW_CONTROL)
        )
    }

    /// True when the failure was a timeout (the transport's or the operation budget's).
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Timeout { .. } | Self::Transport(TransportError::Timeout { .. }) => true,
            Self::SendFailed { last, .. } => last.is_timeout(),
            _ => false,
        }
    }

    pub(crate) fn broker(addr: &str, code: i32, remark: Option<String>) -> Self {
        Self::Broker { addr: addr.to_owned(), code, remark: remark.unwrap_or_default() }
    }

    pub(crate) fn decode(what: &'static str, source: ferromq_remoting::Error) -> Self {
        Self::Decode { what, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_code_and_busy_is_detected() {
        let error =
            Error::broker("127.0.0.1:10911", 2, Some("[PC_SYNCHRONIZED]broker busy".into()));
        assert_eq!(
            error.to_string(),
            "127.0.0.1:10911 answered SYSTEM_BUSY(2): [PC_SYNCHRONIZED]broker busy"
        );
        assert!(error.is_broker_busy());
        let wrapped = Error::SendFailed {
            topic: "T".into(),
            attempts: 3,
            elapsed_ms: 12,
            brokers: vec!["broker-a".into()],
            last: Box::new(error),
        };
        assert!(wrapped.is_broker_busy());
        assert_eq!(wrapped.response_code(), Some(2));
        assert!(!wrapped.is_timeout());
        let timeout = Error::Timeout { what: "send", elapsed: Duration::from_millis(3000) };
        assert!(timeout.is_timeout());
        assert_eq!(timeout.to_string(), "send timed out after 3s");
    }
}
