//! The remoting codec's cost per request, for the request every producer sends most: a
//! `SEND_MESSAGE_V2` decoded from its frame into the typed header, and its response header
//! built and encoded — in both header encodings (JSON, Java's default, and the binary
//! RocketMQ one). What the broker and the client spend per message besides the store
//! and the network.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, criterion_group, criterion_main};
use ferromq_remoting::headers::{
    CommandHeader, SendMessageRequestHeaderV2, SendMessageResponseHeader,
    decode_send_request_header,
};
use ferromq_remoting::{
    FrameDecoder, RemotingCommand, RequestCode, ResponseCode, SerializeType, frame::decode_frame,
};

/// A send as the Java client builds it: the V2 header's one-letter fields.
fn send_request(serialize_type: SerializeType) -> RemotingCommand {
    let header = SendMessageRequestHeaderV2 {
        a: "please_rename_unique_group_name".into(),
        b: "TopicTest".into(),
        c: "TBW102".into(),
        d: 4,
        e: 3,
        f: 0,
        g: 1_700_000_000_000,
        h: 0,
        i: Some(
            "KEYS\u{1}order-42\u{2}TAGS\u{1}TagA\u{2}WAIT\u{1}true\u{2}UNIQ_KEY\u{1}\
             7F0000010B2818B4AAC2453A2F7A0000\u{2}"
                .into(),
        ),
        j: Some(0),
        k: Some(false),
        l: Some(16),
        m: None,
        n: Some("broker-a".into()),
    };
    let mut command = RemotingCommand::request(RequestCode::SEND_MESSAGE_V2.code())
        .with_header(&header)
        .with_body(Bytes::from(vec![b'x'; 1024]));
    command.opaque = 42;
    command.serialize_type = serialize_type;
    command
}

fn encoded(command: &RemotingCommand) -> Bytes {
    let mut out = BytesMut::new();
    match command.encode(&mut out) {
        Ok(()) => out.freeze(),
        Err(err) => panic!("encode the request: {err}"),
    }
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("remoting/send");
    for (label, serialize_type) in
        [("json", SerializeType::Json), ("binary", SerializeType::RocketMq)]
    {
        let wire = encoded(&send_request(serialize_type));
        let decoder = match FrameDecoder::new(16 << 20) {
            Ok(decoder) => decoder,
            Err(err) => panic!("frame decoder: {err}"),
        };
        group.bench_function(format!("{label}/decode_request"), |b| {
            b.iter(|| {
                let mut buf = BytesMut::from(&wire[..]);
                let frame = match decoder.decode(black_box(&mut buf)) {
                    Ok(Some(frame)) => frame,
                    other => panic!("not one frame: {other:?}"),
                };
                let command = match RemotingCommand::from_frame(frame) {
                    Ok(command) => command,
                    Err(err) => panic!("decode: {err}"),
                };
                let Some(fields) = command.ext_fields.as_ref() else { panic!("no extFields") };
                black_box(decode_send_request_header(command.code, fields).map(|h| h.queue_id).ok())
            });
        });
        let request = send_request(serialize_type);
        group.bench_function(format!("{label}/encode_response"), |b| {
            b.iter(|| {
                let mut response =
                    RemotingCommand::response(ResponseCode::SUCCESS.code(), None::<String>);
                response.opaque = request.opaque;
                response.serialize_type = serialize_type;
                response.set_ext_field("MSG_REGION", "DefaultRegion");
                response.set_ext_field("TRACE_ON", "true");
                let header = SendMessageResponseHeader {
                    msg_id: "7F00000100002A9F0000000000012C40".into(),
                    queue_id: 3,
                    queue_offset: 123_456,
                    transaction_id: None,
                    batch_uniq_id: None,
                    recall_handle: None,
                };
                header.to_ext_fields(response.ext_fields.get_or_insert_with(Default::default));
                let mut out = BytesMut::with_capacity(256);
                match response.encode_header_prefix(0, &mut out) {
                    Ok(()) => black_box(out.len()),
                    Err(err) => panic!("encode: {err}"),
                }
            });
        });
    }
    // Reference: the frame split alone, no header parsing.
    let wire = encoded(&send_request(SerializeType::Json));
    group.bench_function("reference/frame_only", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&wire[..]);
            black_box(decode_frame(black_box(&mut buf)).ok().flatten().map(|f| f.body.len()))
        });
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
