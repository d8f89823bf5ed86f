//! Embeds the store in a few lines: opens `./data/store` (or the directory given as the first
//! argument), stores a few messages with tags and keys, reads them back by queue offset and by
//! key, and closes cleanly. Run it twice to see the store recover and continue.
//!
//! `cargo run --release -p ferromq-store --example embed [DIR]`

use std::error::Error;

use ferromq_message::properties::{Properties, encode_properties};
use ferromq_message::record;
use ferromq_store::{FlushMode, MessageStore, PutMessage, StoreConfig};

fn main() -> Result<(), Box<dyn Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "./data/store".to_owned());
    let mut config = StoreConfig::new(&dir);
    config.mapped_file_size_commit_log = 64 << 20; // small segments for a demo
    config.flush_disk_type = FlushMode::Sync;
    let store = MessageStore::open(config)?;
    println!("opened {dir} ({:?} recovery)", store.recovery_mode());

    let first = store.max_offset_in_queue("DemoTopic", 0)?;
    for i in 0..5 {
        let mut properties = Properties::new();
        properties.insert("TAGS".into(), if i % 2 == 0 { "even" } else { "odd" }.into());
        properties.insert("KEYS".into(), format!("order-{}", first + i));
        let properties = encode_properties(&properties);
        let body = format!("hello #{}", first + i);
        let message = PutMessage {
            properties: &properties,
            ..PutMessage::new("DemoTopic", 0, body.as_bytes())
        };
        let put = store.put(&message)?;
        println!("put {:?}: queue offset {}, msgId {}", put.status, put.queue_offset, put.msg_id());
    }

    let even = ferromq_message::hash::tags_code("even");
    let got = store.get("DemoTopic", 0, first, 32, &|tags_code| tags_code == even)?;
    println!("get from {first} (tag even): {:?}, next {}", got.status, got.next_begin_offset);
    for raw in &got.messages {
        let (rec, _) = record::decode_record(raw)?;
        println!("  offset {} body {:?}", rec.queue_offset, String::from_utf8_lossy(rec.body));
    }

    let key = format!("order-{first}");
    for _ in 0..100 {
        let found = store.query_by_key("DemoTopic", &key, 32, 0, i64::MAX)?;
        if !found.messages.is_empty() {
            println!("query key {key}: {} message(s)", found.messages.len());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    store.close()?;
    println!("closed cleanly");
    Ok(())
}
