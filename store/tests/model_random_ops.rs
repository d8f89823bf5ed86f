//! Model test: random puts, batches, filtered gets, flushes, clean restarts and simulated
//! crashes against an in-memory model (a `Vec` of messages per queue). Every get is
//! compared with what the model predicts: status, messages, next offset, min and max.
//!
//! The store runs with async flush. A simulated crash loses nothing here: the process keeps
//! running, so the page cache holding the unflushed writes survives, exactly as it does for
//! a `kill -9` (see `FlushMode::Async`).
//!
//! proptest shrinks a failing run to a short list of operations and keeps it in
//! `proptest-regressions/`; turn such a case into a named test below.

// Helpers outside `#[test]` functions unwrap too: mark the whole file as test code so that
// clippy's `allow-unwrap-in-tests` covers them.
#![cfg(test)]

use std::collections::HashMap;
use std::fmt::Display;
use std::path::Path;

use ferromq_message::batch::encode_batch_item;
use ferromq_message::hash::tags_code;
use ferromq_message::properties::{Properties, encode_properties};
use ferromq_message::record::crc_property::{compute_record_crc, encode_crc_property};
use ferromq_message::record::decode_record;
use ferromq_store::{GetStatus, MessageStore, PutMessage, RecoveryMode, StoreConfig};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const TOPICS: [&str; 3] = ["ModelTopicA", "ModelTopicB", "%RETRY%ModelGroup"];
const QUEUES: i32 = 4;
const TAGS: [&str; 3] = ["TagA", "TagB", "TagC"];
/// Units per ConsumeQueue file in `small_for_tests`; a get never crosses a file.
const CQ_FILE_UNITS: i64 = 100;
/// `max_transfer_count_on_message_in_memory`: most messages of one get.
const MAX_TRANSFER_COUNT: usize = 32;

/// A message body: `len` bytes derived from `seed`.
#[derive(Debug, Clone, Copy)]
struct BodySpec {
    len: usize,
    seed: u8,
}

impl BodySpec {
    fn bytes(self) -> Vec<u8> {
        (0..self.len).map(|i| self.seed.wrapping_add((i as u8).wrapping_mul(31))).collect()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put {
        topic: usize,
        queue: i32,
        body: BodySpec,
        tag: Option<usize>,
    },
    Batch {
        topic: usize,
        queue: i32,
        items: Vec<(BodySpec, Option<usize>)>,
    },
    /// `pick` selects an offset in `-1..=max + 2` of the queue as the model knows it.
    Get {
        topic: usize,
        queue: i32,
        pick: u32,
        max_count: u32,
        filter: Option<usize>,
    },
    Flush,
    Reopen,
    Crash,
}

fn body_spec() -> impl Strategy<Value = BodySpec> {
    (0usize..2000, any::<u8>()).prop_map(|(len, seed)| BodySpec { len, seed })
}

fn tag() -> impl Strategy<Value = Option<usize>> {
    prop::option::of(0..TAGS.len())
}

fn op() -> impl Strategy<Value = Op> {
    let topic = 0..TOPICS.len();
    let queue = 0..QUEUES;
    prop_oneof![
        8 => (topic.clone(), queue.clone(), body_spec(), tag())
            .prop_map(|(topic, queue, body, tag)| Op::Put { topic, queue, body, tag }),
        2 => (topic.clone(), queue.clone(), prop::collection::vec((body_spec(), tag()), 1..8))
            .prop_map(|(topic, queue, items)| Op::Batch { topic, queue, items }),
        8 => (topic, queue, any::<u32>(), 0u32..40, tag())
            .prop_map(|(topic, queue, pick, max_count, filter)| Op::Get { topic, queue, pick, max_count, filter }),
        1 => Just(Op::Flush),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
    ]
}

/// What the model remembers of a stored message.
#[derive(Debug, Clone)]
struct ModelMessage {
    body: Vec<u8>,
    tag: Option<usize>,
    phy_offset: i64,
}

type Model = HashMap<(usize, i32), Vec<ModelMessage>>;

fn ok<T, E: Display>(result: Result<T, E>, what: &str) -> Result<T, TestCaseError> {
    result.map_err(|e| TestCaseError::fail(format!("{what}: {e}")))
}

/// The producer's properties of a stored record `raw`, after checking that the store ended
/// them with the record-CRC property (`enabled_append_prop_crc`, on by default) and that it
/// matches the record.
fn user_properties<'a>(raw: &[u8], stored: &'a [u8]) -> Option<&'a [u8]> {
    let crc = compute_record_crc(raw)?;
    stored.strip_suffix(&encode_crc_property(crc)[..])
}

