//! Subscription expressions (client.md §7): tag expressions (`*`, `TagA || TagB`) and SQL92,
//! and the client-side tag re-check after a pull.

use ferromq_message::MessageExt;
use ferromq_message::hash::java_string_hash;
use ferromq_remoting::bodies::SubscriptionData;

use crate::error::{Error, Result};

/// `TAG` expression type.
pub const EXPRESSION_TYPE_TAG: &str = "TAG";
/// `SQL92` expression type (filtered by the broker alone).
pub const EXPRESSION_TYPE_SQL92: &str = "SQL92";
/// The "every message" tag expression.
pub const SUB_ALL: &str = "*";

/// Java `FilterAPI.buildSubscriptionData`: `None`, empty or exactly `*` subscribe to every
/// message; otherwise the expression is split on `||`, each piece trimmed, empty pieces
/// dropped. `sub_version` is set to now.
///
/// # Errors
///
/// [`Error::InvalidArgument`] when a non-wildcard expression has no tag (e.g. `"||"`).
pub fn build_tag_subscription(topic: &str, expression: Option<&str>) -> Result<SubscriptionData> {
    let mut data = SubscriptionData {
        topic: topic.to_owned(),
        sub_version: crate::util::now_ms(),
        expression_type: EXPRESSION_TYPE_TAG.to_owned(),
        ..SubscriptionData::default()
    };
    match expression {
        None | Some("" | SUB_ALL) => data.sub_string = SUB_ALL.to_owned(),
        Some(expression) => {
            data.sub_string = expression.to_owned();
            for tag in expression.split("||").map(str::trim).filter(|tag| !tag.is_empty()) {
                data.code_set.push(java_string_hash(tag));
                data.tags_set.push(tag.to_owned());
            }
            if data.tags_set.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "subString split error: no tag in expression {expression:?}"
                )));
            }
        }
    }
    Ok(data)
}

/// A SQL92 subscription (filtered by the broker; needs `enablePropertyFilter=true` there).
///
/// # Errors
///
/// [`Error::InvalidArgument`] for an empty expression.
pub fn build_sql_subscription(topic: &str, expression: &str) -> Result<SubscriptionData> {
    if expression.trim().is_empty() {
        return Err(Error::InvalidArgument("a SQL92 expression must not be empty".into()));
    }
    Ok(SubscriptionData {
        topic: topic.to_owned(),
        sub_string: expression.to_owned(),
        sub_version: crate::util::now_ms(),
        expression_type: EXPRESSION_TYPE_SQL92.to_owned(),
        ..SubscriptionData::default()
    })
}

/// The client-side re-check after a pull (client.md §4.4): a TAG subscription with tags
/// keeps only messages whose `TAGS` is one of them (untagged messages are dropped); `*`
/// and SQL92 subscriptions keep everything.
pub fn matches(subscription: &SubscriptionData, message: &MessageExt) -> bool {
    if subscription.tags_set.is_empty() || subscription.class_filter_mode {
        return true;
    }
    if subscription.expression_type != EXPRESSION_TYPE_TAG
        && !subscription.expression_type.is_empty()
    {
        return true;
    }
    message.message.tags().is_some_and(|tags| subscription.tags_set.iter().any(|tag| tag == tags))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_tag_lists() {
        for expression in [None, Some(""), Some("*")] {
            let data = build_tag_subscription("T", expression).unwrap();
            assert_eq!(data.sub_string, "*");
            assert!(data.tags_set.is_empty() && data.code_set.is_empty());
        }
        let data = build_tag_subscription("T", Some("TagA || TagB")).unwrap();
        assert_eq!(data.tags_set, ["TagA", "TagB"]);
        assert_eq!(data.code_set, [java_string_hash("TagA"), java_string_hash("TagB")]);
        let data = build_tag_subscription("T", Some("TagA||")).unwrap();
        assert_eq!(data.tags_set, ["TagA"]);
        // " * " is not the wildcard: it is the literal tag "*" (code 42).
        let data = build_tag_subscription("T", Some(" * ")).unwrap();
        assert_eq!(data.tags_set, ["*"]);
        assert_eq!(data.code_set, [42]);
        assert!(build_tag_subscription("T", Some("||")).is_err());
        assert!(build_sql_subscription("T", " ").is_err());
        assert_eq!(build_sql_subscription("T", "a > 1").unwrap().expression_type, "SQL92");
    }
}
