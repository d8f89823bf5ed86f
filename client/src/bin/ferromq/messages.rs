//! `send`, `consume` and `query`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use ferromq_client::consumer::{
    ConsumeConcurrentlyStatus, ConsumeFromWhere, MessageModel, PushConsumer, PushConsumerConfig,
};
use ferromq_client::{
    Admin, ClientConfig, Error, Message, MessageExt, MessageListener, Producer, ProducerConfig,
    Result,
};
use serde_json::json;

use crate::output::{Output, parse_duration, print_message};

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Topic.
    #[arg(short = 't', long)]
    topic: String,
    /// Body text (default: "Hello ferromq N", N counting from 0).
    #[arg(long, conflicts_with = "size")]
    body: Option<String>,
    /// Random body of this many bytes instead.
    #[arg(long)]
    size: Option<usize>,
    /// Tag.
    #[arg(long)]
    tags: Option<String>,
    /// Keys, space-separated.
    #[arg(short = 'k', long)]
    keys: Option<String>,
    /// User property `name=value` (repeatable).
    #[arg(short = 'p', long = "property")]
    properties: Vec<String>,
    /// Delay level (1 = 1 s with default levels).
    #[arg(long)]
    delay: Option<i32>,
    /// Send to the queue chosen by this key's hash (ordered messages).
    #[arg(long)]
    sharding_key: Option<String>,
    /// How many messages.
    #[arg(short = 'c', long, default_value_t = 1)]
    count: u32,
    /// Producer group.
    #[arg(long, default_value = "ferromq_cli_producer")]
    group: String,
}

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Topic.
    #[arg(short = 't', long)]
    topic: String,
    /// Consumer group.
    #[arg(short = 'g', long, default_value = "ferromq_cli_consumer")]
    group: String,
    /// Tag expression.
    #[arg(short = 'e', long, default_value = "*")]
    expression: String,
    /// Every member receives every message.
    #[arg(long)]
    broadcast: bool,
    /// Start a new group at the first message (default: the last).
    #[arg(long)]
    from_first: bool,
    /// Stop after this many messages.
    #[arg(short = 'c', long)]
    count: Option<u64>,
    /// Stop after this long (e.g. 10s).
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Topic (required for key queries and UNIQ_KEY ids).
    #[arg(short = 't', long)]
    topic: Option<String>,
    /// Messages with this key.
    #[arg(short = 'k', long, conflicts_with = "id")]
    key: Option<String>,
    /// A message id: an offset message id, or a UNIQ_KEY (client msgId) with --topic.
    #[arg(short = 'i', long)]
    id: Option<String>,
    /// Most messages per broker for key queries.
    #[arg(long, default_value_t = 64)]
    max: i32,
}

pub async fn send(namesrv: &str, out: Output, args: SendArgs) -> Result<()> {
    let config = ProducerConfig {
        client: ClientConfig::with_namesrv(namesrv),
        ..ProducerConfig::new(&args.group)
    };
    let producer = Producer::new(config)?;
    producer.start().await?;
    let mut result = Ok(());
    for n in 0..args.count {
        let body: Vec<u8> = match (&args.body, args.size) {
            (Some(body), _) => body.clone().into_bytes(),
            (None, Some(size)) => (0..size).map(|i| b'a' + (i % 26) as u8).collect(),
            (None, None) => format!("Hello ferromq {n}").into_bytes(),
        };
        let mut message = Message::new(&args.topic, body);
        if let Some(tags) = &args.tags {
            message.set_tags(tags.clone());
        }
        if let Some(keys) = &args.keys {
            message.set_keys(keys.split(' ').filter(|k| !k.is_empty()));
        }
        for property in &args.properties {
            let Some((name, value)) = property.split_once('=') else {
                result =
                    Err(Error::InvalidArgument(format!("property {property:?} is not name=value")));
                break;
            };
            message.put_property(name, value);
        }
        if let Some(level) = args.delay {
            message.set_delay_level(level);
        }
        let sent = match &args.sharding_key {
            Some(key) => producer.send_orderly(message, key).await,
            None => producer.send(message).await,
        };
        match sent {
            Ok(sent) if out.json => out.json(&json!({
                "status": format!("{:?}", sent.status),
                "msgId": sent.msg_id,
                "offsetMsgId": sent.offset_msg_id,
                "brokerName": sent.message_queue.broker_name,
                "queueId": sent.message_queue.queue_id,
                "queueOffset": sent.queue_offset,
            })),
            Ok(sent) => println!(
                "{:?} msgId={} offsetMsgId={} queue={}[{}] offset={}",
                sent.status,
                sent.msg_id,
                sent.offset_msg_id,
                sent.message_queue.broker_name,
                sent.message_queue.queue_id,
                sent.queue_offset
            ),
            Err(error) => {
                result = Err(error);
                break;
            }
        }
    }
    producer.shutdown().await;
    result
}

pub async fn consume(namesrv: &str, out: Output, args: ConsumeArgs) -> Result<()> {
    let mut config = PushConsumerConfig {
        client: ClientConfig::with_namesrv(namesrv),
        ..PushConsumerConfig::new(&args.group)
    };
    if args.broadcast {
        config.message_model = MessageModel::Broadcasting;
    }
    if args.from_first {
        config.consume_from_where = ConsumeFromWhere::ConsumeFromFirstOffset;
    }
    config.consume_thread_count = 1;
    let received = Arc::new(AtomicU64::new(0));
    let limit = args.count;
    let (done, mut finished) = tokio::sync::watch::channel(false);
    let seen = received.clone();
    let listener = MessageListener::concurrently(move |messages: &[MessageExt], _: &mut _| {
        for message in messages {
            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
            if limit.is_some_and(|limit| n > limit) {
                return ConsumeConcurrentlyStatus::ReconsumeLater;
            }
            print_message(out, message);
            if limit == Some(n) {
                done.send_replace(true);
            }
        }
        ConsumeConcurrentlyStatus::ConsumeSuccess
    });
    let consumer = PushConsumer::new(config, listener)?;
    consumer.subscribe(&args.topic, &args.expression)?;
    consumer.start().await?;
    let stop = async {
        tokio::select! {
            _ = finished.wait_for(|done| *done) => {}
            () = sleep_or_forever(args.timeout) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    stop.await;
    consumer.shutdown().await;
    if !out.json {
        eprintln!("{} messages", received.load(Ordering::SeqCst).min(limit.unwrap_or(u64::MAX)));
    }
    Ok(())
}

async fn sleep_or_forever(timeout: Option<Duration>) {
    match timeout {
        Some(timeout) => tokio::time::sleep(timeout).await,
        None => std::future::pending().await,
    }
}

pub async fn query(namesrv: &str, out: Output, args: QueryArgs) -> Result<()> {
    let admin = Admin::new(ClientConfig::with_namesrv(namesrv))?;
    let found = match (&args.key, &args.id, &args.topic) {
        (Some(key), _, Some(topic)) => {
            admin.query_message_by_key(topic, key, args.max, 0, i64::MAX).await
        }
        (None, Some(id), Some(topic)) => admin.view_message_by_id(topic, id).await.map(|m| vec![m]),
        (None, Some(id), None) => admin.view_message(id).await.map(|m| vec![m]),
        (Some(_), _, None) => Err(Error::InvalidArgument("--key needs --topic".into())),
        (None, None, _) => Err(Error::InvalidArgument("give --key or --id".into())),
    };
    admin.shutdown();
    for message in found? {
        print_message(out, &message);
    }
    Ok(())
}
