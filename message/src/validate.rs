//! Topic and group name validation (broker.md §2.6), with the Java broker's exact remarks.
//!
//! Checks run in Java's order: blank, then characters, then length. Every UTF-16 unit must
//! be ASCII in `[%|a-zA-Z0-9_-]`. The length rules differ by broker version:
//!
//! ```text
//! check       4.9 (SYSTEM_ERROR)                        5.x (INVALID_PARAMETER)
//! blank       The specified topic is blank.             same text
//! characters  ...contains illegal characters, ...       The specified topic: <t>, contains ...
//! length      > 127: ...longer than topic max length.   %RETRY%/%DLQ% > 255, others > 127
//! ```
//!
//! The remark texts come from [`TopicViolation::java_remark`]; choosing the response code is
//! the broker's business.

use std::fmt;

use crate::error::{Error, Result};

/// Longest ordinary topic, in characters.
pub const TOPIC_MAX_LEN: usize = 127;
/// [5.x] Longest `%RETRY%` / `%DLQ%` topic, in characters.
pub const RETRY_OR_DLQ_TOPIC_MAX_LEN: usize = 255;
/// [5.x] Longest group name the broker auto-creates, in characters.
pub const GROUP_MAX_LEN: usize = 120;
/// Longest group name a Java 4.9 client accepts, in characters.
pub const CLIENT_GROUP_MAX_LEN: usize = 255;
/// The character rule as Java prints it.
pub const VALID_PATTERN: &str = "^[%|a-zA-Z0-9_-]+$";
/// Prefix of retry topics, `%RETRY%<group>`.
pub const RETRY_GROUP_TOPIC_PREFIX: &str = "%RETRY%";
/// Prefix of dead-letter topics, `%DLQ%<group>`.
pub const DLQ_GROUP_TOPIC_PREFIX: &str = "%DLQ%";

/// Which broker's rules and messages to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// RocketMQ 4.9.x: every topic ≤ 127; errors are SYSTEM_ERROR.
    V4_9,
    /// RocketMQ 5.x: retry/DLQ topics ≤ 255, others ≤ 127; errors are INVALID_PARAMETER.
    V5,
}

/// The rule a topic name breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopicViolation {
    /// Empty or only (Java) whitespace.
    Blank,
    /// A character outside `[%|a-zA-Z0-9_-]`.
    IllegalCharacters,
    /// Longer than [`TOPIC_MAX_LEN`].
    TooLong,
    /// [5.x] A `%RETRY%`/`%DLQ%` topic longer than [`RETRY_OR_DLQ_TOPIC_MAX_LEN`].
    RetryOrDlqTooLong,
}

impl TopicViolation {
    /// The remark the Java broker of `dialect` sends for `topic`, byte for byte.
    #[must_use]
    pub fn java_remark(self, topic: &str, dialect: Dialect) -> String {
        match (self, dialect) {
            (Self::Blank, _) => "The specified topic is blank.".to_owned(),
            (Self::IllegalCharacters, Dialect::V4_9) => {
                format!(
                    "The specified topic contains illegal characters, allowing only {VALID_PATTERN}"
                )
            }
            (Self::IllegalCharacters, Dialect::V5) => format!(
                "The specified topic: {topic}, contains illegal characters, allowing only {VALID_PATTERN}"
            ),
            (Self::TooLong | Self::RetryOrDlqTooLong, Dialect::V4_9) => {
                "The specified topic is longer than topic max length.".to_owned()
            }
            (Self::TooLong, Dialect::V5) => format!(
                "The specified topic: {topic}, is longer than topic max length: {TOPIC_MAX_LEN}"
            ),
            (Self::RetryOrDlqTooLong, Dialect::V5) => format!(
                "The specified topic is DLQ or Retry topic: {topic}, and it's longer than topic max length: {RETRY_OR_DLQ_TOPIC_MAX_LEN}"
            ),
        }
    }
}

