// Interop check against a ferromq broker: produce N messages with tags and keys, then consume
// them with a push consumer; exits 0 when every message came back.
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rocketmq_client_rust::{
    ClientResult, ClientRuntime, ClientRuntimeConfig, ConsumeConcurrentlyContext,
    ConsumeConcurrentlyStatus, DefaultMQProducer, DefaultMQPushConsumer,
    MessageListenerConcurrently, MQPushConsumer,
};
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_observability::TelemetryRuntimeGuard;
use rocketmq_runtime::RuntimeOwner;

struct Listener(Arc<Mutex<HashSet<String>>>);

impl MessageListenerConcurrently for Listener {
    fn consume_message(
        &self,
        messages: &[&MessageExt],
        _context: &ConsumeConcurrentlyContext,
    ) -> ClientResult<ConsumeConcurrentlyStatus> {
        let mut seen = self.0.lock().unwrap();
        for m in messages {
            seen.insert(String::from_utf8_lossy(m.body().as_deref().unwrap_or(&[])).into_owned());
        }
        Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let namesrv = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9876".to_owned());
    let count: usize = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(50);
    let run = format!("{}", std::process::id());
    let topic = format!("rs_interop_{run}");
    let owner = RuntimeOwner::new()?;
    let telemetry = TelemetryRuntimeGuard::noop();
    let client_runtime = ClientRuntime::try_new(
        owner.root_context().component("interop"),
        ClientRuntimeConfig::default(),
        telemetry.handle(),
    )?;
    let rt = client_runtime.clone();
    let (result, report) = owner.block_on(async move {
        let result: Result<(), Box<dyn std::error::Error>> = async {
            let mut producer = DefaultMQProducer::builder(rt.clone())
                .producer_group(format!("PID_{run}"))
                .name_server_addr(namesrv.clone())
                .build();
            producer.start().await?;
            let mut sent = 0;
            for i in 0..count {
                let mut message = Message::new(topic.as_str(), format!("rs-{i}").as_bytes());
                message.set_tags(format!("tag{}", i % 3).into());
                message.set_keys(format!("key-{i}").into());
                let result = producer.send_with_timeout(message, 5000).await?;
                let _ = result;
                sent += 1;
            }
            producer.shutdown().await;
            let seen = Arc::new(Mutex::new(HashSet::new()));
            let mut consumer = DefaultMQPushConsumer::builder(rt.clone())
                .consumer_group(format!("GID_{run}"))
                .name_server_addr(namesrv.clone())
                .build();
            consumer.subscribe(topic.as_str(), "*").await?;
            consumer.register_message_listener_concurrently(Listener(seen.clone()));
            consumer.start().await?;
            let deadline = Instant::now() + Duration::from_secs(60);
            while seen.lock().unwrap().len() < sent && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let got = seen.lock().unwrap().len();
            consumer.shutdown().await;
            println!("rust interop: sent {sent}, consumed {got}");
            if got != sent {
                return Err(format!("consumed {got} of {sent}").into());
            }
            Ok(())
        }
        .await;
        (result, rt.shutdown().await)
    });
    let _ = report;
    let _ = owner.shutdown_runtime_blocking();
    result
}
