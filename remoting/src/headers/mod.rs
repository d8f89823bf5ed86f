//! Typed custom headers (spec §4, §8): one struct per Java `*RequestHeader` /
//! `*ResponseHeader` class, converted to and from extFields.
//!
//! Each struct is declared with `command_header!` from a field list:
//!
//! ```text
//! req consumer_group: String = "consumerGroup",   // @CFNotNull: missing -> error naming it
//! opt subscription: String = "subscription",      // optional: Option<String>
//! ```
//!
//! Wire names are the Java field names, spelled exactly (case-sensitive).

mod client;
mod namesrv;
mod offset;
mod pull;
mod query;
mod send;

pub use client::{
    CheckTransactionStateRequestHeader, ConsumerSendMsgBackRequestHeader, CreateTopicRequestHeader,
    DeleteTopicRequestHeader, EndTransactionRequestHeader, GetConsumerListByGroupRequestHeader,
    NotifyConsumerIdsChangedRequestHeader, UnregisterClientRequestHeader,
};
pub use namesrv::{
    AddWritePermOfBrokerRequestHeader, AddWritePermOfBrokerResponseHeader,
    BrokerHeartbeatRequestHeader, DeleteKvConfigRequestHeader, DeleteTopicFromNamesrvRequestHeader,
    GetBrokerMemberGroupRequestHeader, GetKvConfigRequestHeader, GetKvConfigResponseHeader,
    GetKvListByNamespaceRequestHeader, GetRouteInfoRequestHeader, GetTopicsByClusterRequestHeader,
    PutKvConfigRequestHeader, QueryDataVersionRequestHeader, QueryDataVersionResponseHeader,
    RegisterBrokerRequestHeader, RegisterBrokerResponseHeader, RegisterTopicRequestHeader,
    UnregisterBrokerRequestHeader, WipeWritePermOfBrokerRequestHeader,
    WipeWritePermOfBrokerResponseHeader,
};
pub use offset::{
    GetEarliestMsgStoretimeRequestHeader, GetEarliestMsgStoretimeResponseHeader,
    GetMaxOffsetRequestHeader, GetMaxOffsetResponseHeader, GetMinOffsetRequestHeader,
    GetMinOffsetResponseHeader, QueryConsumerOffsetRequestHeader,
    QueryConsumerOffsetResponseHeader, SearchOffsetRequestHeader, SearchOffsetResponseHeader,
    UpdateConsumerOffsetRequestHeader,
};
pub use pull::{PullMessageRequestHeader, PullMessageResponseHeader, pull_sys_flag};
pub use query::{QueryMessageRequestHeader, QueryMessageResponseHeader, ViewMessageRequestHeader};
pub use send::{
    SendMessageRequestHeader, SendMessageRequestHeaderV2, SendMessageResponseHeader,
    decode_send_request_header,
};

use crate::error::Result;
use crate::ext_fields::ExtFields;

/// A typed custom header: the fields of one Java `CommandCustomHeader` class.
pub trait CommandHeader: Sized {
    /// Reads the header from extFields, as Java's `decodeCommandCustomHeader` does.
    ///
    /// # Errors
    ///
    /// [`crate::Error::MissingField`] for an absent mandatory field and
    /// [`crate::Error::InvalidField`] for one that does not parse; both name the field.
    fn from_ext_fields(fields: &ExtFields) -> Result<Self>;

    /// Writes every non-`None` field into `fields` (Java's `makeCustomHeaderToNet`).
    fn to_ext_fields(&self, fields: &mut ExtFields);
}

/// Declares a header struct and its [`CommandHeader`] impl from a field list. Each line is
/// `req|opt rust_name: Type = "javaName",`; `req` fields have type `Type` and must be
/// present, `opt` fields have type `Option<Type>`.
macro_rules! command_header {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* $kind:ident $field:ident : $ty:ty = $wire:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $crate::headers::command_header!(@type $kind $ty), )*
        }

        impl $crate::headers::CommandHeader for $name {
            fn from_ext_fields(
                fields: &$crate::ext_fields::ExtFields,
            ) -> $crate::error::Result<Self> {
                let _ = &fields;
                Ok(Self {
                    $( $field: $crate::headers::command_header!(@read $kind fields $wire $ty), )*
                })
            }

            fn to_ext_fields(&self, fields: &mut $crate::ext_fields::ExtFields) {
                let _ = &fields;
                $( $crate::headers::command_header!(@write $kind fields $wire self.$field); )*
            }
        }
    };
    (@type req $ty:ty) => { $ty };
    (@type opt $ty:ty) => { Option<$ty> };
    (@read req $fields:ident $wire:literal $ty:ty) => {
        $crate::ext_fields::required::<$ty>($fields, $wire)?
    };
    (@read opt $fields:ident $wire:literal $ty:ty) => {
        $crate::ext_fields::optional::<$ty>($fields, $wire)
    };
    (@write req $fields:ident $wire:literal $value:expr) => {
        $crate::ext_fields::put($fields, $wire, &$value)
    };
    (@write opt $fields:ident $wire:literal $value:expr) => {
        if let Some(value) = &$value {
            $crate::ext_fields::put($fields, $wire, value);
        }
    };
}
pub(crate) use command_header;