fn properties_of(tag: Option<usize>) -> Vec<u8> {
    let mut properties = Properties::new();
    if let Some(tag) = tag {
        properties.insert("TAGS".into(), TAGS[tag].into());
    }
    properties.insert("KEYS".into(), "model".into());
    encode_properties(&properties)
}

fn open(dir: &Path) -> Result<MessageStore, TestCaseError> {
    ok(MessageStore::open(StoreConfig::small_for_tests(dir)), "open")
}

/// The model's answer to a get: (status, queue offsets returned, next begin offset).
fn model_get(
    queue: &[ModelMessage],
    exists: bool,
    offset: i64,
    max_count: u32,
    filter: Option<usize>,
) -> (GetStatus, Vec<i64>, i64) {
    let max = queue.len() as i64;
    if !exists {
        return (GetStatus::NoMatchedLogicQueue, vec![], 0);
    }
    if max == 0 {
        return (GetStatus::NoMessageInQueue, vec![], 0);
    }
    if offset < 0 {
        return (GetStatus::OffsetTooSmall, vec![], 0);
    }
    if offset == max {
        return (GetStatus::OffsetOverflowOne, vec![], offset);
    }
    if offset > max {
        return (GetStatus::OffsetOverflowBadly, vec![], max);
    }
    // The first message is always taken; then at most max_count (and 32) in all.
    let cap = (max_count as usize).clamp(1, MAX_TRANSFER_COUNT);
    let file_end = (offset / CQ_FILE_UNITS + 1) * CQ_FILE_UNITS;
    let mut found = Vec::new();
    let mut next = offset;
    for at in offset..max.min(file_end) {
        if found.len() >= cap {
            break;
        }
        next = at + 1;
        let code = queue[at as usize].tag.map_or(0, |t| tags_code(TAGS[t]));
        if filter.is_none_or(|f| tags_code(TAGS[f]) == code) {
            found.push(at);
        }
    }
    let status = if found.is_empty() { GetStatus::NoMatchedMessage } else { GetStatus::Found };
    (status, found, next)
}

/// Checks one get against the model.
fn check_get(
    store: &MessageStore,
    model: &Model,
    (topic, queue): (usize, i32),
    offset: i64,
    max_count: u32,
    filter: Option<usize>,
) -> Result<(), TestCaseError> {
    let messages = model.get(&(topic, queue));
    let known = messages.map_or(&[][..], Vec::as_slice);
    let filter_fn = |code: i64| filter.is_none_or(|f| tags_code(TAGS[f]) == code);
    let got = ok(store.get(TOPICS[topic], queue, offset, max_count, &filter_fn), "get")?;
    let (status, offsets, next) = model_get(known, messages.is_some(), offset, max_count, filter);
    let at = format!("get {}/{queue}@{offset} max {max_count} filter {filter:?}", TOPICS[topic]);
    prop_assert_eq!(got.status, status, "{}", at);
    prop_assert_eq!(got.next_begin_offset, next, "{} next_begin_offset", at);
    prop_assert_eq!(got.messages.len(), offsets.len(), "{} message count", at);
    if messages.is_some() {
        prop_assert_eq!(got.min_offset, 0, "{} min", at);
        prop_assert_eq!(got.max_offset, known.len() as i64, "{} max", at);
    }
    for (raw, &queue_offset) in got.messages.iter().zip(&offsets) {
        let want = &known[queue_offset as usize];
        let (rec, len) = ok(decode_record(raw), "decode")?;
        prop_assert_eq!(len, raw.len());
        prop_assert_eq!(rec.topic, TOPICS[topic]);
        prop_assert_eq!(rec.queue_id, queue);
        prop_assert_eq!(rec.queue_offset, queue_offset, "{}", at);
        prop_assert_eq!(rec.physical_offset, want.phy_offset, "{}", at);
        prop_assert_eq!(rec.body, &want.body[..], "{} body at {}", at, queue_offset);
        let properties = properties_of(want.tag);
        prop_assert_eq!(user_properties(raw, rec.properties), Some(&properties[..]), "{}", at);
    }
    Ok(())
}

/// After a restart every queue has the model's length.
fn check_all_queues(store: &MessageStore, model: &Model) -> Result<(), TestCaseError> {
    for (topic, name) in TOPICS.iter().enumerate() {
        for queue in 0..QUEUES {
            let want = model.get(&(topic, queue)).map_or(0, Vec::len) as i64;
            let max = ok(store.max_offset_in_queue(name, queue), "max offset")?;
            prop_assert_eq!(max, want, "max offset of {}/{}", name, queue);
            prop_assert_eq!(store.min_offset_in_queue(name, queue), 0);
        }
    }
    Ok(())
}