impl fmt::Display for TopicViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Blank => write!(f, "the topic is blank"),
            Self::IllegalCharacters => {
                write!(f, "the topic contains characters outside {VALID_PATTERN}")
            }
            Self::TooLong => write!(f, "the topic is longer than {TOPIC_MAX_LEN} characters"),
            Self::RetryOrDlqTooLong => write!(
                f,
                "the retry or dlq topic is longer than {RETRY_OR_DLQ_TOPIC_MAX_LEN} characters"
            ),
        }
    }
}

/// The rule a group name breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupViolation {
    /// Empty or only (Java) whitespace.
    Blank,
    /// A character outside `[%|a-zA-Z0-9_-]`.
    IllegalCharacters,
    /// Longer than the limit checked against.
    TooLong {
        /// The limit, in characters.
        max_len: usize,
    },
}

impl fmt::Display for GroupViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Blank => write!(f, "the group is blank"),
            Self::IllegalCharacters => {
                write!(f, "the group contains characters outside {VALID_PATTERN}")
            }
            Self::TooLong { max_len } => {
                write!(f, "the group is longer than {max_len} characters")
            }
        }
    }
}

/// Checks `topic` by the rules of `dialect`.
///
/// # Errors
///
/// The first rule broken, in Java's order.
pub fn check_topic(topic: &str, dialect: Dialect) -> Result<(), TopicViolation> {
    if is_blank(topic) {
        return Err(TopicViolation::Blank);
    }
    if !has_legal_chars(topic) {
        return Err(TopicViolation::IllegalCharacters);
    }
    // Only ASCII is left, so bytes and UTF-16 units agree.
    let len = topic.len();
    match dialect {
        Dialect::V4_9 if len > TOPIC_MAX_LEN => Err(TopicViolation::TooLong),
        Dialect::V5 if is_retry_or_dlq(topic) && len > RETRY_OR_DLQ_TOPIC_MAX_LEN => {
            Err(TopicViolation::RetryOrDlqTooLong)
        }
        Dialect::V5 if !is_retry_or_dlq(topic) && len > TOPIC_MAX_LEN => {
            Err(TopicViolation::TooLong)
        }
        _ => Ok(()),
    }
}

/// [`check_topic`] as a crate [`Error`].
///
/// # Errors
///
/// [`Error::InvalidTopic`] naming the topic and the rule.
pub fn validate_topic(topic: &str, dialect: Dialect) -> Result<()> {
    check_topic(topic, dialect)
        .map_err(|violation| Error::InvalidTopic { topic: topic.to_owned(), violation })
}

/// Checks a group name: not blank, legal characters, at most `max_len` characters
/// ([`GROUP_MAX_LEN`] for a 5.x broker, [`CLIENT_GROUP_MAX_LEN`] for a Java client).
///
/// # Errors
///
/// The first rule broken.
pub fn check_group(group: &str, max_len: usize) -> Result<(), GroupViolation> {
    if is_blank(group) {
        return Err(GroupViolation::Blank);
    }
    if !has_legal_chars(group) {
        return Err(GroupViolation::IllegalCharacters);
    }
    if group.len() > max_len {
        return Err(GroupViolation::TooLong { max_len });
    }
    Ok(())
}

/// [`check_group`] as a crate [`Error`].
///
/// # Errors
///
/// [`Error::InvalidGroup`] naming the group and the rule.
pub fn validate_group(group: &str, max_len: usize) -> Result<()> {
    check_group(group, max_len)
        .map_err(|violation| Error::InvalidGroup { group: group.to_owned(), violation })
}

/// True for `%RETRY%...` and `%DLQ%...` topics.
#[must_use]
pub fn is_retry_or_dlq(topic: &str) -> bool {
    topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) || topic.starts_with(DLQ_GROUP_TOPIC_PREFIX)
}

/// Java `UtilAll.isBlank`: empty, or every character is Java whitespace.
#[must_use]
pub fn is_blank(name: &str) -> bool {
    name.chars().all(is_java_whitespace)
}

/// True when every character is in `[%|a-zA-Z0-9_-]`.
#[must_use]
pub fn has_legal_chars(name: &str) -> bool {
    name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'%' | b'|' | b'_' | b'-'))
}

