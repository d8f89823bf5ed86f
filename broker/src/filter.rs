//! Tag filtering of pulls from the ConsumeQueue's tags code (remoting.md §8.2.2 step 4).

use std::collections::BTreeSet;

use ferromq_message::hash::java_string_hash;

/// A TAG subscription: all messages, or those whose tags hash is in a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFilter {
    codes: Option<BTreeSet<i32>>,
}

impl TagFilter {
    /// Accepts everything.
    pub fn all() -> Self {
        Self { codes: None }
    }

    /// Parses a TAG expression: `*` or empty → all; else `a || b`, trimmed, empties dropped.
    /// `None` when no tag is left (Java's SUBSCRIPTION_PARSE_FAILED).
    pub fn parse(expression: &str) -> Option<Self> {
        let expression = expression.trim();
        if expression.is_empty() || expression == "*" {
            return Some(Self::all());
        }
        let codes: BTreeSet<i32> = expression
            .split("||")
            .map(str::trim)
            .filter(|tag| !tag.is_empty())
            .map(java_string_hash)
            .collect();
        (!codes.is_empty()).then_some(Self { codes: Some(codes) })
    }

    /// From a subscription's code set (heartbeat-registered subscriptions).
    pub fn from_codes(sub_string: &str, codes: &[i32]) -> Self {
        if sub_string.trim().is_empty() || sub_string.trim() == "*" {
            return Self::all();
        }
        Self { codes: Some(codes.iter().copied().collect()) }
    }

    /// Whether a message with this tags code passes. Untagged messages (code 0) do not
    /// pass a tag list, as in Java.
    pub fn matches(&self, tags_code: i64) -> bool {
        match &self.codes {
            None => true,
            // Java compares `(int) tagsCode`: keeping the low 32 bits is the protocol's rule.
            Some(codes) => codes.contains(&(tags_code as i32)),
        }
    }

    /// Whether it accepts everything.
    pub fn is_all(&self) -> bool {
        self.codes.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferromq_message::hash::tags_code;

    #[test]
    fn tag_expressions() {
        assert!(TagFilter::parse("*").unwrap().is_all());
        assert!(TagFilter::parse("").unwrap().is_all());
        assert!(TagFilter::parse(" || ").is_none());
        let filter = TagFilter::parse("TagA || TagB").unwrap();
        assert!(filter.matches(tags_code("TagA")));
        assert!(filter.matches(tags_code("TagB")));
        assert!(!filter.matches(tags_code("TagC")));
        assert!(!filter.matches(0));
    }
}