/// Runs `ops` on a fresh store and compares every read with the model.
fn run_ops(ops: &[Op]) -> Result<(), TestCaseError> {
    let dir = ok(tempfile::tempdir(), "tempdir")?;
    let mut store = Some(open(dir.path())?);
    let mut model = Model::new();
    let mut batch = Vec::new();
    for op in ops {
        let Some(live) = store.as_ref() else { return Err(TestCaseError::fail("no store")) };
        match op {
            Op::Put { topic, queue, body, tag } => {
                let (body, properties) = (body.bytes(), properties_of(*tag));
                let mut message = PutMessage::new(TOPICS[*topic], *queue, &body);
                message.properties = &properties;
                let put = ok(live.put(&message), "put")?;
                prop_assert!(put.status.is_ok(), "{:?}", put);
                let messages = model.entry((*topic, *queue)).or_default();
                prop_assert_eq!(put.queue_offset, messages.len() as i64);
                prop_assert_eq!(put.message_count, 1);
                messages.push(ModelMessage { body, tag: *tag, phy_offset: put.phy_offset });
            }
            Op::Batch { topic, queue, items } => {
                batch.clear();
                for (body, tag) in items {
                    ok(
                        encode_batch_item(0, &body.bytes(), &properties_of(*tag), &mut batch),
                        "encode",
                    )?;
                }
                let put = ok(
                    live.put_batch(&PutMessage::new(TOPICS[*topic], *queue, b""), &batch),
                    "batch",
                )?;
                prop_assert!(put.status.is_ok(), "{:?}", put);
                let messages = model.entry((*topic, *queue)).or_default();
                prop_assert_eq!(put.queue_offset, messages.len() as i64);
                prop_assert_eq!(put.message_count as usize, items.len());
                prop_assert_eq!(put.batch_phy_offsets.len(), items.len());
                prop_assert_eq!(put.batch_phy_offsets[0], put.phy_offset);
                for ((body, tag), &phy_offset) in items.iter().zip(&put.batch_phy_offsets) {
                    messages.push(ModelMessage { body: body.bytes(), tag: *tag, phy_offset });
                }
            }
            Op::Get { topic, queue, pick, max_count, filter } => {
                let max = model.get(&(*topic, *queue)).map_or(0, Vec::len) as i64;
                let offset = i64::from(*pick) % (max + 4) - 1;
                check_get(live, &model, (*topic, *queue), offset, *max_count, *filter)?;
            }
            Op::Flush => ok(live.flush(), "flush")?,
            Op::Reopen => {
                if let Some(store) = store.take() {
                    ok(store.close(), "close")?;
                }
                let reopened = open(dir.path())?;
                prop_assert_eq!(reopened.recovery_mode(), RecoveryMode::Normal);
                check_all_queues(&reopened, &model)?;
                store = Some(reopened);
            }
            Op::Crash => {
                if let Some(store) = store.take() {
                    store.simulate_crash();
                }
                let reopened = open(dir.path())?;
                prop_assert_eq!(reopened.recovery_mode(), RecoveryMode::Abnormal);
                check_all_queues(&reopened, &model)?;
                store = Some(reopened);
            }
        }
    }
    // Finally read every queue from start to end.
    if let Some(live) = store.as_ref() {
        for (&(topic, queue), messages) in &model {
            let mut offset = 0;
            while offset < messages.len() as i64 {
                check_get(live, &model, (topic, queue), offset, 32, None)?;
                offset = (offset / CQ_FILE_UNITS + 1) * CQ_FILE_UNITS;
                offset = offset.min(messages.len() as i64);
            }
        }
    }
    if let Some(store) = store.take() {
        ok(store.close(), "close")?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_model(ops in prop::collection::vec(op(), 1..160)) {
        run_ops(&ops)?;
    }
}

/// Many messages in one queue: gets cross ConsumeQueue files and CommitLog segments, and a
/// crash and a clean restart happen with several files of each.
#[test]
fn store_matches_model_on_a_long_queue() {
    let mut ops = Vec::new();
    for n in 0..400u32 {
        let body = BodySpec { len: (n as usize * 97) % 2000, seed: n as u8 };
        let tag = (n % 4 != 3).then_some((n % 3) as usize);
        ops.push(Op::Put { topic: 0, queue: 1, body, tag });
        if n % 50 == 49 {
            ops.push(Op::Batch {
                topic: 0,
                queue: 1,
                items: vec![(body, tag), (body, None), (body, Some(2))],
            });
        }
        if n == 150 {
            ops.push(Op::Crash);
        }
        if n == 300 {
            ops.push(Op::Reopen);
        }
    }
    for pick in (0..440).step_by(7) {
        for filter in [None, Some(0), Some(2)] {
            ops.push(Op::Get { topic: 0, queue: 1, pick, max_count: 40, filter });
        }
    }
    run_ops(&ops).unwrap();
}