/// Decodes the request header a broker or name server reads for `code` and discards it:
/// `Ok(())` when the extFields satisfy that header, the decoding error otherwise. Codes
/// without a custom header (or unknown here) always pass.
///
/// # Errors
///
/// The header's [`CommandHeader::from_ext_fields`] error.
pub fn check_request_header(code: i32, fields: &ExtFields) -> Result<()> {
    use crate::codes::RequestCode as Code;

    fn check<H: CommandHeader>(fields: &ExtFields) -> Result<()> {
        H::from_ext_fields(fields).map(drop)
    }

    match Code(code) {
        Code::SEND_MESSAGE
        | Code::SEND_MESSAGE_V2
        | Code::SEND_BATCH_MESSAGE
        | Code::SEND_REPLY_MESSAGE
        | Code::SEND_REPLY_MESSAGE_V2 => decode_send_request_header(code, fields).map(drop),
        Code::PULL_MESSAGE | Code::LITE_PULL_MESSAGE => check::<PullMessageRequestHeader>(fields),
        Code::QUERY_MESSAGE => check::<QueryMessageRequestHeader>(fields),
        Code::VIEW_MESSAGE_BY_ID => check::<ViewMessageRequestHeader>(fields),
        Code::QUERY_CONSUMER_OFFSET => check::<QueryConsumerOffsetRequestHeader>(fields),
        Code::UPDATE_CONSUMER_OFFSET => check::<UpdateConsumerOffsetRequestHeader>(fields),
        Code::SEARCH_OFFSET_BY_TIMESTAMP => check::<SearchOffsetRequestHeader>(fields),
        Code::GET_MAX_OFFSET => check::<GetMaxOffsetRequestHeader>(fields),
        Code::GET_MIN_OFFSET => check::<GetMinOffsetRequestHeader>(fields),
        Code::GET_EARLIEST_MSG_STORETIME => check::<GetEarliestMsgStoretimeRequestHeader>(fields),
        Code::UNREGISTER_CLIENT => check::<UnregisterClientRequestHeader>(fields),
        Code::CONSUMER_SEND_MSG_BACK => check::<ConsumerSendMsgBackRequestHeader>(fields),
        Code::END_TRANSACTION => check::<EndTransactionRequestHeader>(fields),
        Code::GET_CONSUMER_LIST_BY_GROUP => check::<GetConsumerListByGroupRequestHeader>(fields),
        Code::CHECK_TRANSACTION_STATE => check::<CheckTransactionStateRequestHeader>(fields),
        Code::NOTIFY_CONSUMER_IDS_CHANGED => check::<NotifyConsumerIdsChangedRequestHeader>(fields),
        Code::UPDATE_AND_CREATE_TOPIC => check::<CreateTopicRequestHeader>(fields),
        Code::DELETE_TOPIC_IN_BROKER => check::<DeleteTopicRequestHeader>(fields),
        Code::GET_ROUTEINFO_BY_TOPIC => check::<GetRouteInfoRequestHeader>(fields),
        Code::REGISTER_BROKER => check::<RegisterBrokerRequestHeader>(fields),
        Code::UNREGISTER_BROKER => check::<UnregisterBrokerRequestHeader>(fields),
        Code::QUERY_DATA_VERSION => check::<QueryDataVersionRequestHeader>(fields),
        Code::BROKER_HEARTBEAT => check::<BrokerHeartbeatRequestHeader>(fields),
        Code::PUT_KV_CONFIG => check::<PutKvConfigRequestHeader>(fields),
        Code::GET_KV_CONFIG => check::<GetKvConfigRequestHeader>(fields),
        Code::DELETE_KV_CONFIG => check::<DeleteKvConfigRequestHeader>(fields),
        Code::GET_KVLIST_BY_NAMESPACE => check::<GetKvListByNamespaceRequestHeader>(fields),
        Code::DELETE_TOPIC_IN_NAMESRV => check::<DeleteTopicFromNamesrvRequestHeader>(fields),
        Code::GET_TOPICS_BY_CLUSTER => check::<GetTopicsByClusterRequestHeader>(fields),
        Code::WIPE_WRITE_PERM_OF_BROKER => check::<WipeWritePermOfBrokerRequestHeader>(fields),
        Code::ADD_WRITE_PERM_OF_BROKER => check::<AddWritePermOfBrokerRequestHeader>(fields),
        Code::REGISTER_TOPIC_IN_NAMESRV => check::<RegisterTopicRequestHeader>(fields),
        Code::GET_BROKER_MEMBER_GROUP => check::<GetBrokerMemberGroupRequestHeader>(fields),
        _ => Ok(()),
    }
}
