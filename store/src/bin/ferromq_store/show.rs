//! `dump` (a queue's messages from an offset) and `query` (messages by key): both open the
//! store through the engine, as the broker would, and print records for people.

use std::fmt::Write as _;
use std::path::PathBuf;

use ferromq_message::properties::parse_properties;
use ferromq_message::record::{self, RecordRef};
use ferromq_message::{property, sysflag};
use ferromq_store::{GetStatus, MessageStore};

use super::layout::{CliResult, Layout, SizeArgs, describe};

/// Most messages one `get` returns.
const GET_BATCH_MAX: u32 = 32;

/// `dump` arguments.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DumpArgs {
    /// The store's root directory.
    pub dir: PathBuf,
    /// Topic to read.
    #[arg(long)]
    pub topic: String,
    /// Queue id to read.
    #[arg(long)]
    pub queue: i32,
    /// First queue offset [default: the queue's minimum].
    #[arg(long)]
    pub offset: Option<i64>,
    /// How many messages to print.
    #[arg(long, default_value_t = 16)]
    pub count: u64,
    /// Body bytes to print per message.
    #[arg(long, default_value_t = 64)]
    pub body_bytes: usize,
    #[command(flatten)]
    pub sizes: SizeArgs,
}

/// `query` arguments.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct QueryArgs {
    /// The store's root directory.
    pub dir: PathBuf,
    /// Topic of the messages.
    #[arg(long)]
    pub topic: String,
    /// A key (one of `KEYS`) or a client message id (`UNIQ_KEY`).
    #[arg(long)]
    pub key: String,
    /// Most messages to return (the store caps it with `maxMsgsNumBatch`, 64).
    #[arg(long, default_value_t = 64)]
    pub max: usize,
    /// Body bytes to print per message.
    #[arg(long, default_value_t = 64)]
    pub body_bytes: usize,
    #[command(flatten)]
    pub sizes: SizeArgs,
}

/// Prints `count` messages of a queue from `offset`.
///
/// # Errors
/// When the store cannot be opened or read.
pub(crate) fn dump(args: &DumpArgs) -> CliResult<()> {
    let store = open(&args.dir, &args.sizes)?;
    let (topic, queue) = (args.topic.as_str(), args.queue);
    let min = store.min_offset_in_queue(topic, queue);
    let max = store.max_offset_in_queue(topic, queue)?;
    println!("{topic}/{queue}: queue offsets {min}..{max}");
    let mut offset = args.offset.unwrap_or(min);
    let mut printed = 0;
    while printed < args.count {
        let want = GET_BATCH_MAX.min(u32::try_from(args.count - printed).unwrap_or(GET_BATCH_MAX));
        let got = store.get(topic, queue, offset, want, &|_tags_code| true)?;
        if got.messages.is_empty() {
            if got.status != GetStatus::OffsetOverflowOne || printed == 0 {
                println!("no more messages at queue offset {offset}: {:?}", got.status);
            }
            break;
        }
        for bytes in &got.messages {
            print_record(bytes, args.body_bytes)?;
            printed += 1;
        }
        offset = got.next_begin_offset;
    }
    println!("{printed} messages");
    store.close()?;
    Ok(())
}

/// Prints the messages of `topic` whose `KEYS` or `UNIQ_KEY` equal the key. The index only
/// keeps hashes, so records of colliding keys are read and skipped here, as clients do.
///
/// # Errors
/// When the store cannot be opened or read.
pub(crate) fn query(args: &QueryArgs) -> CliResult<()> {
    let store = open(&args.dir, &args.sizes)?;
    let found = store.query_by_key(&args.topic, &args.key, args.max, 0, i64::MAX)?;
    let mut matched = 0;
    let mut collisions = 0;
    for bytes in &found.messages {
        let (rec, _) = record::decode_record(bytes).map_err(|e| describe("decode record", e))?;
        if rec.topic == args.topic && has_key(&rec, &args.key) {
            print_record(bytes, args.body_bytes)?;
            matched += 1;
        } else {
            collisions += 1;
        }
    }
    println!(
        "{matched} messages with key {:?} in {} ({collisions} hash collisions skipped)",
        args.key, args.topic
    );
    store.close()?;
    Ok(())
}

fn open(dir: &std::path::Path, sizes: &SizeArgs) -> CliResult<MessageStore> {
    let layout = Layout::detect(dir, sizes)?;
    MessageStore::open(layout.config()).map_err(|e| describe(format!("open {}", dir.display()), e))
}

fn has_key(rec: &RecordRef<'_>, key: &str) -> bool {
    let key = key.as_bytes();
    rec.property(property::UNIQ_KEY) == Some(key)
        || rec
            .property(property::KEYS)
            .is_some_and(|keys| keys.split(|&b| b == b' ').any(|k| k == key))
}

/// Prints one stored record: offsets and ids, hosts and times, properties, body.
fn print_record(bytes: &[u8], body_bytes: usize) -> CliResult<()> {
    let (rec, size) = record::decode_record(bytes).map_err(|e| describe("decode record", e))?;
    println!(
        "--- {}/{} queue offset {}  phy offset {}  size {size}  msgId {}",
        rec.topic,
        rec.queue_id,
        rec.queue_offset,
        rec.physical_offset,
        rec.offset_msg_id()
    );
    println!(
        "    flag={} sysflag={:#x} ({}) bodyCRC={} reconsumeTimes={} preparedTransactionOffset={}",
        rec.flag,
        rec.sysflag,
        transaction_name(rec.sysflag),
        rec.body_crc,
        rec.reconsume_times,
        rec.prepared_transaction_offset
    );
    println!(
        "    born {} at {}, stored {} on {}",
        format_ms(rec.born_timestamp),
        rec.born_host,
        format_ms(rec.store_timestamp),
        rec.store_host
    );
    let properties = parse_properties(rec.properties);
    let mut line = String::new();
    for (name, value) in &properties {
        let _ = write!(line, " {name}={value}");
    }
    println!("    properties:{line}");
    println!("    body ({} bytes): {}", rec.body.len(), preview(rec.body, body_bytes));
    Ok(())
}

fn transaction_name(flag: i32) -> &'static str {
    match sysflag::transaction_type(flag) {
        sysflag::TRANSACTION_PREPARED_TYPE => "PREPARED",
        sysflag::TRANSACTION_COMMIT_TYPE => "COMMIT",
        sysflag::TRANSACTION_ROLLBACK_TYPE => "ROLLBACK",
        _ => "NOT",
    }
}

/// The first `max` bytes of a body: quoted text when printable UTF-8, else hex.
fn preview(body: &[u8], max: usize) -> String {
    let shown = &body[..body.len().min(max)];
    let more = if body.len() > max { "..." } else { "" };
    match std::str::from_utf8(shown) {
        Ok(text) if !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
            format!("{text:?}{more}")
        }
        _ => {
            let mut hex = String::with_capacity(shown.len() * 2 + 3);
            for byte in shown {
                let _ = write!(hex, "{byte:02x}");
            }
            format!("0x{hex}{more}")
        }
    }
}

/// `ms` since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub(crate) fn format_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = ferromq_message::msg_id::civil_from_days(days);
    let (hour, minute) = (in_day / 3_600_000, in_day / 60_000 % 60);
    let (second, milli) = (in_day / 1000 % 60, in_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(format_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn previews_text_and_binary() {
        assert_eq!(preview(b"hello world", 5), "\"hello\"...");
        assert_eq!(preview(&[0, 1, 255], 8), "0x0001ff");
    }
}