/// Java `Character.isWhitespace`: Unicode space, line and paragraph separators except the
/// no-break spaces (U+00A0, U+2007, U+202F), plus `\t \n \x0B \x0C \r` and `\x1C..=\x1F`.
/// (Rust's `char::is_whitespace` differs: it includes U+0085 and the no-break spaces and
/// excludes `\x1C..=\x1F`.)
fn is_java_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n'
            | '\u{0B}'
            | '\u{0C}'
            | '\r'
            | '\u{1C}'..='\u{1F}'
            | ' '
            | '\u{1680}'
            | '\u{2000}'..='\u{2006}'
            | '\u{2008}'..='\u{200A}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{205F}'
            | '\u{3000}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remark(topic: &str, dialect: Dialect) -> Option<String> {
        check_topic(topic, dialect).err().map(|violation| violation.java_remark(topic, dialect))
    }

    #[test]
    fn blank_topics_get_the_same_text_in_both_versions() {
        for topic in ["", "   ", "\t\u{1F}\u{3000}"] {
            for dialect in [Dialect::V4_9, Dialect::V5] {
                assert_eq!(
                    remark(topic, dialect).as_deref(),
                    Some("The specified topic is blank.")
                );
            }
        }
        // U+00A0 is not Java whitespace: it is an illegal character instead.
        assert_eq!(check_topic("\u{a0}", Dialect::V5), Err(TopicViolation::IllegalCharacters));
    }

    #[test]
    fn illegal_character_remarks_match_broker_md() {
        assert_eq!(
            remark("a b", Dialect::V4_9).as_deref(),
            Some(
                "The specified topic contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$"
            )
        );
        assert_eq!(
            remark("a b", Dialect::V5).as_deref(),
            Some(
                "The specified topic: a b, contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$"
            )
        );
        assert_eq!(check_topic("tópico", Dialect::V5), Err(TopicViolation::IllegalCharacters));
        assert_eq!(check_topic("%RETRY%a|b_c-D9", Dialect::V5), Ok(()));
    }

    #[test]
    fn length_remarks_match_broker_md() {
        let long = "t".repeat(128);
        assert_eq!(check_topic(&"t".repeat(127), Dialect::V4_9), Ok(()));
        assert_eq!(
            remark(&long, Dialect::V4_9).as_deref(),
            Some("The specified topic is longer than topic max length.")
        );
        assert_eq!(
            remark(&long, Dialect::V5),
            Some(format!("The specified topic: {long}, is longer than topic max length: 127"))
        );
        let retry = format!("%RETRY%{}", "g".repeat(248));
        assert_eq!(retry.len(), 255);
        assert_eq!(check_topic(&retry, Dialect::V5), Ok(()));
        assert_eq!(check_topic(&retry, Dialect::V4_9), Err(TopicViolation::TooLong));
        let dlq = format!("%DLQ%{}", "g".repeat(251));
        assert_eq!(
            remark(&dlq, Dialect::V5),
            Some(format!(
                "The specified topic is DLQ or Retry topic: {dlq}, and it's longer than topic max length: 255"
            ))
        );
    }

    #[test]
    fn group_rules() {
        assert_eq!(check_group("CID_ok-1", GROUP_MAX_LEN), Ok(()));
        assert_eq!(check_group(" ", GROUP_MAX_LEN), Err(GroupViolation::Blank));
        assert_eq!(check_group("a.b", GROUP_MAX_LEN), Err(GroupViolation::IllegalCharacters));
        assert_eq!(
            check_group(&"g".repeat(121), GROUP_MAX_LEN),
            Err(GroupViolation::TooLong { max_len: 120 })
        );
        assert_eq!(check_group(&"g".repeat(121), CLIENT_GROUP_MAX_LEN), Ok(()));
        let err = validate_group("a.b", GROUP_MAX_LEN).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid group \"a.b\": the group contains characters outside ^[%|a-zA-Z0-9_-]+$"
        );
    }
}
