//! `kill -9` under sync flush: no acknowledged message may be lost.
//!
//! The test re-executes its own binary as a child process that runs only
//! [`crash_child_writer`] (selected with `--exact`, enabled by `FERROMQ_CRASH_CHILD_DIR`).
//! The child opens a store with `FlushMode::Sync` and 64 KiB segments, and several writer
//! threads put single messages and batches into several topics and queues. After every put
//! that returned `PutOk` the child prints
//!
//! ```text
//! ACK <topic> <queue> <queue_offset> <count> <seq> <phy_offset>[,<phy_offset>...]
//! ```
//!
//! Each queue belongs to one writer thread, and a queue's sequence number is its queue
//! offset: message `seq` of queue `(topic, q)` lands at queue offset `seq` and its body,
//! flag and properties are a pure function of `(topic, q, seq)`. A restarted child continues
//! each queue at its recovered maximum offset. A reader thread in the child checks that
//! readers only ever see flushed records, and each writer that an acknowledged message is
//! visible at once.
//!
//! Each round ends the child one of two ways: the parent sends `SIGKILL` after a random
//! (seeded) delay, sometimes while the child is still starting up and recovering; or the
//! child kills itself at a named point inside the store (`FERROMQ_KILL_AT=<point>@<n>`, see
//! `internals::KILL_POINTS`): inside a CommitLog roll, between a put's write and its flush,
//! after a flush before its puts are acknowledged, between a checkpoint's write and its sync,
//! and around the deletion of a segment by expiry. The parent then reopens the store
//! (abnormal recovery, timed) and checks that every acknowledged message is at its queue
//! offset and physical offset with byte-identical content, and that every queue is dense and
//! holds exactly the expected message at each offset. Rounds repeat on the same directory,
//! in two phases: without expiry, then with a child that expires old segments as it writes
//! (acknowledged messages in deleted segments may go; every other one must stay).
//!
//! Environment: `FERROMQ_CRASH_ROUNDS` (default 320; at least 16 per phase, so that every
//! named point is visited), `FERROMQ_CRASH_SEED` (default: time; a failure prints it and
//! keeps the stores), `FERROMQ_CRASH_VERBOSE=1` (a line per round).

// Helpers outside `#[test]` functions unwrap too: mark the whole file as test code so that
// clippy's `allow-unwrap-in-tests` covers them.
#![cfg(test)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferromq_message::batch::encode_batch_item;
use ferromq_message::properties::{Properties, encode_properties};
use ferromq_message::record::crc_property::{compute_record_crc, encode_crc_property};
use ferromq_message::record::decode_record;
use ferromq_store::internals::{KILL_AT_ENV, KILL_POINTS};
use ferromq_store::{
    FlushMode, GetStatus, MessageStore, PutMessage, PutStatus, RecoveryMode, StoreConfig,
};

const CHILD_DIR_ENV: &str = "FERROMQ_CRASH_CHILD_DIR";
const CHILD_SEED_ENV: &str = "FERROMQ_CRASH_CHILD_SEED";
/// Set for a child that also expires old segments as it writes.
const CHILD_EXPIRY_ENV: &str = "FERROMQ_CRASH_CHILD_EXPIRY";
const ROUNDS_ENV: &str = "FERROMQ_CRASH_ROUNDS";
const SEED_ENV: &str = "FERROMQ_CRASH_SEED";
const CHILD_TEST: &str = "crash_child_writer";

const TOPICS: [&str; 3] = ["CrashTopicA", "CrashTopicB", "CrashTopicC"];
const QUEUES_PER_TOPIC: i32 = 3;
const WRITERS: usize = 3;
/// A child that was never killed stops by itself after this long.
const CHILD_MAX_RUN: Duration = Duration::from_secs(30);
/// How long the parent waits for a child to reach its kill point before killing it.
const KILL_POINT_WAIT: Duration = Duration::from_secs(10);
const DEFAULT_ROUNDS: u32 = 320;
/// Segments an expiring child keeps at least (expiry never deletes the newest one).
const EXPIRY_KEEP_SEGMENTS: i64 = 4;
const SEGMENT_BYTES: i64 = 64 * 1024;
const BODY_MAX_BYTES: u64 = 1200;

/// SplitMix64: small, seedable, good enough for test data.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

