//! `ferromq-store bench`: an in-process load on a store directory.
//!
//! T threads each put N/T messages of `size` bytes, round-robin over Q queues of one topic
//! (or of a topic per thread), each with a `UNIQ_KEY` as real clients send and optionally a
//! `KEYS` property. Every put's latency goes into a per-thread fixed-size histogram (no
//! allocation in the loop). Progress is printed every second, then a summary line and, for
//! scale, the bandwidth of a plain memcpy into a warm 256 MiB buffer measured in the same
//! run.

use std::hint::black_box;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, ScopedJoinHandle};
use std::time::{Duration, Instant};

use ferromq_store::{FlushMode, MessageStore, PutMessage, PutStatus, StoreConfig};

use super::histogram::Histogram;
use super::layout::{CliResult, describe};

/// Size of the memcpy reference buffer.
const REFERENCE_BUFFER_BYTES: usize = 256 << 20;
/// Passes over the reference buffer.
const REFERENCE_PASSES: usize = 4;
/// How often the progress loop looks at the counters.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
const MB: f64 = 1_000_000.0;

/// `bench` arguments.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct BenchArgs {
    /// Store directory (created if missing; an existing store is appended to).
    #[arg(long)]
    pub dir: PathBuf,
    /// Messages to put, in total.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    /// Body size in bytes.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Queues per topic, used round-robin.
    #[arg(long, default_value_t = 8)]
    pub queues: u32,
    /// Putting threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// When a put returns: `async` (in the page cache) or `sync` (after an fsync covering it).
    #[arg(long, value_enum, default_value_t = Flush::Async)]
    pub flush: Flush,
    /// Also set a `KEYS` property (indexed) on every message.
    #[arg(long)]
    pub keys: bool,
    /// Give every thread its own topic instead of sharing one.
    #[arg(long)]
    pub topic_per_thread: bool,
    /// CommitLog segment size in MiB.
    #[arg(long, default_value_t = 1024)]
    pub segment_mib: u64,
    /// Do not pre-fault new segments in the background (the putting thread then takes the
    /// page faults).
    #[arg(long)]
    pub no_prefault: bool,
    /// Write records without the `__CRC32#` record-CRC property (RocketMQ's default).
    #[arg(long)]
    pub no_record_crc: bool,
}

/// The flush mode, as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Flush {
    Async,
    Sync,
}

/// Messages done by one thread, on its own cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Progress {
    done: AtomicU64,
}

/// What one thread measured.
#[derive(Debug)]
struct ThreadResult {
    histogram: Histogram,
    flush_timeouts: u64,
    finished: Instant,
    /// CPU time the thread ran for during its puts (`None` where Linux's schedstat is absent).
    cpu: Option<Duration>,
}

/// What one putting thread is told.
#[derive(Debug, Clone, Copy)]
struct Job<'a> {
    thread: usize,
    count: u64,
    topic: &'a str,
    args: &'a BenchArgs,
}

/// Runs the benchmark and prints its results.
///
/// # Errors
/// Bad arguments, a store that cannot be opened, a failed or rejected put.
pub(crate) fn run(args: &BenchArgs) -> CliResult<()> {
    if args.threads == 0 || args.queues == 0 || args.size == 0 || args.messages == 0 {
        return Err("--messages, --size, --queues and --threads must be at least 1".into());
    }
    let mut config = StoreConfig::new(&args.dir);
    config.mapped_file_size_commit_log = args.segment_mib << 20;
    config.prefault_segments = !args.no_prefault;
    config.enabled_append_prop_crc = !args.no_record_crc;
    config.flush_disk_type = match args.flush {
        Flush::Async => FlushMode::Async,
        Flush::Sync => FlushMode::Sync,
    };
    let store = MessageStore::open(config)
        .map_err(|e| describe(format!("open {}", args.dir.display()), e))?;
    println!(
        "bench: dir={} messages={} size={}B queues={} threads={} flush={:?} keys={} \
         segment={}MiB prefault={}",
        args.dir.display(),
        args.messages,
        args.size,
        args.queues,
        args.threads,
        args.flush,
        args.keys,
        args.segment_mib,
        !args.no_prefault
    );
    // The first put waits for the first segment to be created (and pre-faulted); time it
    // apart, so the run measures puts into segments that are ready.
    let first = Instant::now();
    let body = vec![b'w'; args.size];
    store.put(&PutMessage::new("BenchWarmup", 0, &body))?;
    println!("first put (creates the first segment): {:.3}s", first.elapsed().as_secs_f64());
    let log_start = store.max_phy_offset();
    let (elapsed, results) = run_threads(&store, args)?;
    let log_bytes = (store.max_phy_offset() - log_start).max(0) as f64;
    report(args, elapsed, &results, log_bytes);

    let closing = Instant::now();
    store.close()?;
    println!("close (flushes everything): {:.2}s", closing.elapsed().as_secs_f64());

    let memcpy = memcpy_bytes_per_second(args.size);
    let store_rate = log_bytes / elapsed.as_secs_f64().max(f64::EPSILON);
    println!(
        "reference: memcpy of {}-byte chunks into a warm {} MiB buffer: {:.0} MB/s; the puts \
         moved {:.0} MB/s of records, {:.1}% of it",
        args.size,
        REFERENCE_BUFFER_BYTES >> 20,
        memcpy / MB,
        store_rate / MB,
        100.0 * store_rate / memcpy.max(f64::EPSILON)
    );
    Ok(())
}

