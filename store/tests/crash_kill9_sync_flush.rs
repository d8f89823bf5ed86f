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
//! The parent kills the child with SIGKILL after a random (seeded) delay, reopens the store
//! (abnormal recovery), and checks that every acknowledged message is at its queue offset
//! and physical offset with byte-identical content, and that every queue is dense and holds
//! exactly the expected message at each offset. Rounds repeat on the same directory.
//!
//! Environment: `FERROMQ_CRASH_ROUNDS` (default 20), `FERROMQ_CRASH_SEED` (default: time).

// Helpers outside `#[test]` functions unwrap too: mark the whole file as test code so that
// clippy's `allow-unwrap-in-tests` covers them.
#![cfg(test)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferromq_message::batch::encode_batch_item;
use ferromq_message::properties::{Properties, encode_properties};
use ferromq_message::record::crc_property::{compute_record_crc, encode_crc_property};
use ferromq_message::record::decode_record;
use ferromq_store::{
    FlushMode, GetStatus, MessageStore, PutMessage, PutStatus, RecoveryMode, StoreConfig,
};

const CHILD_DIR_ENV: &str = "FERROMQ_CRASH_CHILD_DIR";
const CHILD_SEED_ENV: &str = "FERROMQ_CRASH_CHILD_SEED";
const ROUNDS_ENV: &str = "FERROMQ_CRASH_ROUNDS";
const SEED_ENV: &str = "FERROMQ_CRASH_SEED";
const CHILD_TEST: &str = "crash_child_writer";

const TOPICS: [&str; 3] = ["CrashTopicA", "CrashTopicB", "CrashTopicC"];
const QUEUES_PER_TOPIC: i32 = 3;
const WRITERS: usize = 3;
/// A child that was never killed stops by itself after this long.
const CHILD_MAX_RUN: Duration = Duration::from_secs(30);
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
    });
    store.close().unwrap();
}