fn config(dir: &Path) -> StoreConfig {
    let mut config = StoreConfig::small_for_tests(dir);
    config.flush_disk_type = FlushMode::Sync;
    // The checkpoint is written after every ConsumeQueue flush: often, so that kills land
    // inside its writes and abnormal recovery starts from fresh values.
    config.flush_interval_consume_queue_ms = 20;
    // Only the expiring child deletes segments, by calling `delete_expired_files`.
    config.file_reserved_time_hours = 0;
    config.clean_resource_interval_ms = 86_400_000;
    config.delete_file_batch_max = 1;
    config
}

/// The message with sequence number `seq` of queue `(topic, queue)`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    flag: i32,
    body: Vec<u8>,
    properties: Vec<u8>,
}

fn expected(topic: &str, queue: i32, seq: i64) -> Expected {
    let mut seed = 0xCBF2_9CE4_8422_2325_u64;
    for b in topic.bytes() {
        seed = (seed ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
    }
    let mut rng = Rng::new(seed ^ ((queue as u64) << 48) ^ seq as u64);
    let len = rng.below(BODY_MAX_BYTES) as usize + 1;
    let mut body = Vec::with_capacity(len);
    while body.len() < len {
        body.extend_from_slice(&rng.next_u64().to_be_bytes());
    }
    body.truncate(len);
    let mut properties = Properties::new();
    properties.insert("TAGS".into(), format!("tag{}", seq % 4));
    properties.insert("KEYS".into(), format!("k-{topic}-{queue}-{seq}"));
    properties.insert("SEQ".into(), seq.to_string());
    Expected { flag: (seq as i32) ^ 0x5A5A, body, properties: encode_properties(&properties) }
}

/// The producer's properties of a stored record `raw`, after checking that the store ended
/// them with the record-CRC property (`enabled_append_prop_crc`, on by default) and that it
/// matches the record.
fn user_properties<'a>(raw: &[u8], stored: &'a [u8]) -> Option<&'a [u8]> {
    let crc = compute_record_crc(raw)?;
    stored.strip_suffix(&encode_crc_property(crc)[..])
}

/// The queues writer `writer` owns.
fn owned_queues(writer: usize) -> Vec<(&'static str, i32)> {
    let mut owned = Vec::new();
    for (t, topic) in TOPICS.iter().enumerate() {
        for q in 0..QUEUES_PER_TOPIC {
            if (t * QUEUES_PER_TOPIC as usize + q as usize) % WRITERS == writer {
                owned.push((*topic, q));
            }
        }
    }
    owned
}

fn all_queues() -> Vec<(&'static str, i32)> {
    (0..WRITERS).flat_map(owned_queues).collect()
}

/// Prints one line to stdout and flushes it; a closed pipe (the parent is gone) ends the
/// process.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(3);
    }
}

/// One writer thread of the child: puts until the process is killed (or `CHILD_MAX_RUN`).
fn write_loop(store: &MessageStore, writer: usize, seed: u64) -> Result<(), String> {
    let mut rng = Rng::new(seed ^ (writer as u64).wrapping_mul(0x1234_5678_9ABC_DEF1));
    let owned = owned_queues(writer);
    let mut next: HashMap<(&str, i32), i64> = HashMap::new();
    for &(topic, queue) in &owned {
        let max = store.max_offset_in_queue(topic, queue).map_err(|e| e.to_string())?;
        next.insert((topic, queue), max);
    }
    let deadline = Instant::now() + CHILD_MAX_RUN;
    let mut batch = Vec::new();
    while Instant::now() < deadline {
        let (topic, queue) = owned[rng.below(owned.len() as u64) as usize];
        let seq = next[&(topic, queue)];
        let count = if rng.below(4) == 0 { rng.below(5) as i64 + 2 } else { 1 };
        let result = if count == 1 {
            let want = expected(topic, queue, seq);
            let mut message = PutMessage::new(topic, queue, &want.body);
            message.flag = want.flag;
            message.properties = &want.properties;
            store.put(&message)
        } else {
            batch.clear();
            for s in seq..seq + count {
                let want = expected(topic, queue, s);
                encode_batch_item(want.flag, &want.body, &want.properties, &mut batch)
                    .map_err(|e| e.to_string())?;
            }
            store.put_batch(&PutMessage::new(topic, queue, b""), &batch)
        };
        let result = result.map_err(|e| format!("put {topic}/{queue}/{seq}: {e}"))?;
        if !result.status.is_ok() {
            return Err(format!("put {topic}/{queue}/{seq} rejected: {:?}", result.status));
        }
        if result.queue_offset != seq || i64::from(result.message_count) != count {
            return Err(format!("put {topic}/{queue}/{seq} x{count} answered {result:?}"));
        }
        next.insert((topic, queue), seq + count);
        if result.status == PutStatus::PutOk {
            // Flushed, hence visible: this writer owns the queue, so the maximum is exact.
            let max = store.max_offset_in_queue(topic, queue).map_err(|e| e.to_string())?;
            if max != seq + count {
                return Err(format!(
                    "{topic}/{queue}: max offset {max} after acking up to {}",
                    seq + count
                ));
            }
            let phys: Vec<String> = if count == 1 {
                vec![result.phy_offset.to_string()]
            } else {
                result.batch_phy_offsets.iter().map(i64::to_string).collect()
            };
            say(&format!(
                "ACK {topic} {queue} {} {count} {seq} {}",
                result.queue_offset,
                phys.join(",")
            ));
        }
    }
    Ok(())
}

