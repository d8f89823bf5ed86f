//! Round trips shared by the remoting targets.

use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
use ferromq_remoting::headers::*;
use ferromq_remoting::{
    ExtFields, FrameDecoder, LanguageCode, RemotingCommand, SerializeType, header_binary,
    header_json,
};

/// A decoded command survives encode → frame decode → header decode unchanged, but for
/// what a binary header cannot carry: an empty remark, key or value is Java null there (so
/// the remark is absent and the entry dropped), and an empty map is written as no map.
///
/// # Panics
/// When the command does not come back equal.
pub fn command_round_trips(command: &RemotingCommand) {
    let mut expected = command.clone();
    if expected.serialize_type == SerializeType::RocketMq {
        expected.remark = expected.remark.filter(|remark| !remark.is_empty());
        // An empty map is written as no map; a map of only null entries reads back empty.
        expected.ext_fields = expected.ext_fields.filter(|fields| !fields.is_empty());
        if let Some(fields) = &mut expected.ext_fields {
            fields.retain(|key, value| !key.is_empty() && !value.is_empty());
        }
    }
    let mut wire = BytesMut::new();
    if let Err(err) = command.encode(&mut wire) {
        // Only a JSON-decoded command can hold a code or version too wide for a binary header.
        assert!(command.serialize_type == SerializeType::RocketMq, "encode failed: {err}");
        assert!(i16::try_from(command.code).is_err() || i16::try_from(command.version).is_err());
        return;
    }
    let frame = FrameDecoder::default().decode(&mut wire);
    let Ok(Some(frame)) = frame else {
        panic!("re-encoded command is not one frame: {frame:?}");
    };
    assert!(wire.is_empty(), "{} bytes left after the frame", wire.len());
    match RemotingCommand::from_frame(frame) {
        Ok(decoded) => assert_eq!(decoded, expected),
        Err(err) => panic!("re-encoded command does not decode: {err}"),
    }
}

/// The same command through the other header serialization (where a code or version wider
/// than an i16 must be an encode error).
pub fn command_crosses_serializations(command: &RemotingCommand) {
    let mut other = command.clone();
    other.serialize_type = match command.serialize_type {
        SerializeType::Json => SerializeType::RocketMq,
        SerializeType::RocketMq => SerializeType::Json,
    };
    command_round_trips(&other);
}

/// Every typed header that reads `fields` writes back fields it reads as itself.
pub fn typed_headers_round_trip(code: i32, fields: &ExtFields) {
    let _ = check_request_header(code, fields);
    let _ = decode_send_request_header(code, fields);
    macro_rules! each {
        ($($header:ty),* $(,)?) => { $( typed_header_round_trips::<$header>(fields); )* };
    }
    each!(
        CheckTransactionStateRequestHeader,
        ConsumerSendMsgBackRequestHeader,
        CreateTopicRequestHeader,
        DeleteTopicRequestHeader,
        EndTransactionRequestHeader,
        GetConsumerListByGroupRequestHeader,
        NotifyConsumerIdsChangedRequestHeader,
        UnregisterClientRequestHeader,
        AddWritePermOfBrokerRequestHeader,
        AddWritePermOfBrokerResponseHeader,
        BrokerHeartbeatRequestHeader,
        DeleteKvConfigRequestHeader,
        DeleteTopicFromNamesrvRequestHeader,
        GetKvConfigRequestHeader,
        GetKvConfigResponseHeader,
        GetKvListByNamespaceRequestHeader,
        GetRouteInfoRequestHeader,
        GetTopicsByClusterRequestHeader,
        PutKvConfigRequestHeader,
        QueryDataVersionRequestHeader,
        QueryDataVersionResponseHeader,
        RegisterBrokerRequestHeader,
        RegisterBrokerResponseHeader,
        RegisterTopicRequestHeader,
        UnregisterBrokerRequestHeader,
        WipeWritePermOfBrokerRequestHeader,
        WipeWritePermOfBrokerResponseHeader,
        GetEarliestMsgStoretimeRequestHeader,
        GetEarliestMsgStoretimeResponseHeader,
        GetMaxOffsetRequestHeader,
        GetMaxOffsetResponseHeader,
        GetMinOffsetRequestHeader,
        GetMinOffsetResponseHeader,
        QueryConsumerOffsetRequestHeader,
        QueryConsumerOffsetResponseHeader,
        SearchOffsetRequestHeader,
        SearchOffsetResponseHeader,
        UpdateConsumerOffsetRequestHeader,
        PullMessageRequestHeader,
        PullMessageResponseHeader,
        QueryMessageRequestHeader,
        QueryMessageResponseHeader,
        ViewMessageRequestHeader,
        SendMessageRequestHeader,
        SendMessageRequestHeaderV2,
        SendMessageResponseHeader,
    );
}

fn typed_header_round_trips<H: CommandHeader + PartialEq + std::fmt::Debug>(fields: &ExtFields) {
    let Ok(header) = H::from_ext_fields(fields) else {
        return;
    };
    let mut written = ExtFields::new();
    header.to_ext_fields(&mut written);
    match H::from_ext_fields(&written) {
        Ok(again) => assert_eq!(again, header, "{} from {written:?}", std::any::type_name::<H>()),
        Err(err) => panic!("{} does not read its own fields: {err}", std::any::type_name::<H>()),
    }
}

/// A command built from fuzz bytes; round-trips through both header serializations.
#[derive(Debug, Arbitrary)]
pub struct ArbitraryCommand {
    binary: bool,
    code: i16,
    language: u8,
    version: i16,
    opaque: i32,
    flag: i32,
    remark: Option<String>,
    ext_fields: Option<ExtFields>,
    body: Vec<u8>,
}

impl ArbitraryCommand {
    /// The command; [`command_round_trips`] knows what the binary wire drops.
    #[must_use]
    pub fn command(self) -> RemotingCommand {
        let serialize_type =
            if self.binary { SerializeType::RocketMq } else { SerializeType::Json };
        RemotingCommand {
            code: i32::from(self.code),
            language: LanguageCode::from_code(self.language),
            version: i32::from(self.version),
            opaque: self.opaque,
            flag: self.flag,
            remark: self.remark,
            ext_fields: self.ext_fields,
            body: Bytes::from(self.body),
            serialize_type,
        }
    }
}

/// Decodes `header` with both header decoders; round-trips whatever decodes.
pub fn decode_headers(header: &[u8]) {
    // The plain JSON decoder (the fast path) must agree with the tree wherever it answers.
    if let Some(plain) = header_json::decode_plain(header) {
        match header_json::decode_tree(header) {
            Ok(tree) => assert_eq!(plain, tree, "plain and tree decoders disagree"),
            Err(err) => panic!("the plain decoder accepted what the tree rejects: {err}"),
        }
    }
    for command in
        [header_json::decode(header), header_binary::decode(header)].into_iter().flatten()
    {
        command_round_trips(&command);
        command_crosses_serializations(&command);
        if let Some(fields) = &command.ext_fields {
            typed_headers_round_trip(command.code, fields);
        }
    }
}
