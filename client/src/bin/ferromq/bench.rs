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
    /// Also measure a raw TCP round trip on loopback (a request-sized write, a 200-byte
    /// answer) before and after the run, and print the send latency against it.
    #[arg(long)]
    rtt_reference: bool,
    /// Measure the broker, not the client: the producer builds one send frame per queue
    /// (as a send would) and each connection (one per --producers) replays them with only
    /// the opaque and the UNIQ_KEY's last digits changed, reading answers by length and
    /// code. Single async sends with binary headers only.
    #[arg(long, conflicts_with_all = ["json_headers", "keys", "batch"])]
    raw_frames: bool,
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

/// p50 and p99 of a raw TCP round trip on loopback, ms: `request_bytes` written to an echo
/// thread that answers 200 bytes, 20,000 times, through the same runtime as the sends.
async fn loopback_rtt(request_bytes: usize) -> Result<(f64, f64)> {
    use std::io::{Read, Write};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const ROUNDS: usize = 20_000;
    const ANSWER: usize = 200;
    let io = |error: std::io::Error| {
        ferromq_client::Error::InvalidArgument(format!("RTT reference: {error}"))
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut socket, _) = listener.accept()?;
        socket.set_nodelay(true)?;
        let mut request = vec![0u8; request_bytes];
        let answer = [7u8; ANSWER];
        for _ in 0..ROUNDS {
            socket.read_exact(&mut request)?;
            socket.write_all(&answer)?;
        }
        Ok(())
    });
    let mut socket = tokio::net::TcpStream::connect(addr).await.map_err(io)?;
    socket.set_nodelay(true).map_err(io)?;
    let request = vec![1u8; request_bytes];
    let mut answer = [0u8; ANSWER];
    let mut rtts = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = std::time::Instant::now();
        socket.write_all(&request).await.map_err(io)?;
        socket.read_exact(&mut answer).await.map_err(io)?;
        rtts.push(start.elapsed().as_secs_f64() * 1e3);
    }
    drop(echo.join());
    rtts.sort_by(f64::total_cmp);
    let at = |q: f64| rtts[((rtts.len() - 1) as f64 * q).round() as usize];
    Ok((at(0.5), at(0.99)))
}

fn print_rtt_reference(out: Output, summary: &Summary, before: (f64, f64), after: (f64, f64)) {
    // The reference of the two that flatters the sends least: the smaller round trip.
    let (p50, p99) = (before.0.min(after.0), before.1.min(after.1));
    if out.json {
        out.json(&json!({
            "rttP50MsBefore": before.0, "rttP99MsBefore": before.1,
            "rttP50MsAfter": after.0, "rttP99MsAfter": after.1,
            "p99OverRttP99": summary.p99_ms / p99, "p99OverRttP50": summary.p99_ms / p50,
        }));
    } else {
        println!(
            "loopback RTT (ms) before: p50 {:.4} p99 {:.4} | after: p50 {:.4} p99 {:.4} | send p99 = {:.1}x RTT p99, {:.1}x RTT p50",
            before.0,
            before.1,
            after.0,
            after.1,
            summary.p99_ms / p99,
            summary.p99_ms / p50
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
                raw_frames: args.raw_frames,
            };
            let request_bytes = args.size * args.batch + 300;
            let before = match args.rtt_reference {
                true => Some(loopback_rtt(request_bytes).await?),
                false => None,
            };
            let summary = bench::run_produce(&run, |tick| print_tick(out, "Send", tick)).await?;
            print_summary(out, "produce", &summary);
            if let Some(before) = before {
                let after = loopback_rtt(request_bytes).await?;
                print_rtt_reference(out, &summary, before, after);
            }
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
