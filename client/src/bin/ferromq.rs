//! `ferromq`: administer a ferromq or RocketMQ cluster, send and consume messages, and
//! generate load.
//!
//! - `topic create|update|delete|list|route|stats`, `cluster`, `group …`, `offset …`;
//! - `broker config|update-config|switch-master`: a broker's settings, the master switch;
//! - `send`, `consume`, `query --key|--id`;
//! - `bench produce|consume`: the load generator (per-second TPS and response times, then
//!   percentiles and MB/s; `--json` for machines).
//!
//! Exit status: 0 success, 1 the command failed, 2 bad usage.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[path = "ferromq/admin.rs"]
mod admin;
#[path = "ferromq/bench.rs"]
mod bench;
#[path = "ferromq/broker.rs"]
mod broker;
#[path = "ferromq/messages.rs"]
mod messages;
#[path = "ferromq/output.rs"]
mod output;

/// Command-line client for ferromq and Apache RocketMQ clusters.
#[derive(Debug, Parser)]
#[command(name = "ferromq", version)]
struct Cli {
    /// Name servers, `;`-separated (default: the NAMESRV_ADDR environment variable, else
    /// 127.0.0.1:9876).
    #[arg(short = 'n', long, global = true)]
    namesrv: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Runtime threads; 1 runs everything on one thread (no cross-thread wake-ups: the
    /// lowest latency with few requests in flight). Default: one per CPU, except for
    /// `bench produce`, which runs on one thread unless told otherwise (on 2 cores shared
    /// with a broker, the load generator then spends 3.3 µs of CPU per message instead of
    /// 7.5, and drives the broker faster).
    #[arg(long, global = true)]
    runtime_threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, update, delete, list and inspect topics.
    #[command(subcommand)]
    Topic(admin::TopicCommand),
    /// Brokers of every cluster.
    Cluster(admin::ClusterArgs),
    /// A broker's settings: show, change, and switch a group's master.
    #[command(subcommand)]
    Broker(broker::BrokerCommand),
    /// Subscription groups: create, delete, list, progress (lag), connections.
    #[command(subcommand)]
    Group(admin::GroupCommand),
    /// Consumer offsets of a group: show, set, reset by time.
    #[command(subcommand)]
    Offset(admin::OffsetCommand),
    /// Send messages.
    Send(messages::SendArgs),
    /// Consume messages and print them.
    Consume(messages::ConsumeArgs),
    /// Find messages by key or by id.
    Query(messages::QueryArgs),
    /// Load generator.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let bench_produce = matches!(cli.command, Command::Bench(bench::BenchCommand::Produce(_)));
    let runtime_threads = cli.runtime_threads.or(bench_produce.then_some(1));
    let mut builder = match runtime_threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(threads) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(threads.max(1));
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let namesrv = cli
        .namesrv
        .or_else(|| std::env::var("NAMESRV_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:9876".to_owned());
    let out = output::Output { json: cli.json };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Topic(command) => admin::topic(&namesrv, out, command).await,
            Command::Cluster(args) => admin::cluster(&namesrv, out, args).await,
            Command::Broker(command) => broker::run(&namesrv, out, command).await,
            Command::Group(command) => admin::group(&namesrv, out, command).await,
            Command::Offset(command) => admin::offset(&namesrv, out, command).await,
            Command::Send(args) => messages::send(&namesrv, out, args).await,
            Command::Consume(args) => messages::consume(&namesrv, out, args).await,
            Command::Query(args) => messages::query(&namesrv, out, args).await,
            Command::Bench(command) => bench::run(&namesrv, out, command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