/// The child process: does nothing unless started by the parent test.
#[test]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else { return };
    let seed: u64 = std::env::var(CHILD_SEED_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    // libtest has printed `test crash_child_writer ... ` without a newline: end that line.
    say("");
    // The store's warnings (recovery, damage) go to the test's stderr.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .try_init();
    let store = match MessageStore::open(config(Path::new(&dir))) {
        Ok(store) => store,
        Err(err) => {
            say(&format!("ERR child could not open the store: {err:?}"));
            return;
        }
    };
    say(&format!("READY {:?}", store.recovery_mode()));
    // A thread that fails reports `ERR` and stops; the parent fails the test on it.
    let report = |outcome: Result<(), String>| {
        if let Err(err) = outcome {
            say(&format!("ERR {err}"));
        }
    };
    std::thread::scope(|scope| {
        for writer in 0..WRITERS {
            let store = &store;
            scope.spawn(move || report(write_loop(store, writer, seed)));
        }
        scope.spawn(|| report(read_loop(&store, seed)));
        if std::env::var_os(CHILD_EXPIRY_ENV).is_some() {
            scope.spawn(|| report(expiry_loop(&store)));
        }
    });
    store.close().unwrap();
}

/// Deletes the oldest segment whenever more than `EXPIRY_KEEP_SEGMENTS` hold data.
fn expiry_loop(store: &MessageStore) -> Result<(), String> {
    let deadline = Instant::now() + CHILD_MAX_RUN;
    while Instant::now() < deadline {
        let segments = (store.max_phy_offset() - store.min_phy_offset()) / SEGMENT_BYTES;
        if segments > EXPIRY_KEEP_SEGMENTS {
            store.delete_expired_files().map_err(|e| format!("expiry: {e}"))?;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// A reader next to the writers: under sync flush it must only ever see flushed records,
/// and each must be the expected message at its offset.
fn read_loop(store: &MessageStore, seed: u64) -> Result<(), String> {
    let mut rng = Rng::new(seed ^ 0xABCD);
    let queues = all_queues();
    let expiring = std::env::var_os(CHILD_EXPIRY_ENV).is_some();
    let deadline = Instant::now() + CHILD_MAX_RUN;
    while Instant::now() < deadline {
        let (topic, queue) = queues[rng.below(queues.len() as u64) as usize];
        let min = store.min_offset_in_queue(topic, queue);
        let max = store.max_offset_in_queue(topic, queue).map_err(|e| e.to_string())?;
        if max <= min {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let offset = min + rng.below((max - min) as u64) as i64;
        let got = store.get(topic, queue, offset, 8, &|_| true).map_err(|e| e.to_string())?;
        let flushed = store.flushed_phy_offset();
        // Expiry may have deleted the segment since the minimum was read.
        let expired =
            matches!(got.status, GetStatus::OffsetTooSmall | GetStatus::MessageWasRemoving);
        if expired && expiring {
            continue;
        }
        if got.status != GetStatus::Found {
            return Err(format!(
                "reader: {topic}/{queue}@{offset} below max {max}: {:?}",
                got.status
            ));
        }
        // Messages come in queue order from `offset`; without expiry, one per offset (with
        // it, a get skips the units of records expiry deleted since the minimum was read).
        let mut next = offset;
        for raw in &got.messages {
            let (rec, _) =
                decode_record(raw).map_err(|e| format!("reader: {topic}/{queue}@{next}: {e}"))?;
            let at = rec.queue_offset;
            let in_order = if expiring { at >= next } else { at == next };
            if !in_order {
                return Err(format!("reader: {topic}/{queue}: offset {at} where {next} was due"));
            }
            next = at + 1;
            let end = rec.physical_offset + raw.len() as i64;
            if end > flushed {
                return Err(format!(
                    "reader saw {topic}/{queue}@{at} ending at {end}, flushed only {flushed}"
                ));
            }
            let want = expected(topic, queue, at);
            if rec.body != want.body.as_slice()
                || user_properties(raw, rec.properties) != Some(want.properties.as_slice())
            {
                return Err(format!("reader: {topic}/{queue}@{at} is not the expected message"));
            }
        }
    }
    Ok(())
}

/// Kills the child if the parent fails before killing it, so that no writer outlives the test.
#[derive(Debug)]
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One acknowledged put, as the child reported it.
#[derive(Debug, Clone)]
struct Ack {
    topic: String,
    queue: i32,
    queue_offset: i64,
    count: i64,
    seq: i64,
    phys: Vec<i64>,
}

fn parse_ack(line: &str) -> Option<Ack> {
    let mut parts = line.split(' ');
    if parts.next()? != "ACK" {
        return None;
    }
    let topic = parts.next()?.to_owned();
    let queue = parts.next()?.parse().ok()?;
    let queue_offset = parts.next()?.parse().ok()?;
    let count = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let phys: Option<Vec<i64>> = parts.next()?.split(',').map(|p| p.parse().ok()).collect();
    let phys = phys?;
    if parts.next().is_some() || phys.len() as i64 != count {
        return None;
    }
    Some(Ack { topic, queue, queue_offset, count, seq, phys })
}

enum Event {
    Ready,
    Ack(Ack),
    Malformed(String),
}

/// What one round's verification found.
#[derive(Debug, Default)]
struct Verified {
    lost: Vec<String>,
    messages_in_store: i64,
    /// Acknowledged messages whose segment expiry deleted.
    expired: i64,
}

/// Walks every queue from its minimum to its maximum offset, checking that each message is
/// the expected one at its offset, in CommitLog order; then that every acknowledged message
/// is there at its physical offset, unless expiry deleted its segment (it is below the
/// CommitLog's minimum). Returns what was wrong rather than panicking at the first problem,
/// so that the report counts all losses.
fn verify(store: &MessageStore, acks: &[Ack], expiry: bool) -> Verified {
    let mut verified = Verified::default();
    let mut problems = Vec::new();
    // Per queue: its minimum offset and the physical offset of each message from it.
    let mut walked: HashMap<(&str, i32), (i64, Vec<i64>)> = HashMap::new();
    for (topic, queue) in all_queues() {
        let min = store.min_offset_in_queue(topic, queue);
        let max = match store.max_offset_in_queue(topic, queue) {
            Ok(max) => max,
            Err(err) => {
                problems.push(format!("{topic}/{queue}: max offset failed: {err}"));
                continue;
            }
        };
        if min != 0 && !expiry {
            problems.push(format!("{topic}/{queue}: min offset {min}, expected 0"));
        }
        verified.messages_in_store += max - min;
        let phys = walk_queue(store, topic, queue, min, max, &mut problems);
        walked.insert((topic, queue), (min, phys));
    }
    let min_phy = store.min_phy_offset();
    for ack in acks {
        if ack.seq != ack.queue_offset {
            problems
                .push(format!("{ack:?}: the store assigned offset {} to seq", ack.queue_offset));
        }
        let Some((min, phys)) = walked.get(&(ack.topic.as_str(), ack.queue)) else {
            problems.push(format!("{ack:?}: unknown queue"));
            continue;
        };
        for (i, &phy) in ack.phys.iter().enumerate() {
            let offset = ack.queue_offset + i as i64;
            if phy < min_phy && expiry {
                verified.expired += 1;
                continue;
            }
            let found = usize::try_from(offset - min).ok().and_then(|at| phys.get(at));
            if found != Some(&phy) {
                problems.push(format!(
                    "{}/{}@{offset}: acknowledged at phy {phy}, the store has {found:?} (queue min {min})",
                    ack.topic, ack.queue
                ));
            }
        }
    }
    verified.lost = problems;
    verified
}

/// Reads `[min, max)` of a queue, checking every message; returns their physical offsets.
fn walk_queue(
    store: &MessageStore,
    topic: &str,
    queue: i32,
    min: i64,
    max: i64,
    problems: &mut Vec<String>,
) -> Vec<i64> {
    let mut phys = Vec::new();
    let (mut offset, mut last_phy) = (min, -1);
    while offset < max {
        let got = match store.get(topic, queue, offset, 32, &|_| true) {
            Ok(got) if got.status == GetStatus::Found => got,
            other => {
                problems.push(format!("{topic}/{queue}@{offset} (max {max}): {other:?}"));
                break;
            }
        };
        for raw in &got.messages {
            let ok = decode_record(raw).is_ok_and(|(rec, _)| {
                let want = expected(topic, queue, offset);
                let fine = rec.queue_offset == offset
                    && rec.physical_offset > last_phy
                    && rec.topic == topic
                    && rec.queue_id == queue
                    && rec.flag == want.flag
                    && rec.body == want.body.as_slice()
                    && user_properties(raw, rec.properties) == Some(want.properties.as_slice());
                last_phy = rec.physical_offset;
                phys.push(rec.physical_offset);
                fine
            });
            if !ok {
                problems.push(format!(
                    "{topic}/{queue}@{offset}: not the expected message (gap or garbage)"
                ));
            }
            offset += 1;
        }
        if got.next_begin_offset != offset {
            problems.push(format!(
                "{topic}/{queue}: next_begin_offset {} after {offset}",
                got.next_begin_offset
            ));
            break;
        }
    }
    phys
}

/// How a round ends the child.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// The parent kills it after this delay; `early` delays end before it is ready.
    After { delay: Duration, early: bool },
    /// The child kills itself at the `nth` time it reaches the named point.
    AtPoint { point: &'static str, nth: u64 },
}

/// The named points a phase visits, with the largest `n` to choose for each: how often a
/// child reaches the point in its first moments (a roll every ~60 puts, a checkpoint every
/// 20 ms, an expiry every roll).
fn points(expiry: bool) -> Vec<(&'static str, u64)> {
    KILL_POINTS
        .iter()
        .filter(|point| expiry || !point.starts_with("expiry"))
        .map(|&point| {
            let nth_max = match point {
                "put-before-flush" | "flush-before-ack" => 100,
                "checkpoint-before-sync" => 4,
                _ => 2,
            };
            (point, nth_max)
        })
        .collect()
}

/// What a phase of rounds did.
#[derive(Debug, Default)]
struct Phase {
    kills: u32,
    early_kills: u32,
    /// Self-kills per named point, and named rounds whose point was never reached.
    reached: BTreeMap<&'static str, u32>,
    missed: BTreeMap<&'static str, u32>,
    acked: i64,
    expired: i64,
    recovery_times: Vec<Duration>,
}

/// What one child did.
struct ChildRun {
    acks: Vec<Ack>,
    /// How long after its start it said it was ready, if it did.
    ready_after: Option<Duration>,
    /// Whether it killed itself at its named point.
    self_killed: bool,
}

/// Runs one child until `kill` ends it.
fn run_child(
    exe: &Path,
    store_dir: &Path,
    seed: u64,
    expiry: bool,
    kill: Kill,
    round: u32,
) -> ChildRun {
    let spawned = Instant::now();
    let mut command = Command::new(exe);
    command
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads", "1"])
        .env(CHILD_DIR_ENV, store_dir)
        .env(CHILD_SEED_ENV, seed.to_string())
        .env_remove(KILL_AT_ENV)
        .env_remove(CHILD_EXPIRY_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if expiry {
        command.env(CHILD_EXPIRY_ENV, "1");
    }
    if let Kill::AtPoint { point, nth } = kill {
        command.env(KILL_AT_ENV, format!("{point}@{nth}"));
    }
    let mut child = ChildGuard(command.spawn().unwrap());
    let child = &mut child.0;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let event = if line.starts_with("READY") {
                Event::Ready
            } else if let Some(err) = line.strip_prefix("ERR ") {
                Event::Malformed(format!("child reported: {err}"))
            } else if line.starts_with("ACK") {
                match parse_ack(&line) {
                    Some(ack) => Event::Ack(ack),
                    None => Event::Malformed(line),
                }
            } else {
                continue;
            };
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    let mut acks = Vec::new();
    let mut ready_after = None;
    let mut malformed = Vec::new();
    let mut take = |event: Event, ready: &mut Option<Duration>| match event {
        Event::Ready => *ready = Some(spawned.elapsed()),
        Event::Ack(ack) => acks.push(ack),
        Event::Malformed(line) => malformed.push(line),
    };
    let self_killed = match kill {
        Kill::After { delay, early } => {
            if !early {
                let deadline = Instant::now() + Duration::from_secs(30);
                while ready_after.is_none() {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(left) {
                        Ok(Event::Malformed(line)) => panic!("round {round}: {line}"),
                        Ok(event) => take(event, &mut ready_after),
                        Err(err) => panic!("round {round}: child never became ready: {err}"),
                    }
                }
            }
            std::thread::sleep(delay);
            if let Some(status) = child.try_wait().unwrap() {
                panic!("round {round}: child exited on its own ({status}): {malformed:?}");
            }
            child.kill().unwrap();
            let status = child.wait().unwrap();
            assert_eq!(status.signal(), Some(9), "round {round}: {status:?}");
            false
        }
        Kill::AtPoint { .. } => {
            let deadline = Instant::now() + KILL_POINT_WAIT;
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break Some(status);
                }
                if Instant::now() > deadline {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            match status {
                Some(status) => {
                    assert_eq!(status.signal(), Some(9), "round {round} {kill:?}: {status:?}");
                    true
                }
                None => {
                    child.kill().unwrap();
                    child.wait().unwrap();
                    false
                }
            }
        }
    };
    reader.join().unwrap();
    for event in rx.try_iter() {
        take(event, &mut ready_after);
    }
    assert!(malformed.is_empty(), "round {round}: bad lines from the child: {malformed:#?}");
    ChildRun { acks, ready_after, self_killed }
}

fn run_rounds(seed: u64, rounds: u32, store_dir: &Path, expiry: bool) -> Phase {
    let mut rng = Rng::new(seed);
    let exe = std::env::current_exe().unwrap();
    let points = points(expiry);
    let mut acked: Vec<Ack> = Vec::new();
    let mut phase = Phase::default();
    let mut parent_left_abort = false;
    let mut time_to_ready = Duration::from_millis(20);
    for round in 0..rounds {
        // Every other round dies at a named point (each in turn); the rest are killed by
        // the parent after a random delay, one in eight while starting up and recovering.
        let kill = if round % 2 == 0 {
            let (point, nth_max) = points[(round / 2) as usize % points.len()];
            Kill::AtPoint { point, nth: 1 + rng.below(nth_max) }
        } else if rng.below(8) == 0 {
            let delay = Duration::from_micros(rng.below(time_to_ready.as_micros() as u64 + 1));
            Kill::After { delay, early: true }
        } else {
            Kill::After { delay: Duration::from_millis(5 + rng.below(60)), early: false }
        };
        let ChildRun { acks: round_acks, ready_after, self_killed } =
            run_child(&exe, store_dir, rng.next_u64(), expiry, kill, round);
        let ready = ready_after.is_some();
        if let Some(after) = ready_after {
            time_to_ready = after;
        }
        phase.kills += 1;
        match kill {
            Kill::After { early, .. } => phase.early_kills += u32::from(early),
            Kill::AtPoint { point, .. } if self_killed => {
                *phase.reached.entry(point).or_default() += 1
            }
            Kill::AtPoint { point, .. } => *phase.missed.entry(point).or_default() += 1,
        }

        let started = Instant::now();
        let store = MessageStore::open(config(store_dir)).unwrap();
        let recovery = started.elapsed();
        phase.recovery_times.push(recovery);
        if ready || parent_left_abort {
            assert_eq!(store.recovery_mode(), RecoveryMode::Abnormal, "round {round}");
        }
        let round_acked: i64 = round_acks.iter().map(|a| a.count).sum();
        acked.extend(round_acks);
        let verified = verify(&store, &acked, expiry);
        phase.expired = verified.expired;
        assert!(
            verified.lost.is_empty(),
            "round {round} ({kill:?}): {} problems after recovery, first: {:#?}",
            verified.lost.len(),
            &verified.lost[..verified.lost.len().min(10)]
        );
        if std::env::var_os("FERROMQ_CRASH_VERBOSE").is_some() {
            eprintln!(
                "round {round:3}: {kill:?}{}, {round_acked:4} acked, {} stored, recovery {:?} in {recovery:?}",
                if self_killed { " (reached)" } else { "" },
                verified.messages_in_store,
                store.recovery_mode(),
            );
        }
        // Alternate how the parent leaves the store: a clean close, or a crash of its own so
        // the next child starts with abnormal recovery (and an early kill hits it mid-way).
        parent_left_abort = rng.below(2) == 0;
        if parent_left_abort {
            store.simulate_crash();
        } else {
            store.close().unwrap();
        }
    }
    phase.acked = acked.iter().map(|a| a.count).sum();
    let acked_queues: BTreeMap<(&str, i32), i64> =
        acked.iter().fold(BTreeMap::new(), |mut m, a| {
            *m.entry((a.topic.as_str(), a.queue)).or_default() += a.count;
            m
        });
    assert!(phase.acked > 0, "no put was ever acknowledged: the test tested nothing");
    assert!(acked_queues.len() > 1, "acks came from one queue only: {acked_queues:?}");
    for (point, _) in &points {
        assert!(
            phase.reached.get(point).is_some_and(|&n| n > 0),
            "no child ever reached the kill point {point}: {:?} (missed {:?})",
            phase.reached,
            phase.missed
        );
    }
    if expiry {
        assert!(phase.expired > 0, "expiry never deleted an acknowledged message's segment");
    }
    phase
}

/// Writes a line to the real stderr, past the test harness's capture: the figures show in
/// the CI log.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn summarize(seed: u64, name: &str, phase: &Phase) {
    let mut times = phase.recovery_times.clone();
    times.sort();
    let percentile =
        |p: usize| times.get((times.len() * p / 100).min(times.len().saturating_sub(1)));
    let total: Duration = times.iter().sum();
    report(&format!(
        "kill -9 ({name}, seed {seed}): {} kills ({} during start-up, {} at named points: {:?}; \
         points not reached in time: {:?}); {} messages acknowledged, 0 lost{}; recovery mean \
         {:?}, p50 {:?}, p99 {:?}, max {:?}",
        phase.kills,
        phase.early_kills,
        phase.reached.values().sum::<u32>(),
        phase.reached,
        phase.missed,
        phase.acked,
        if phase.expired > 0 {
            format!(" ({} in segments expiry deleted)", phase.expired)
        } else {
            String::new()
        },
        total / times.len().max(1) as u32,
        percentile(50).copied().unwrap_or_default(),
        percentile(99).copied().unwrap_or_default(),
        times.last().copied().unwrap_or_default(),
    ));
}

#[test]
fn kill9_under_sync_flush_loses_no_acknowledged_message() {
    if std::env::var_os(CHILD_DIR_ENV).is_some() {
        return;
    }
    let seed = std::env::var(SEED_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(7, |d| d.as_nanos() as u64)
    });
    let rounds =
        std::env::var(ROUNDS_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_ROUNDS);
    report(&format!("kill -9 test: seed {seed} ({SEED_ENV}), {rounds} rounds ({ROUNDS_ENV})"));
    let dir = tempfile::tempdir().unwrap();
    let mut phases = Vec::new();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        for (name, expiry) in [("no expiry", false), ("expiry", true)] {
            let store_dir = dir.path().join(name.replace(' ', "-"));
            let phase_rounds = rounds / 2 + rounds % 2 * u32::from(!expiry);
            let phase = run_rounds(seed, phase_rounds.max(16), &store_dir, expiry);
            summarize(seed, name, &phase);
            phases.push(phase);
        }
    }));
    if let Err(panic) = outcome {
        report(&format!(
            "kill -9 test FAILED with {SEED_ENV}={seed} (stores kept in {})",
            dir.path().display()
        ));
        // Keep the directory for inspection.
        let _ = dir.keep();
        resume_unwind(panic);
    }
    let kills: u32 = phases.iter().map(|p| p.kills).sum();
    assert!(kills >= rounds.min(32), "{kills} kills");
}
