//! `bench produce` and `bench consume`: the load generator.

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use ferromq_client::bench::{self, ConsumeBench, ProduceBench, SendMode, Summary, Tick};
use ferromq_client::consumer::{ConsumeFromWhere, PushConsumerConfig};
use ferromq_client::{ClientConfig, ProducerConfig, Result};
use serde_json::json;

use crate::output::{Output, parse_duration};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Send as fast as possible and report TPS and response times.
    Produce(ProduceArgs),
    /// Consume as fast as possible and report TPS and born-to-consume times.
    Consume(ConsumeArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Sync,
    Async,
    Oneway,
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Topic (created by the broker through TBW102 if missing).
    #[arg(short = 't', long, default_value = "BenchmarkTest")]
    topic: String,
    /// Requests in flight at once (Java's sender threads, or async permits).
    #[arg(short = 'w', long, alias = "threads", default_value_t = 64)]
    inflight: usize,
    /// Producer instances (each has its own connection to each broker).
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// Body size, bytes.
    #[arg(short = 's', long, default_value_t = 128)]
    size: usize,
    /// Messages per request (SEND_BATCH_MESSAGE when more than 1).
    #[arg(short = 'b', long, default_value_t = 1)]
    batch: usize,
    /// Send mode.
    #[arg(long, value_enum, default_value_t = Mode::Async)]
    mode: Mode,
    /// Run this long (e.g. 30s); default 10s unless --count is given.
    #[arg(short = 'd', long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Send this many messages.
    #[arg(short = 'c', long)]
    count: Option<u64>,
    /// A unique key per message (indexed by the broker).
    #[arg(short = 'k', long)]
    keys: bool,
    /// Tag of every message.
    #[arg(long)]
    tag: Option<String>,
    /// Producer group.
    #[arg(long, default_value = "benchmark_producer")]
    group: String,
    /// JSON request headers (Java's default) instead of the cheaper binary RocketMQ
    /// headers the bench uses by default.
    #[arg(long)]
    json_headers: bool,
    /// Per-send timeout, ms.
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
}

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Topic.
    #[arg(short = 't', long, default_value = "BenchmarkTest")]
    topic: String,
    /// Consumer group.
    #[arg(short = 'g', long, default_value = "benchmark_consumer")]
    group: String,
    /// Tag expression.
    #[arg(short = 'e', long, default_value = "*")]
    expression: String,
    /// Consume threads.
    #[arg(short = 'w', long, alias = "threads", default_value_t = 20)]
    threads: usize,
    /// Messages per listener call.
    #[arg(short = 'b', long, default_value_t = 32)]
    batch: usize,
    /// Messages per pull.
    #[arg(long, default_value_t = 32)]
    pull_batch: i32,
    /// Start a new group at the first message.
    #[arg(long)]
    from_first: bool,
    /// Run this long; default 10s unless --count is given.
    #[arg(short = 'd', long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Consume this many messages.
    #[arg(short = 'c', long)]
    count: Option<u64>,
}

fn print_tick(out: Output, what: &str, tick: &Tick) {
    if out.json {
        out.json(&json!({
            "second": tick.second, "tps": tick.tps.round(), "avgRtMs": tick.avg_rt_ms,
            "maxRtMs": tick.max_rt_ms, "failures": tick.failures, "total": tick.total,
        }));
    } else {
        println!(
            "[{:>4}s] {what} TPS: {:>9.0} | Avg RT(ms): {:>8.3} | Max RT(ms): {:>8.3} | Failed: {} | Total: {}",
            tick.second, tick.tps, tick.avg_rt_ms, tick.max_rt_ms, tick.failures, tick.total
        );
    }
}

fn print_summary(out: Output, what: &str, summary: &Summary) {
    if out.json {
        out.json(&json!({
            "summary": what, "messages": summary.messages, "failures": summary.failures,
            "elapsedS": summary.elapsed_s, "tps": summary.tps.round(), "mbPerS": summary.mb_per_s,
            "avgMs": summary.avg_ms, "p50Ms": summary.p50_ms, "p99Ms": summary.p99_ms,
            "p999Ms": summary.p999_ms, "maxMs": summary.max_ms,
        }));
    } else {
        println!(
            "{what}: {} messages in {:.2}s = {:.0} msgs/s, {:.2} MB/s, {} failures",
            summary.messages, summary.elapsed_s, summary.tps, summary.mb_per_s, summary.failures
        );
        println!(
            "RT(ms): avg {:.3} | p50 {:.3} | p99 {:.3} | p999 {:.3} | max {:.3}",
            summary.avg_ms, summary.p50_ms, summary.p99_ms, summary.p999_ms, summary.max_ms
        );
    }
}

pub async fn run(namesrv: &str, out: Output, command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Produce(args) => {
            let mut client = ClientConfig::with_namesrv(namesrv);
            if !args.json_headers {
                client.serialize_type = ferromq_client::config::SerializeType::RocketMq;
            }
            let config = ProducerConfig {
                client,
                send_msg_timeout: Duration::from_millis(args.timeout_ms),
                // Bench bodies are synthetic; compressing them would measure zlib.
                compress_msg_body_over_bytes: usize::MAX,
                ..ProducerConfig::new(&args.group)
            };
            let duration = args.duration.or(if args.count.is_none() {
                Some(Duration::from_secs(10))
            } else {
                None
            });
            let run = ProduceBench {
                producer: config,
                topic: args.topic,
                mode: match args.mode {
                    Mode::Sync => SendMode::Sync,
                    Mode::Async => SendMode::Async,
                    Mode::Oneway => SendMode::Oneway,
                },
                concurrency: args.inflight,
                producers: args.producers,
                message_size: args.size,
                batch_size: args.batch,
                duration,
                count: args.count,
                keys: args.keys,
                tag: args.tag,
            };
            let summary = bench::run_produce(&run, |tick| print_tick(out, "Send", tick)).await?;
            print_summary(out, "produce", &summary);
        }
        BenchCommand::Consume(args) => {
            let mut config = PushConsumerConfig {
                client: ClientConfig::with_namesrv(namesrv),
                consume_thread_count: args.threads,
                consume_message_batch_max_size: args.batch,
                pull_batch_size: args.pull_batch,
                ..PushConsumerConfig::new(&args.group)
            };
            if args.from_first {
                config.consume_from_where = ConsumeFromWhere::ConsumeFromFirstOffset;
            }
            let duration = args.duration.or(if args.count.is_none() {
                Some(Duration::from_secs(10))
            } else {
                None
            });
            let run = ConsumeBench {
                consumer: config,
                topic: args.topic,
                expression: args.expression,
                duration,
                count: args.count,
            };
            let summary = bench::run_consume(&run, |tick| print_tick(out, "Consume", tick)).await?;
            print_summary(out, "consume", &summary);
        }
    }
    Ok(())
}