/// A reader next to the writers: under sync flush it must only ever see flushed records,
/// and each must be the expected message at its offset.
fn read_loop(store: &MessageStore, seed: u64) -> Result<(), String> {
    let mut rng = Rng::new(seed ^ 0xABCD);
    let queues = all_queues();
    let deadline = Instant::now() + CHILD_MAX_RUN;
    while Instant::now() < deadline {
        let (topic, queue) = queues[rng.below(queues.len() as u64) as usize];
        let max = store.max_offset_in_queue(topic, queue).map_err(|e| e.to_string())?;
        if max == 0 {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let offset = rng.below(max as u64) as i64;
        let got = store.get(topic, queue, offset, 8, &|_| true).map_err(|e| e.to_string())?;
        let flushed = store.flushed_phy_offset();
        if got.status != GetStatus::Found {
            return Err(format!(
                "reader: {topic}/{queue}@{offset} below max {max}: {:?}",
                got.status
            ));
        }
        for (i, raw) in got.messages.iter().enumerate() {
            let at = offset + i as i64;
            let (rec, _) =
                decode_record(raw).map_err(|e| format!("reader: {topic}/{queue}@{at}: {e}"))?;
            let end = rec.physical_offset + raw.len() as i64;
            if end > flushed {
                return Err(format!(
                    "reader saw {topic}/{queue}@{at} ending at {end}, flushed only {flushed}"
                ));
            }
            let want = expected(topic, queue, at);
            if rec.queue_offset != at
                || rec.body != want.body.as_slice()
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
}

/// Checks every acknowledged message and every queue's content. Returns what was wrong
/// rather than panicking at the first problem, so that the report counts all losses.
fn verify(store: &MessageStore, acks: &[Ack]) -> Verified {
    let mut verified = Verified::default();
    let mut problem = |what: String| verified.lost.push(what);
    for ack in acks {
        if ack.seq != ack.queue_offset {
            problem(format!(
                "{ack:?}: the store assigned offset {} to seq {}",
                ack.queue_offset, ack.seq
            ));
        }
        for i in 0..ack.count {
            let offset = ack.queue_offset + i;
            let at = format!("{}/{}@{offset}", ack.topic, ack.queue);
            let got = match store.get(&ack.topic, ack.queue, offset, 1, &|_| true) {
                Ok(got) => got,
                Err(err) => {
                    problem(format!("{at}: get failed: {err}"));
                    continue;
                }
            };
            if got.status != GetStatus::Found || got.messages.len() != 1 {
                problem(format!(
                    "{at}: acknowledged message missing: {:?}, max {}",
                    got.status, got.max_offset
                ));
                continue;
            }
            let raw = &got.messages[0];
            let phy = ack.phys[i as usize];
            match decode_record(raw) {
                Ok((rec, len)) => {
                    let want = expected(&ack.topic, ack.queue, ack.seq + i);
                    let same = len == raw.len()
                        && rec.topic == ack.topic
                        && rec.queue_id == ack.queue
                        && rec.queue_offset == offset
                        && rec.physical_offset == phy
                        && rec.flag == want.flag
                        && rec.body == want.body.as_slice()
                        && user_properties(raw, rec.properties) == Some(want.properties.as_slice());
                    if !same {
                        problem(format!(
                            "{at}: content differs from what was acknowledged: {rec:?}"
                        ));
                    }
                }
                Err(err) => problem(format!("{at}: does not decode: {err}")),
            }
            match store.message_by_phy_offset(phy) {
                Ok(Some(by_phy)) if by_phy == *raw => {}
                other => problem(format!("{at}: message_by_phy_offset({phy}) = {other:?}")),
            }
        }
    }
    for (topic, queue) in all_queues() {
        let min = store.min_offset_in_queue(topic, queue);
        let max = match store.max_offset_in_queue(topic, queue) {
            Ok(max) => max,
            Err(err) => {
                problem(format!("{topic}/{queue}: max offset failed: {err}"));
                continue;
            }
        };
        if min != 0 {
            problem(format!("{topic}/{queue}: min offset {min}, expected 0"));
        }
        verified.messages_in_store += max;
        let (mut offset, mut last_phy) = (0, -1);
        while offset < max {
            let got = match store.get(topic, queue, offset, 32, &|_| true) {
                Ok(got) if got.status == GetStatus::Found => got,
                other => {
                    problem(format!("{topic}/{queue}@{offset} (max {max}): {other:?}"));
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
                    fine
                });
                if !ok {
                    problem(format!(
                        "{topic}/{queue}@{offset}: not the expected message (gap or garbage)"
                    ));
                }
                offset += 1;
            }
            if got.next_begin_offset != offset {
                problem(format!(
                    "{topic}/{queue}: next_begin_offset {} after {offset}",
                    got.next_begin_offset
                ));
                break;
            }
        }
    }
    verified
}

fn run_rounds(seed: u64, rounds: u32, store_dir: &Path) {
    let mut rng = Rng::new(seed);
    let exe = std::env::current_exe().unwrap();
    let mut acked: Vec<Ack> = Vec::new();
    let (mut kills, mut early_kills) = (0, 0);
    let mut recovery_times = Vec::new();
    let mut parent_left_abort = false;
    let mut time_to_ready = Duration::from_millis(20);
    for round in 0..rounds {
        // One round in six kills during start-up (process start, open, recovery): at a
        // random point before the last round's child became ready. The rest kill while
        // writing.
        let early = rng.below(6) == 0;
        let delay = if early {
            Duration::from_micros(rng.below(time_to_ready.as_micros() as u64 + 1))
        } else {
            Duration::from_millis(20 + rng.below(281))
        };
        let spawned = Instant::now();
        let mut child = ChildGuard(
            Command::new(&exe)
                .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads", "1"])
                .env(CHILD_DIR_ENV, store_dir)
                .env(CHILD_SEED_ENV, rng.next_u64().to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap(),
        );
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
        let mut round_acks = Vec::new();
        let mut ready = false;
        let mut malformed = Vec::new();
        let mut take = |event: Event, ready: &mut bool| match event {
            Event::Ready => *ready = true,
            Event::Ack(ack) => round_acks.push(ack),
            Event::Malformed(line) => malformed.push(line),
        };
        if !early {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !ready {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(Event::Malformed(line)) => panic!("round {round}: {line}"),
                    Ok(event) => take(event, &mut ready),
                    Err(err) => panic!("round {round}: child never became ready: {err}"),
                }
            }
            time_to_ready = spawned.elapsed();
        }
        std::thread::sleep(delay);
        if let Some(status) = child.try_wait().unwrap() {
            reader.join().unwrap();
            let said: Vec<String> = rx
                .try_iter()
                .filter_map(|event| match event {
                    Event::Malformed(line) => Some(line),
                    _ => None,
                })
                .collect();
            panic!("round {round}: child exited on its own ({status}): {said:#?}");
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "round {round}: child was killed, yet {status:?}");
        kills += 1;
        early_kills += usize::from(early);
        reader.join().unwrap();
        for event in rx.try_iter() {
            take(event, &mut ready);
        }
        assert!(malformed.is_empty(), "round {round}: bad lines from the child: {malformed:#?}");

        let started = Instant::now();
        let store = MessageStore::open(config(store_dir)).unwrap();
        let recovery = started.elapsed();
        recovery_times.push(recovery);
        if ready || parent_left_abort {
            assert_eq!(store.recovery_mode(), RecoveryMode::Abnormal, "round {round}");
        }
        let round_acked: i64 = round_acks.iter().map(|a| a.count).sum();
        acked.extend(round_acks);
        let verified = verify(&store, &acked);
        let total_acked: i64 = acked.iter().map(|a| a.count).sum();
        eprintln!(
            "round {round:2}: {} kill after {:3} ms{}, {round_acked:4} acked ({total_acked} total, \
             {} stored), recovery {:?} in {recovery:?}",
            if early { "early" } else { "write" },
            delay.as_millis(),
            if ready { "" } else { " (before ready)" },
            verified.messages_in_store,
            store.recovery_mode(),
        );
        assert!(
            verified.lost.is_empty(),
            "round {round}: {} problems after recovery, first: {:#?}",
            verified.lost.len(),
            &verified.lost[..verified.lost.len().min(10)]
        );
        // Alternate how the parent leaves the store: a clean close, or a crash of its own so
        // the next child starts with abnormal recovery (and an early kill hits it mid-way).
        parent_left_abort = rng.below(2) == 0;
        if parent_left_abort {
            store.simulate_crash();
        } else {
            store.close().unwrap();
        }
    }
    let total_acked: i64 = acked.iter().map(|a| a.count).sum();
    let slowest = recovery_times.iter().max().copied().unwrap_or_default();
    let total: Duration = recovery_times.iter().sum();
    eprintln!(
        "seed {seed}: {kills} kills ({early_kills} during start-up), {total_acked} messages acked, \
         0 lost; recovery mean {:?}, max {slowest:?}",
        total / recovery_times.len().max(1) as u32
    );
    assert!(total_acked > 0, "no put was ever acknowledged: the test tested nothing");
    let acked_queues: BTreeMap<(&str, i32), i64> =
        acked.iter().fold(BTreeMap::new(), |mut m, a| {
            *m.entry((a.topic.as_str(), a.queue)).or_default() += a.count;
            m
        });
    assert!(acked_queues.len() > 1, "acks came from one queue only: {acked_queues:?}");
}

#[test]
fn kill9_under_sync_flush_loses_no_acknowledged_message() {
    if std::env::var_os(CHILD_DIR_ENV).is_some() {
        return;
    }
    let seed = std::env::var(SEED_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(7, |d| d.as_nanos() as u64)
    });
    let rounds = std::env::var(ROUNDS_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    eprintln!("crash test: seed {seed} ({SEED_ENV}), {rounds} rounds ({ROUNDS_ENV})");
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run_rounds(seed, rounds, &store_dir))) {
        eprintln!(
            "crash test FAILED with {SEED_ENV}={seed} (store kept at {})",
            store_dir.display()
        );
        // Keep the directory for inspection.
        let _ = dir.keep();
        resume_unwind(panic);
    }
}
