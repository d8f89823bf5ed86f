//! The tokio transport over loopback: request/response matching, oneway, timeouts, zero-copy
//! chunked bodies, server push, bad input on one connection while another is served,
//! connection limit, idle timeout and graceful shutdown.
#![cfg(all(test, feature = "tokio"))]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ferromq_remoting::transport::{
    Connection, Handler, NotSupported, RemotingClient, Reply, TransportConfig, TransportError,
    serve,
};
use ferromq_remoting::{FrameDecoder, RemotingCommand, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const ECHO: i32 = 1000;
const SLOW: i32 = 1001;
const CHUNKED: i32 = 1002;
const ONEWAY_COUNT: i32 = 1003;
const PUSH_BACK: i32 = 1004;
const PUSHED: i32 = 2000;

/// Echoes bodies, sleeps on request, counts oneways, answers with chunked bodies and asks
/// the client something over the same connection.
#[derive(Default)]
struct TestServer {
    oneways: AtomicUsize,
    closed: AtomicUsize,
}

impl Handler for TestServer {
    async fn handle(&self, connection: Connection, request: RemotingCommand) -> Option<Reply> {
        let ok = |body: Bytes| RemotingCommand::response_to(&request, 0, None).with_body(body);
        match request.code {
            ECHO => Some(ok(request.body.clone()).into()),
            SLOW => {
                let millis = request.ext_field_as::<i64>("millis").unwrap_or(0).unsigned_abs();
                tokio::time::sleep(Duration::from_millis(millis)).await;
                Some(ok(request.body.clone()).into())
            }
            CHUNKED => {
                let chunks = vec![
                    Bytes::from_static(b"first-"),
                    Bytes::new(),
                    Bytes::from_static(b"second-"),
                    Bytes::from(vec![b'x'; 100_000]),
                ];
                Some(Reply::with_chunks(ok(Bytes::from_static(b"head-")), chunks))
            }
            ONEWAY_COUNT => {
                self.oneways.fetch_add(1, Ordering::SeqCst);
                None
            }
            PUSH_BACK => {
                // Ask the client over the connection it came in on, answer with its reply.
                let question = RemotingCommand::request(PUSHED).with_body(request.body.clone());
                let answer = connection.request(question, Duration::from_secs(5)).await.ok()?;
                Some(ok(answer.body).into())
            }
            _ => Some(Reply::code_not_supported(&request)),
        }
    }

    fn on_close(&self, _connection: &Connection) {
        self.closed.fetch_add(1, Ordering::SeqCst);
    }
}

/// Serves requests the server pushes: answers PUSHED with the body reversed.
struct PushedHandler;

impl Handler for PushedHandler {
    async fn handle(&self, _connection: Connection, request: RemotingCommand) -> Option<Reply> {
        if request.code != PUSHED {
            return Some(Reply::code_not_supported(&request));
        }
        let mut body = request.body.to_vec();
        body.reverse();
        Some(RemotingCommand::response_to(&request, 0, None).with_body(body).into())
    }
}

struct Running {
    addr: String,
    server: Arc<TestServer>,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<ferromq_remoting::transport::ServerHandle>,
}

#[expect(clippy::unwrap_used, reason = "test set-up")]
async fn start(config: TransportConfig) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = Arc::new(TestServer::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(serve(listener, server.clone(), config, async {
        drop(stopped.await);
    }));
    Running { addr, server, stop: Some(stop), done }
}

fn echo(body: &str) -> RemotingCommand {
    RemotingCommand::request(ECHO).with_body(body.as_bytes().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_mixed_requests_match_by_opaque() {
    let running = start(TransportConfig::default()).await;
    let client = Arc::new(RemotingClient::default());
    let mut tasks = Vec::new();
    for worker in 0..20 {
        let client = client.clone();
        let addr = running.addr.clone();
        tasks.push(tokio::spawn(async move {
            let mut answered = 0;
            let mut timed_out = 0;
            for i in 0..500 {
                let body = format!("w{worker}-r{i}");
                match i % 10 {
                    // One in ten is oneway.
                    0 => {
                        let oneway = RemotingCommand::request(ONEWAY_COUNT);
                        client.invoke_oneway(&addr, oneway).await.unwrap();
                    }
                    // One in fifty sleeps past its timeout.
                    5 if i % 50 == 5 => {
                        let mut slow = RemotingCommand::request(SLOW).with_body(body.clone());
                        slow.set_ext_field("millis", "300");
                        let result = client.invoke(&addr, slow, Duration::from_millis(20)).await;
                        assert!(
                            matches!(result, Err(TransportError::Timeout { .. })),
                            "{result:?}"
                        );
                        timed_out += 1;
                    }
                    _ => {
                        let response = client
                            .invoke(&addr, echo(&body), Duration::from_secs(10))
                            .await
                            .unwrap();
                        assert!(response.is_response());
                        assert_eq!(response.body, body.as_bytes(), "response matched by opaque");
                        answered += 1;
                    }
                }
            }
            (answered, timed_out)
        }));
    }
    let mut answered = 0;
    let mut timed_out = 0;
    for task in tasks {
        let (a, t) = task.await.unwrap();
        answered += a;
        timed_out += t;
    }
    assert_eq!(answered + timed_out + 20 * 50, 10_000);
    assert_eq!(timed_out, 20 * 10);
    // Oneways are served in their own tasks: wait until all are counted.
    for _ in 0..200 {
        if running.server.oneways.load(Ordering::SeqCst) == 1000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(running.server.oneways.load(Ordering::SeqCst), 1000);
    // The late answers of the timed-out requests arrive and are dropped: still healthy.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let response =
        client.invoke(&running.addr, echo("after"), Duration::from_secs(5)).await.unwrap();
    assert_eq!(response.body, &b"after"[..]);
}

#[tokio::test]
async fn chunked_reply_arrives_as_one_body() {
    let running = start(TransportConfig::default()).await;
    let client = RemotingClient::default();
    let request = RemotingCommand::request(CHUNKED);
    let response = client.invoke(&running.addr, request, Duration::from_secs(5)).await.unwrap();
    let mut expected = b"head-first-second-".to_vec();
    expected.extend(std::iter::repeat_n(b'x', 100_000));
    assert_eq!(response.body, expected);
}

#[tokio::test]
async fn unknown_code_is_answered_not_supported() {
    let running = start(TransportConfig::default()).await;
    let client = RemotingClient::default();
    let response = client
        .invoke(&running.addr, RemotingCommand::request(9999), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(response.code, ResponseCode::REQUEST_CODE_NOT_SUPPORTED.code());
    assert_eq!(response.remark.as_deref(), Some(" request type 9999 not supported"));
}

#[tokio::test]
async fn server_pushes_a_request_to_the_client_on_the_same_connection() {
    let running = start(TransportConfig::default()).await;
    let client = RemotingClient::new(PushedHandler, TransportConfig::default());
    let request = RemotingCommand::request(PUSH_BACK).with_body(&b"abc"[..]);
    let response = client.invoke(&running.addr, request, Duration::from_secs(5)).await.unwrap();
    assert_eq!(response.body, &b"cba"[..]);
}

#[tokio::test]
async fn client_reconnects_after_the_connection_dies() {
    let running = start(TransportConfig::default()).await;
    let client = RemotingClient::default();
    let first = client.connection(&running.addr).await.unwrap();
    assert_eq!(client.connection(&running.addr).await.unwrap(), first, "reused");
    first.close();
    let response =
        client.invoke(&running.addr, echo("again"), Duration::from_secs(5)).await.unwrap();
    assert_eq!(response.body, &b"again"[..]);
    assert_ne!(client.connection(&running.addr).await.unwrap(), first, "re-dialled");
}

#[tokio::test]
async fn connect_failure_is_a_clear_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let client = RemotingClient::default();
    let error = client.invoke(&addr, echo("x"), Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(error, TransportError::Connect { .. }), "{error}");
}

/// Each class of malformed input, sent raw on its own connection.
#[expect(clippy::unwrap_used, reason = "test input")]
fn malformed_inputs() -> Vec<(&'static str, Vec<u8>)> {
    let mut valid = BytesMut::new();
    echo("x").encode(&mut valid).unwrap();
    let valid = valid.to_vec();
    let mut wrong_type = valid.clone();
    wrong_type[4] = 7;
    let mut header_too_long = valid.clone();
    header_too_long[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
    let json = br#"{"code":1000,"opaque":1,"flag":0"#; // unterminated
    let mut invalid_json = Vec::new();
    let length = u32::try_from(4 + json.len()).unwrap();
    invalid_json.extend_from_slice(&length.to_be_bytes());
    invalid_json.extend_from_slice(&u32::try_from(json.len()).unwrap().to_be_bytes());
    invalid_json.extend_from_slice(json);
    vec![
        ("negative length", (-5i32).to_be_bytes().to_vec()),
        ("length below the header", 2i32.to_be_bytes().to_vec()),
        ("oversize length", (64 * 1024 * 1024i32).to_be_bytes().to_vec()),
        ("unknown serialize type", wrong_type),
        ("header longer than the frame", header_too_long),
        ("invalid JSON header", invalid_json),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_closes_only_its_connection() {
    let running = start(TransportConfig::default()).await;
    let healthy = RemotingClient::default();
    healthy.invoke(&running.addr, echo("before"), Duration::from_secs(5)).await.unwrap();
    for (class, bytes) in malformed_inputs() {
        let mut raw = TcpStream::connect(&running.addr).await.unwrap();
        raw.write_all(&bytes).await.unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{class}: connection not closed: {read:?}");
        let response = healthy
            .invoke(&running.addr, echo(class), Duration::from_secs(5))
            .await
            .unwrap_or_else(|error| panic!("{class}: healthy client failed: {error}"));
        assert_eq!(response.body, class.as_bytes());
    }
    // A truncated frame followed by EOF: the server just sees the peer go away.
    let mut raw = TcpStream::connect(&running.addr).await.unwrap();
    let mut valid = BytesMut::new();
    echo("truncated").encode(&mut valid).unwrap();
    raw.write_all(&valid[..valid.len() - 3]).await.unwrap();
    raw.shutdown().await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0))), "truncated frame answered: {read:?}");
    healthy.invoke(&running.addr, echo("still"), Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn raw_frames_in_both_serializations_are_answered_in_kind() {
    let running = start(TransportConfig::default()).await;
    for serialize_type in
        [ferromq_remoting::SerializeType::Json, ferromq_remoting::SerializeType::RocketMq]
    {
        let mut raw = TcpStream::connect(&running.addr).await.unwrap();
        let mut request = echo("kind");
        request.serialize_type = serialize_type;
        request.opaque = 77;
        let mut wire = BytesMut::new();
        request.encode(&mut wire).unwrap();
        // Two requests in one write, the second split across writes.
        request.opaque = 78;
        request.encode(&mut wire).unwrap();
        let split = wire.len() - 5;
        raw.write_all(&wire[..split]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        raw.write_all(&wire[split..]).await.unwrap();
        let mut buf = BytesMut::new();
        let mut opaques = Vec::new();
        while opaques.len() < 2 {
            raw.read_buf(&mut buf).await.unwrap();
            while let Some(frame) = FrameDecoder::default().decode(&mut buf).unwrap() {
                let response = RemotingCommand::from_frame(frame).unwrap();
                assert_eq!(response.serialize_type, serialize_type);
                assert!(response.is_response());
                assert_eq!(response.body, &b"kind"[..]);
                opaques.push(response.opaque);
            }
        }
        opaques.sort_unstable();
        assert_eq!(opaques, [77, 78]);
    }
}

/// A client that sends much and reads nothing for a while fills the socket: the server's
/// answers, written in part by the connection's reader and finished by its writer, and queued
/// behind them, must still arrive whole, each exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_to_a_client_that_stops_reading_arrive_whole() {
    const REQUESTS: i32 = 48;
    let running = start(TransportConfig::default()).await;
    let mut raw = TcpStream::connect(&running.addr).await.unwrap();
    let mut wire = BytesMut::new();
    for opaque in 0..REQUESTS {
        // 256 KiB bodies, each byte naming its request.
        let body = vec![b'a' + (opaque % 26) as u8; 256 * 1024];
        let mut request = RemotingCommand::request(ECHO).with_body(body);
        request.serialize_type = ferromq_remoting::SerializeType::RocketMq;
        request.opaque = opaque;
        request.encode(&mut wire).unwrap();
    }
    let (mut reader, mut writer) = raw.split();
    let send = async {
        // In pieces, so that answers are due while the client still writes and not reads.
        for piece in wire.chunks(1 << 20) {
            writer.write_all(piece).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    send.await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut buf = BytesMut::new();
    let mut seen = vec![false; REQUESTS as usize];
    let mut answers = 0;
    while answers < REQUESTS {
        let read = tokio::time::timeout(Duration::from_secs(10), reader.read_buf(&mut buf)).await;
        assert!(read.unwrap().unwrap() > 0, "the server closed after {answers} answers");
        while let Some(frame) = FrameDecoder::default().decode(&mut buf).unwrap() {
            let response = RemotingCommand::from_frame(frame).unwrap();
            let opaque = response.opaque;
            assert!(response.is_response() && (0..REQUESTS).contains(&opaque));
            assert!(!std::mem::replace(&mut seen[opaque as usize], true), "{opaque} twice");
            let expected = b'a' + (opaque % 26) as u8;
            assert_eq!(response.body.len(), 256 * 1024);
            assert!(response.body.iter().all(|&byte| byte == expected), "{opaque} garbled");
            answers += 1;
        }
    }
}

#[tokio::test]
async fn connection_limit_closes_extra_connections() {
    let running = start(TransportConfig { max_connections: 2, ..TransportConfig::default() }).await;
    let a = RemotingClient::default();
    let b = RemotingClient::default();
    a.invoke(&running.addr, echo("a"), Duration::from_secs(5)).await.unwrap();
    b.invoke(&running.addr, echo("b"), Duration::from_secs(5)).await.unwrap();
    let c = RemotingClient::default();
    let error = c.invoke(&running.addr, echo("c"), Duration::from_secs(5)).await.unwrap_err();
    assert!(matches!(error, TransportError::Closed { .. }), "{error}");
    a.close_all();
    // The slot frees once the server notices the close.
    let mut served = false;
    for _ in 0..100 {
        if c.invoke(&running.addr, echo("c"), Duration::from_secs(5)).await.is_ok() {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "a freed slot is reused");
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let config = TransportConfig { idle_timeout: Duration::from_millis(200), ..Default::default() };
    let running = start(config).await;
    let client = RemotingClient::default();
    let connection = client.connection(&running.addr).await.unwrap();
    // Activity keeps it open...
    for _ in 0..4 {
        client.invoke(&running.addr, echo("ping"), Duration::from_secs(5)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!connection.is_closed());
    // ...silence closes it, and the handler hears of it.
    tokio::time::timeout(Duration::from_secs(5), connection.closed()).await.unwrap();
    assert_eq!(running.server.closed.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_answers_requests_in_flight() {
    let mut running = start(TransportConfig::default()).await;
    let client = Arc::new(RemotingClient::default());
    let mut slow = RemotingCommand::request(SLOW).with_body(&b"drained"[..]);
    slow.set_ext_field("millis", "300");
    let in_flight = {
        let client = client.clone();
        let addr = running.addr.clone();
        tokio::spawn(async move { client.invoke(&addr, slow, Duration::from_secs(5)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    running.stop.take().unwrap().send(()).unwrap();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.body, &b"drained"[..]);
    let report = running.done.await.unwrap();
    assert_eq!(report.accepted, 1);
    // The listener is gone.
    assert!(TcpStream::connect(&running.addr).await.is_err());
}

#[tokio::test]
async fn too_many_in_flight_is_answered_system_busy() {
    let config = TransportConfig { max_in_flight_per_connection: 2, ..Default::default() };
    let running = start(config).await;
    let client = Arc::new(RemotingClient::<NotSupported>::default());
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let client = client.clone();
        let addr = running.addr.clone();
        let mut slow = RemotingCommand::request(SLOW);
        slow.set_ext_field("millis", "300");
        tasks.push(tokio::spawn(async move {
            client.invoke(&addr, slow, Duration::from_secs(5)).await.unwrap().code
        }));
    }
    let mut codes = Vec::new();
    for task in tasks {
        codes.push(task.await.unwrap());
    }
    let busy = codes.iter().filter(|code| **code == ResponseCode::SYSTEM_BUSY.code()).count();
    assert_eq!(busy, 4, "{codes:?}");
    assert_eq!(codes.iter().filter(|code| **code == 0).count(), 2);
}
