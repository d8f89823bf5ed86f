//! The broker over real TCP: golden request frames captured from three real clients, a
//! produce/consume round trip, long polling, retry → DLQ through the delay levels, consumer
//! notifications, restart with persisted metadata, and bad input on one connection.
#![cfg(test)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ferromq_broker::{Broker, BrokerConfig};
use ferromq_message::record::decode_messages;
use ferromq_remoting::bodies::{
    ConsumeFromWhere, ConsumeType, ConsumerData, HeartbeatData, JsonBody, MessageModel,
    SubscriptionData,
};
use ferromq_remoting::headers::{
    ConsumerSendMsgBackRequestHeader, PullMessageRequestHeader, QueryConsumerOffsetRequestHeader,
    SendMessageRequestHeaderV2, UpdateConsumerOffsetRequestHeader,
};
use ferromq_remoting::transport::{Connection, Handler, RemotingClient, Reply, TransportConfig};
use ferromq_remoting::{FrameDecoder, RemotingCommand, RequestCode, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

const TIMEOUT: Duration = Duration::from_secs(10);

struct Running {
    addr: String,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.done.await.unwrap();
    }
}

fn config(dir: &Path) -> BrokerConfig {
    let mut config = BrokerConfig::with_store_dir(dir);
    config.namesrv_addr.clear();
    config.apply("mappedFileSizeCommitLog", "1048576").unwrap();
    config.apply("mappedFileSizeConsumeQueue", "6000").unwrap();
    config.apply("messageDelayLevel", "1s 2s").unwrap();
    config
}

async fn start(config: BrokerConfig) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let broker = Broker::open(config).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        ferromq_broker::run(broker, listener, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    Running { addr, stop: Some(stop), done }
}

fn send_request(topic: &str, queue_id: i32, tags: &str, body: &[u8]) -> RemotingCommand {
    let header = SendMessageRequestHeaderV2 {
        a: "PID_test".into(),
        b: topic.into(),
        c: "TBW102".into(),
        d: 4,
        e: queue_id,
        f: 0,
        g: 1_700_000_000_000,
        h: 0,
        i: Some(format!("TAGS\u{1}{tags}\u{2}KEYS\u{1}key-{tags}\u{2}")),
        j: Some(0),
        k: Some(false),
        l: None,
        m: None,
        n: None,
    };
    RemotingCommand::request(RequestCode::SEND_MESSAGE_V2.code())
        .with_header(&header)
        .with_body(body.to_vec())
}

fn pull_request(
    group: &str,
    topic: &str,
    queue_id: i32,
    offset: i64,
    subscription: &str,
    suspend_ms: i64,
) -> RemotingCommand {
    let header = PullMessageRequestHeader {
        consumer_group: group.into(),
        topic: topic.into(),
        queue_id,
        queue_offset: offset,
        max_msg_nums: 32,
        sys_flag: 0x2 | 0x4,
        commit_offset: 0,
        suspend_timeout_millis: suspend_ms,
        subscription: Some(subscription.into()),
        sub_version: 0,
        expression_type: Some("TAG".into()),
        max_msg_bytes: None,
        request_source: None,
        proxy_froward_client_id: None,
        broker_name: None,
    };
    RemotingCommand::request(RequestCode::PULL_MESSAGE.code()).with_header(&header)
}

fn heartbeat(client_id: &str, group: &str, topic: &str) -> RemotingCommand {
    let data = HeartbeatData {
        client_id: client_id.into(),
        producer_data_set: Vec::new(),
        consumer_data_set: vec![ConsumerData {
            group_name: group.into(),
            consume_type: ConsumeType::ConsumePassively,
            message_model: MessageModel::Clustering,
            consume_from_where: ConsumeFromWhere::ConsumeFromLastOffset,
            subscription_data_set: vec![SubscriptionData {
                class_filter_mode: false,
                topic: topic.into(),
                sub_string: "*".into(),
                tags_set: Vec::new(),
                code_set: Vec::new(),
                sub_version: i64::MAX,
                expression_type: "TAG".into(),
            }],
            unit_mode: false,
        }],
        heartbeat_fingerprint: 0,
        without_sub: false,
    };
    RemotingCommand::request(RequestCode::HEART_BEAT.code()).with_body(data.encode())
}

async fn invoke(
    client: &RemotingClient<impl Handler>,
    addr: &str,
    request: RemotingCommand,
) -> RemotingCommand {
    client.invoke(addr, request, TIMEOUT).await.unwrap()
}