/// Starts the threads, prints progress until they finish, and returns the time from the
/// common start to the last finish with every thread's result.
fn run_threads(store: &MessageStore, args: &BenchArgs) -> CliResult<(Duration, Vec<ThreadResult>)> {
    let topics: Vec<String> = (0..args.threads)
        .map(|t| if args.topic_per_thread { format!("BenchTopic{t}") } else { "BenchTopic".into() })
        .collect();
    let progress: Vec<Progress> = (0..args.threads).map(|_| Progress::default()).collect();
    let start_line = Barrier::new(args.threads + 1);
    thread::scope(|scope| {
        let mut handles = Vec::with_capacity(args.threads);
        for (thread, topic) in topics.iter().enumerate() {
            let share = args.messages / args.threads as u64;
            let count = share + u64::from((thread as u64) < args.messages % args.threads as u64);
            let job = Job { thread, count, topic, args };
            let (progress, start_line) = (&progress[thread], &start_line);
            handles.push(scope.spawn(move || put_loop(store, job, progress, start_line)));
        }
        start_line.wait();
        let start = Instant::now();
        print_progress(&handles, &progress, start, args.size);
        let mut results = Vec::with_capacity(handles.len());
        for handle in handles {
            let result = handle.join().map_err(|_| "a putting thread panicked")??;
            results.push(result);
        }
        let finished = results.iter().map(|r| r.finished).max().unwrap_or(start);
        Ok((finished.duration_since(start), results))
    })
}

/// One thread's puts.
fn put_loop(
    store: &MessageStore,
    job: Job<'_>,
    progress: &Progress,
    start_line: &Barrier,
) -> CliResult<ThreadResult> {
    let body: Vec<u8> = (0..job.args.size).map(|i| b'a' + ((i + job.thread) % 26) as u8).collect();
    let mut properties = Vec::with_capacity(256);
    let uniq_prefix = uniq_key_prefix(job.thread);
    let mut histogram = Histogram::default();
    let mut flush_timeouts = 0;
    let queues = u64::from(job.args.queues);
    start_line.wait();
    let cpu_start = thread_cpu_time();
    let mut last = Instant::now();
    for seq in 0..job.count {
        properties.clear();
        write_properties(&mut properties, &uniq_prefix, job.thread, seq, job.args.keys)?;
        let queue_id = ((seq + job.thread as u64) % queues) as i32;
        let message =
            PutMessage { properties: &properties, ..PutMessage::new(job.topic, queue_id, &body) };
        let put = store.put(&message)?;
        match put.status {
            PutStatus::PutOk => {}
            PutStatus::FlushDiskTimeout => flush_timeouts += 1,
            status => {
                return Err(
                    format!("put {seq} of thread {} was refused: {status:?}", job.thread).into()
                );
            }
        }
        let now = Instant::now();
        histogram.record(u64::try_from(now.duration_since(last).as_nanos()).unwrap_or(u64::MAX));
        last = now;
        progress.done.store(seq + 1, Ordering::Relaxed);
    }
    let cpu = thread_cpu_time().zip(cpu_start).map(|(end, start)| end.saturating_sub(start));
    Ok(ThreadResult { histogram, flush_timeouts, finished: last, cpu })
}

/// CPU time the calling thread has run for, from `/proc/thread-self/schedstat` (ns).
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok().map(Duration::from_nanos)
}

/// The first 20 hex digits of a `UNIQ_KEY` (storage.md §6.2): IP 127.0.0.1, the low 16
/// bits of the pid, and the thread number in place of the class-loader hash.
fn uniq_key_prefix(thread: usize) -> [u8; 20] {
    let pid = (std::process::id() & 0xFFFF) as u16;
    let mut bytes = [0u8; 10];
    bytes[..4].copy_from_slice(&[127, 0, 0, 1]);
    bytes[4..6].copy_from_slice(&pid.to_be_bytes());
    bytes[6..].copy_from_slice(&(thread as u32).to_be_bytes());
    let mut hex = [0u8; 20];
    for (i, byte) in bytes.iter().enumerate() {
        hex[2 * i] = hex_digit(byte >> 4);
        hex[2 * i + 1] = hex_digit(byte & 0xF);
    }
    hex
}

