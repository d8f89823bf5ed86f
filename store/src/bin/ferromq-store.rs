//! `ferromq-store`: a command-line tool over a store directory.
//!
//! - `bench`: in-process put load with live progress, throughput and latency percentiles;
//! - `verify`: opens the store (recovery included), then checks every record, ConsumeQueue
//!   unit and index entry with its own reader; exits 1 on any inconsistency;
//! - `dump` and `query`: a queue's messages, or messages by key, for people.
//!
//! Exit status: 0 success, 1 inconsistencies found or a command failed, 2 bad usage.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[path = "ferromq_store/bench.rs"]
mod bench;
#[path = "ferromq_store/histogram.rs"]
mod histogram;
#[path = "ferromq_store/layout.rs"]
mod layout;
#[path = "ferromq_store/show.rs"]
mod show;
#[path = "ferromq_store/verify.rs"]
mod verify;
#[path = "ferromq_store/verify_cq.rs"]
mod verify_cq;
#[path = "ferromq_store/verify_index.rs"]
mod verify_index;

/// Tools for a ferromq (RocketMQ-format) store directory.
#[derive(Debug, Parser)]
#[command(name = "ferromq-store", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Put messages from in-process threads and report throughput and latency.
    Bench(bench::BenchArgs),
    /// Recover the store, then check every record, ConsumeQueue unit and index entry.
    Verify(verify::VerifyArgs),
    /// Print messages of one queue.
    Dump(show::DumpArgs),
    /// Print the messages of a topic with a given key or UNIQ_KEY.
    Query(show::QueryArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Bench(args) => bench::run(args).map(|()| true),
        Command::Verify(args) => verify::run(args),
        Command::Dump(args) => show::dump(args).map(|()| true),
        Command::Query(args) => show::query(args).map(|()| true),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("ferromq-store: error: {err}");
            let mut source = err.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}