fn messages(response: &RemotingCommand) -> Vec<ferromq_message::message::MessageExt> {
    decode_messages(&response.body, true).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_then_consume_with_tag_filter_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(config(dir.path())).await;
    let client = RemotingClient::default();
    for i in 0..20 {
        let tags = if i % 2 == 0 { "even" } else { "odd" };
        let response = invoke(
            &client,
            &running.addr,
            send_request("Orders", 1, tags, format!("m{i}").as_bytes()),
        )
        .await;
        assert_eq!(response.code, 0, "{:?}", response.remark);
        assert_eq!(response.ext_field_as::<i64>("queueOffset"), Some(i));
        assert_eq!(response.ext_field("queueId"), Some("1"));
        assert_eq!(response.ext_field("MSG_REGION"), Some("DefaultRegion"));
        assert_eq!(response.ext_field("msgId").map(str::len), Some(32));
    }
    // Auto-created from TBW102 with min(4, 8) queues.
    let pulled =
        invoke(&client, &running.addr, pull_request("G1", "Orders", 1, 0, "even", 0)).await;
    assert_eq!(pulled.code, 0, "{:?}", pulled.remark);
    assert_eq!(pulled.remark.as_deref(), Some("FOUND"));
    let found = messages(&pulled);
    assert_eq!(found.len(), 10, "only the even tags");
    assert!(found.iter().all(|m| m.message.tags() == Some("even")));
    assert_eq!(&found[0].message.body[..], b"m0");
    assert!(found[0].message.property("CLUSTER").is_some());
    assert!(found[0].message.uniq_key().is_some(), "broker adds UNIQ_KEY");
    assert_eq!(pulled.ext_field_as::<i64>("nextBeginOffset"), Some(20));
    assert_eq!(pulled.ext_field_as::<i64>("maxOffset"), Some(20));
    // Caught up: nothing more, no suspension requested → PULL_NOT_FOUND at once.
    let mut caught_up = pull_request("G1", "Orders", 1, 20, "*", 0);
    caught_up.set_ext_field("sysFlag", "4");
    let response = invoke(&client, &running.addr, caught_up).await;
    assert_eq!(response.code, ResponseCode::PULL_NOT_FOUND.code());
    // Offsets: nothing committed yet → 0 (first message in memory); commit, query back.
    let query = QueryConsumerOffsetRequestHeader {
        consumer_group: "G1".into(),
        topic: "Orders".into(),
        queue_id: 1,
        set_zero_if_not_found: None,
        broker_name: None,
    };
    let response =
        invoke(&client, &running.addr, RemotingCommand::request(14).with_header(&query)).await;
    assert_eq!((response.code, response.ext_field("offset")), (0, Some("0")));
    let update = UpdateConsumerOffsetRequestHeader {
        consumer_group: "G1".into(),
        topic: "Orders".into(),
        queue_id: 1,
        commit_offset: 17,
        broker_name: None,
    };
    client
        .invoke_oneway(&running.addr, RemotingCommand::request(15).with_header(&update))
        .await
        .unwrap();
    let mut committed = None;
    for _ in 0..100 {
        let response =
            invoke(&client, &running.addr, RemotingCommand::request(14).with_header(&query)).await;
        committed = response.ext_field_as::<i64>("offset");
        if committed == Some(17) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(committed, Some(17));
    // An out-of-range queue is refused with Java's wording.
    let response = invoke(&client, &running.addr, send_request("Orders", 9, "x", b"x")).await;
    assert_eq!(response.code, ResponseCode::INVALID_PARAMETER.code());
    assert!(response.remark.unwrap().starts_with("request queueId[9] is illegal"));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polling_answers_when_a_message_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(config(dir.path())).await;
    let client = Arc::new(RemotingClient::default());
    // Create the topic.
    invoke(&client, &running.addr, send_request("Polled", 0, "a", b"first")).await;
    let started = Instant::now();
    let held = {
        let client = client.clone();
        let addr = running.addr.clone();
        tokio::spawn(async move {
            client
                .invoke(&addr, pull_request("G", "Polled", 0, 1, "*", 8000), TIMEOUT)
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!held.is_finished(), "the pull is held");
    invoke(&client, &running.addr, send_request("Polled", 0, "a", b"second")).await;
    let response = held.await.unwrap();
    let waited = started.elapsed();
    assert_eq!(response.code, 0, "{:?}", response.remark);
    assert_eq!(&messages(&response)[0].message.body[..], b"second");
    assert!(waited < Duration::from_secs(4), "woken by the arrival, not the timeout: {waited:?}");
    // A held pull whose queue gets nothing is answered PULL_NOT_FOUND at its timeout.
    let started = Instant::now();
    let response =
        invoke(&client, &running.addr, pull_request("G", "Polled", 0, 2, "*", 500)).await;
    assert_eq!(response.code, ResponseCode::PULL_NOT_FOUND.code());
    assert!(started.elapsed() >= Duration::from_millis(450));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_back_retries_through_delay_then_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(config(dir.path())).await;
    let client = RemotingClient::default();
    let sent = invoke(&client, &running.addr, send_request("Jobs", 0, "t", b"job")).await;
    assert_eq!(sent.code, 0);
    let pulled =
        invoke(&client, &running.addr, pull_request("Workers", "Jobs", 0, 0, "*", 0)).await;
    let original = &messages(&pulled)[0];
    let back = |offset: i64, delay_level: i32| {
        let header = ConsumerSendMsgBackRequestHeader {
            offset,
            group: "Workers".into(),
            delay_level,
            origin_msg_id: None,
            origin_topic: Some("Jobs".into()),
            unit_mode: None,
            max_reconsume_times: None,
        };
        RemotingCommand::request(RequestCode::CONSUMER_SEND_MSG_BACK.code()).with_header(&header)
    };
    // Level 1 = 1 s with this broker's table: lands in %RETRY%Workers after the delay.
    let response = invoke(&client, &running.addr, back(original.commit_log_offset, 1)).await;
    assert_eq!(response.code, 0, "{:?}", response.remark);
    let retry_topic = "%RETRY%Workers";
    let deadline = Instant::now() + Duration::from_secs(8);
    let retried = loop {
        let response =
            invoke(&client, &running.addr, pull_request("Workers", retry_topic, 0, 0, "*", 0))
                .await;
        if response.code == 0 {
            break messages(&response).remove(0);
        }
        assert!(Instant::now() < deadline, "retry never delivered: {:?}", response.remark);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(&retried.message.body[..], b"job");
    assert_eq!(retried.reconsume_times, 1);
    assert_eq!(retried.message.property("RETRY_TOPIC"), Some("Jobs"));
    assert!(retried.store_timestamp - original.store_timestamp >= 1000, "waited its level");
    // delayLevel -1 sends it straight to the DLQ.
    let response = invoke(&client, &running.addr, back(retried.commit_log_offset, -1)).await;
    assert_eq!(response.code, 0);
    let dlq =
        invoke(&client, &running.addr, pull_request("Workers", "%DLQ%Workers", 0, 0, "*", 0)).await;
    assert_eq!(dlq.code, 0, "{:?}", dlq.remark);
    let dead = &messages(&dlq)[0];
    assert_eq!(dead.reconsume_times, 2);
    assert_eq!(dead.message.property("ORIGIN_MESSAGE_ID"), Some(original.msg_id.as_str()));
    running.stop().await;
}

/// Records requests the broker pushes.
struct Pushes(mpsc::UnboundedSender<RemotingCommand>);

impl Handler for Pushes {
    async fn handle(&self, _connection: Connection, request: RemotingCommand) -> Option<Reply> {
        let _ = self.0.send(request);
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_are_listed_and_notified_of_changes() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(config(dir.path())).await;
    let (pushed, mut pushes) = mpsc::unbounded_channel();
    let first = RemotingClient::new(Pushes(pushed), TransportConfig::default());
    let second = RemotingClient::default();
    assert_eq!(invoke(&first, &running.addr, heartbeat("c1", "Group", "Orders")).await.code, 0);
    assert_eq!(invoke(&second, &running.addr, heartbeat("c2", "Group", "Orders")).await.code, 0);
    let notice = tokio::time::timeout(TIMEOUT, pushes.recv()).await.unwrap().unwrap();
    assert_eq!(notice.code, RequestCode::NOTIFY_CONSUMER_IDS_CHANGED.code());
    assert_eq!(notice.ext_field("consumerGroup"), Some("Group"));
    let list = RemotingCommand::request(38).with_header(
        &ferromq_remoting::headers::GetConsumerListByGroupRequestHeader {
            consumer_group: "Group".into(),
        },
    );
    let response = invoke(&second, &running.addr, list.clone()).await;
    let mut ids = ferromq_remoting::bodies::ConsumerListByGroupResponseBody::decode(&response.body)
        .unwrap()
        .consumer_id_list;
    ids.sort();
    assert_eq!(ids, ["c1", "c2"]);
    // The retry topic was created by the heartbeat.
    let pull =
        invoke(&second, &running.addr, pull_request("Group", "%RETRY%Group", 0, 0, "*", 0)).await;
    assert_eq!(pull.code, ResponseCode::PULL_NOT_FOUND.code());
    // A member leaving (connection closed) is noticed and the others are told.
    tokio::time::sleep(Duration::from_millis(200)).await;
    while pushes.try_recv().is_ok() {}
    second.close_all();
    let notice = tokio::time::timeout(TIMEOUT, pushes.recv()).await.unwrap().unwrap();
    assert_eq!(notice.code, RequestCode::NOTIFY_CONSUMER_IDS_CHANGED.code());
    let response = invoke(&first, &running.addr, list).await;
    let ids = ferromq_remoting::bodies::ConsumerListByGroupResponseBody::decode(&response.body)
        .unwrap()
        .consumer_id_list;
    assert_eq!(ids, ["c1"]);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_messages_topics_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(config(dir.path())).await;
    let client = RemotingClient::default();
    for i in 0..5 {
        invoke(&client, &running.addr, send_request("Durable", 2, "t", format!("d{i}").as_bytes()))
            .await;
    }
    let update = UpdateConsumerOffsetRequestHeader {
        consumer_group: "G".into(),
        topic: "Durable".into(),
        queue_id: 2,
        commit_offset: 3,
        broker_name: None,
    };
    assert_eq!(
        invoke(&client, &running.addr, RemotingCommand::request(15).with_header(&update))
            .await
            .code,
        0
    );
    client.close_all();
    running.stop().await;
    assert!(!dir.path().join("abort").exists(), "clean shutdown removes the abort file");
    assert!(dir.path().join("config/topics.json").exists());
    assert!(dir.path().join("config/consumerOffset.json").exists());

    let running = start(config(dir.path())).await;
    let client = RemotingClient::default();
    let query = QueryConsumerOffsetRequestHeader {
        consumer_group: "G".into(),
        topic: "Durable".into(),
        queue_id: 2,
        set_zero_if_not_found: None,
        broker_name: None,
    };
    let response =
        invoke(&client, &running.addr, RemotingCommand::request(14).with_header(&query)).await;
    assert_eq!(response.ext_field("offset"), Some("3"));
    let pulled = invoke(&client, &running.addr, pull_request("G", "Durable", 2, 3, "*", 0)).await;
    let bodies: Vec<Vec<u8>> =
        messages(&pulled).into_iter().map(|m| m.message.body.to_vec()).collect();
    assert_eq!(bodies, [b"d3".to_vec(), b"d4".to_vec()]);
    running.stop().await;
}

/// Reads one response frame from a raw socket, skipping requests the broker pushes
/// (NOTIFY_CONSUMER_IDS_CHANGED after a heartbeat changes a group).
async fn read_response(stream: &mut TcpStream, buf: &mut BytesMut) -> Option<RemotingCommand> {
    loop {
        while let Some(frame) = FrameDecoder::default().decode(buf).unwrap() {
            let command = RemotingCommand::from_frame(frame).unwrap();
            if command.is_response() {
                return Some(command);
            }
            assert_eq!(command.code, RequestCode::NOTIFY_CONSUMER_IDS_CHANGED.code());
        }
        let read =
            tokio::time::timeout(Duration::from_secs(20), stream.read_buf(buf)).await.ok()?.ok()?;
        if read == 0 {
            return None;
        }
    }
}

/// Every captured frame of every client is decoded and answered as the Java broker
/// answers (name-server codes excepted: they belong to the name server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_frames_from_real_clients_are_answered() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/wire-samples");
    let dir = tempfile::tempdir().unwrap();
    let running = start(config(dir.path())).await;
    let mut checked = 0;
    for client in
        ["ali-ons-3.12.0", "rocketmq-client-cpp-via-python-0.4.4", "rocketmq-client-rust-1.0.0"]
    {
        let mut files: Vec<_> = std::fs::read_dir(samples.join(client))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "bin"))
            .collect();
        // Sends first (they create topics), heartbeats next (they register subscriptions,
        // as a client does before it pulls), then the rest in code order.
        let code_of = |path: &Path| -> i32 {
            path.file_name().unwrap().to_str().unwrap().split('-').next().unwrap().parse().unwrap()
        };
        files.sort_by_key(|path| {
            let code = code_of(path);
            let send = [10, 310, 320].contains(&code);
            (!send, code != 34, code == 36, code, path.clone())
        });
        let mut stream = TcpStream::connect(&running.addr).await.unwrap();
        let mut buf = BytesMut::new();
        for path in files {
            let code = code_of(&path);
            let frame = std::fs::read(&path).unwrap();
            let mut copy = BytesMut::from(&frame[..]);
            let request = RemotingCommand::from_frame(
                FrameDecoder::default().decode(&mut copy).unwrap().unwrap(),
            )
            .unwrap();
            if code == 11
                && request.ext_field_as::<i32>("sysFlag").is_some_and(|flag| flag & 0x4 == 0)
            {
                // Not every capture kept the consumer's heartbeat; register the subscription
                // the pull relies on, as the client did before pulling.
                let group = request.ext_field("consumerGroup").unwrap();
                let topic = request.ext_field("topic").unwrap();
                let mut wire = BytesMut::new();
                heartbeat("golden", group, topic).encode(&mut wire).unwrap();
                stream.write_all(&wire).await.unwrap();
                assert_eq!(read_response(&mut stream, &mut buf).await.unwrap().code, 0);
            }
            stream.write_all(&frame).await.unwrap();
            if request.is_oneway() {
                continue;
            }
            let response = read_response(&mut stream, &mut buf)
                .await
                .unwrap_or_else(|| panic!("{path:?}: no answer"));
            let name = path.display();
            assert!(response.is_response(), "{name}");
            assert_eq!(response.opaque, request.opaque, "{name}");
            let remark = response.remark.clone().unwrap_or_default();
            assert!(
                !remark.contains("RemotingCommandException"),
                "{name}: header rejected: {remark}"
            );
            let expected: &[ResponseCode] = match code {
                105 | 106 => &[ResponseCode::REQUEST_CODE_NOT_SUPPORTED],
                10 | 310 | 320 | 34 | 35 | 17 | 15 | 30 => &[ResponseCode::SUCCESS],
                14 => &[ResponseCode::SUCCESS, ResponseCode::QUERY_NOT_FOUND],
                11 => &[
                    ResponseCode::SUCCESS,
                    ResponseCode::PULL_NOT_FOUND,
                    ResponseCode::PULL_OFFSET_MOVED,
                ],
                38 => &[ResponseCode::SUCCESS, ResponseCode::SYSTEM_ERROR],
                // The captured offset points into the capturing broker's CommitLog.
                36 => &[ResponseCode::SUCCESS, ResponseCode::SYSTEM_ERROR],
                _ => &[ResponseCode::SUCCESS],
            };
            assert!(
                expected.iter().any(|code| code.code() == response.code),
                "{name}: code {} remark {remark:?}",
                response.code
            );
            if [10, 310].contains(&code) {
                assert!(response.ext_field("msgId").is_some(), "{name}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} frames checked");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_one_connection_leaves_others_served() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(config(dir.path())).await;
    let client = RemotingClient::default();
    invoke(&client, &running.addr, send_request("Safe", 0, "a", b"x")).await;
    let mut raw = TcpStream::connect(&running.addr).await.unwrap();
    raw.write_all(&[0, 0, 0, 12, 0, 0, 0, 8, b'{', b'x', b'x', b'x', 0, 0, 0, 0]).await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(TIMEOUT, raw.read_to_end(&mut rest)).await.unwrap();
    assert!(matches!(read, Ok(0) | Err(_)));
    // A heartbeat whose body is not JSON is answered, not fatal.
    let bad = RemotingCommand::request(34).with_body(&b"not json"[..]);
    let response = invoke(&client, &running.addr, bad).await;
    assert_eq!(response.code, ResponseCode::SYSTEM_ERROR.code());
    let response = invoke(&client, &running.addr, send_request("Safe", 0, "a", b"y")).await;
    assert_eq!(response.code, 0);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_held_pulls_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(config(dir.path())).await;
    let client = Arc::new(RemotingClient::default());
    invoke(&client, &running.addr, send_request("Held", 0, "a", b"x")).await;
    let held = {
        let client = client.clone();
        let addr = running.addr.clone();
        tokio::spawn(async move {
            client.invoke(&addr, pull_request("G", "Held", 0, 1, "*", 60_000), TIMEOUT).await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    running.stop().await;
    assert!(started.elapsed() < Duration::from_secs(5), "shutdown waited {:?}", started.elapsed());
    let answered = held.await.unwrap().unwrap();
    assert_eq!(answered.code, ResponseCode::PULL_NOT_FOUND.code());
}