/// Appends `UNIQ_KEY` (prefix, then the sequence number as the 6 bytes of time and counter,
/// so ids never repeat within a run) and optionally `KEYS`, without allocating once `out`
/// has grown.
fn write_properties(
    out: &mut Vec<u8>,
    uniq_prefix: &[u8; 20],
    thread: usize,
    seq: u64,
    keys: bool,
) -> CliResult<()> {
    out.extend_from_slice(b"UNIQ_KEY\x01");
    out.extend_from_slice(uniq_prefix);
    for shift in (0..12).rev() {
        out.push(hex_digit(((seq >> (shift * 4)) & 0xF) as u8));
    }
    out.push(0x02);
    if keys {
        write!(out, "KEYS\x01bench-{thread}-{seq}\x02").map_err(|e| describe("format KEYS", e))?;
    }
    Ok(())
}

fn hex_digit(nibble: u8) -> u8 {
    b"0123456789ABCDEF"[usize::from(nibble & 0xF)]
}

/// Prints messages done and rates every second until every thread has finished.
fn print_progress(
    handles: &[ScopedJoinHandle<'_, CliResult<ThreadResult>>],
    progress: &[Progress],
    start: Instant,
    size: usize,
) {
    let (mut last_time, mut last_done) = (start, 0u64);
    while !handles.iter().all(|h| h.is_finished()) {
        thread::sleep(POLL_INTERVAL);
        let now = Instant::now();
        let interval = now.duration_since(last_time).as_secs_f64();
        if interval < 1.0 {
            continue;
        }
        let done: u64 = progress.iter().map(|p| p.done.load(Ordering::Relaxed)).sum();
        let rate = (done - last_done) as f64 / interval;
        println!(
            "{:>6.1}s {done:>12} msgs {rate:>12.0} msgs/s {:>9.1} MB/s",
            now.duration_since(start).as_secs_f64(),
            rate * size as f64 / MB
        );
        (last_time, last_done) = (now, done);
    }
}

/// The summary line: totals and latency percentiles in µs.
fn report(args: &BenchArgs, elapsed: Duration, results: &[ThreadResult], log_bytes: f64) {
    let mut latency = Histogram::default();
    for result in results {
        latency.merge(&result.histogram);
    }
    let timeouts: u64 = results.iter().map(|r| r.flush_timeouts).sum();
    let seconds = elapsed.as_secs_f64().max(f64::EPSILON);
    let messages = latency.count();
    let us = |ns: u64| ns as f64 / 1000.0;
    println!(
        "messages={messages} msgs/s={:.0} MB/s={:.1} p50={:.2}us p99={:.2}us p999={:.2}us \
         max={:.2}us",
        messages as f64 / seconds,
        messages as f64 * args.size as f64 / seconds / MB,
        us(latency.quantile(0.5)),
        us(latency.quantile(0.99)),
        us(latency.quantile(0.999)),
        us(latency.max())
    );
    println!(
        "elapsed={seconds:.3}s commit log bytes={log_bytes:.0} ({:.1} MB/s of records) flush \
         timeouts={timeouts}",
        log_bytes / seconds / MB
    );
    // Wall time per put against the putting threads' own CPU time: the difference is time
    // they were not running (background threads, other jobs on the machine).
    let cpu: Option<Duration> = results.iter().map(|r| r.cpu).sum();
    if let Some(cpu) = cpu
        && messages > 0
    {
        let threads = results.len().max(1) as f64;
        println!(
            "putting threads: {:.0} ns CPU per put, {:.0} ns wall per put per thread ({:.0}% \
             of their wall time on a CPU)",
            cpu.as_nanos() as f64 / messages as f64,
            seconds * 1e9 * threads / messages as f64,
            100.0 * cpu.as_secs_f64() / (seconds * threads)
        );
    }
}

/// Bytes per second of copying `chunk`-byte pieces one after another into a 256 MiB buffer
/// whose pages were all touched first: the ceiling for appending records to a warm mapping.
fn memcpy_bytes_per_second(chunk: usize) -> f64 {
    let mut buffer = vec![0u8; REFERENCE_BUFFER_BYTES];
    buffer.fill(1); // fault every page in
    let source = vec![0xA5u8; chunk.min(REFERENCE_BUFFER_BYTES)];
    let chunk = source.len();
    let start = Instant::now();
    let mut copied = 0usize;
    for _ in 0..REFERENCE_PASSES {
        for piece in buffer.chunks_exact_mut(chunk) {
            piece.copy_from_slice(black_box(&source));
            copied += chunk;
        }
        black_box(&mut buffer);
    }
    copied as f64 / start.elapsed().as_secs_f64().max(f64::EPSILON)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_carry_a_32_digit_uniq_key_and_keys() {
        let mut out = Vec::new();
        write_properties(&mut out, &uniq_key_prefix(3), 3, 0x1234, true).unwrap();
        let properties = ferromq_message::properties::parse_properties(&out);
        let uniq = &properties["UNIQ_KEY"];
        assert_eq!(uniq.len(), 32);
        assert!(uniq.starts_with("7F000001"), "{uniq}");
        assert!(uniq.ends_with("00000003000000001234"), "{uniq}");
        assert_eq!(properties["KEYS"], "bench-3-4660");
    }
}
