//! Golden inputs: every frame captured from real clients in `shared/wire-samples` must
//! decode, match the header text recorded in its folder's INDEX.md, and satisfy the typed
//! request header (and, for HEART_BEAT, the typed body) a broker or name server reads.
//!
//! The directory is required: if it is missing the test fails rather than passing vacuously.

// The helpers below are test code too: a malformed fixture must abort the test loudly.
#![expect(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "helpers of this test file fail the test on malformed fixtures"
)]

use std::fs;
use std::path::{Path, PathBuf};

use bytes::BytesMut;
use ferromq_remoting::bodies::{HeartbeatData, JsonBody};
use ferromq_remoting::headers::check_request_header;
use ferromq_remoting::json::{self, Value};
use ferromq_remoting::{FrameDecoder, LanguageCode, RemotingCommand, RequestCode};

/// One INDEX.md entry.
struct IndexEntry {
    file: String,
    body_len: usize,
    oneway: bool,
    /// Header text as recorded; INDEX.md cuts long headers at 600 characters.
    header: String,
}

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/wire-samples")
}

fn parse_index(text: &str) -> Vec<IndexEntry> {
    let mut entries = Vec::new();
    for chunk in text.split("\n- `").skip(1) {
        let (file, rest) = chunk.split_once('`').expect("file name");
        let (description, rest) = rest.split_once("\n  header: `").expect("header line");
        let header = rest.rsplit_once('`').expect("closing backtick").0;
        let body_len = description
            .split("body ")
            .nth(1)
            .and_then(|tail| tail.split(' ').next())
            .and_then(|digits| digits.parse().ok())
            .expect("body size");
        entries.push(IndexEntry {
            file: file.to_owned(),
            body_len,
            oneway: description.contains("oneway"),
            header: header.to_owned(),
        });
    }
    entries
}

fn decode_file(path: &Path) -> (RemotingCommand, Vec<u8>) {
    let bytes = fs::read(path).expect("read sample");
    let mut buf = BytesMut::from(&bytes[..]);
    let frame = FrameDecoder::default()
        .decode(&mut buf)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .unwrap_or_else(|| panic!("{}: incomplete frame", path.display()));
    assert!(buf.is_empty(), "{}: bytes after the frame", path.display());
    let header = frame.header.to_vec();
    let command = RemotingCommand::from_frame(frame)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    (command, header)
}

/// Compares the decoded command with the fields of a complete INDEX header.
fn check_against_index_json(command: &RemotingCommand, index_header: &Value, name: &str) {
    let object = index_header.as_object().expect("index header object");
    let int = |key: &str| object.get(key).and_then(Value::to_i64_lenient);
    assert_eq!(int("code"), Some(i64::from(command.code)), "{name} code");
    assert_eq!(int("opaque"), Some(i64::from(command.opaque)), "{name} opaque");
    assert_eq!(int("version"), Some(i64::from(command.version)), "{name} version");
    assert_eq!(int("flag").unwrap_or(0), i64::from(command.flag), "{name} flag");
    let language = object.get("language").and_then(Value::as_str).expect("language");
    assert_eq!(command.language.name(), language, "{name} language");
    let fields = object.get("extFields").and_then(Value::as_object).expect("extFields");
    let decoded = command.ext_fields.as_ref().expect("decoded extFields");
    for (key, value) in fields.iter() {
        let key = key.as_str().expect("string key");
        assert_eq!(
            decoded.get(key).map(String::as_str),
            value.to_field_string().as_deref(),
            "{name} extFields.{key}"
        );
    }
}

fn check_sample(dir: &Path, entry: &IndexEntry) {
    let name = format!("{}/{}", dir.display(), entry.file);
    let (command, raw_header) = decode_file(&dir.join(&entry.file));
    let raw_header = String::from_utf8(raw_header).expect("UTF-8 header");
    assert!(raw_header.starts_with(&entry.header), "{name}: header differs from INDEX.md");
    let code_in_name: i32 = entry.file.split('-').next().unwrap().parse().unwrap();
    assert_eq!(command.code, code_in_name, "{name}");
    assert!(RequestCode::name(command.code).is_some(), "{name}: unnamed code");
    assert_eq!(command.body.len(), entry.body_len, "{name} body size");
    assert_eq!(command.is_oneway(), entry.oneway, "{name} oneway");
    assert!(!command.is_response(), "{name}");
    assert_ne!(command.language, LanguageCode::Other, "{name}");
    // A complete header in INDEX.md must carry the same values; a cut one is only a prefix.
    if entry.header.len() == raw_header.trim_end().len() {
        let index_json = json::parse(entry.header.as_bytes()).expect("INDEX header parses");
        check_against_index_json(&command, &index_json, &name);
    }
    let fields = command.ext_fields.clone().unwrap_or_default();
    check_request_header(command.code, &fields).unwrap_or_else(|err| panic!("{name}: {err}"));
    if command.code == RequestCode::HEART_BEAT.code() {
        let heartbeat =
            HeartbeatData::decode(&command.body).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert!(!heartbeat.client_id.is_empty(), "{name}");
    }
}

#[test]
fn every_captured_frame_decodes_and_matches_its_index() {
    let root = samples_dir();
    let clients = fs::read_dir(&root)
        .unwrap_or_else(|err| panic!("wire samples missing at {}: {err}", root.display()));
    let mut frames_checked = 0;
    for client in clients {
        let dir = client.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let index = fs::read_to_string(dir.join("INDEX.md")).expect("INDEX.md");
        let entries = parse_index(&index);
        let mut bins: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|file| file.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|file| file.ends_with(".bin"))
            .collect();
        bins.sort();
        let mut listed: Vec<String> = entries.iter().map(|entry| entry.file.clone()).collect();
        listed.sort();
        assert_eq!(bins, listed, "{}: INDEX.md and .bin files differ", dir.display());
        for entry in &entries {
            check_sample(&dir, entry);
            frames_checked += 1;
        }
    }
    assert!(frames_checked >= 60, "only {frames_checked} frames found");
}

#[test]
fn cpp_send_message_decodes_with_long_names_and_signature_fields() {
    let path = samples_dir().join("rocketmq-client-cpp-via-python-0.4.4/10-SEND_MESSAGE-1.bin");
    let (command, _) = decode_file(&path);
    let fields = command.ext_fields.clone().unwrap();
    let header =
        ferromq_remoting::headers::decode_send_request_header(command.code, &fields).unwrap();
    assert_eq!(header.producer_group, "PID_kit_py_1a2012cf6e17cfc11");
    assert_eq!(header.default_topic_queue_nums, 4);
    assert_eq!(header.born_timestamp, 1_795_316_053_734);
    // C++ sends `"batch":"0"`; Java's Boolean.parseBoolean reads it as false.
    assert_eq!(header.batch, Some(false));
    assert!(header.properties.unwrap().contains("kit_note\u{1}ünïcødé ✓\u{2}"));
    assert_eq!(command.language, LanguageCode::Cpp);
    assert_eq!(command.remark.as_deref(), Some(""));
}

#[test]
fn rust_batch_send_uses_v2_names() {
    let path = samples_dir().join("rocketmq-client-rust-1.0.0/320-SEND_BATCH_MESSAGE-1.bin");
    let (command, _) = decode_file(&path);
    let fields = command.ext_fields.clone().unwrap();
    let header =
        ferromq_remoting::headers::decode_send_request_header(command.code, &fields).unwrap();
    assert_eq!(header.batch, Some(true));
    assert_eq!(header.queue_id, 1);
    assert_eq!(header.broker_name.as_deref(), Some("broker-a"));
    assert_eq!(command.body.len(), 8853);
    assert_eq!(command.remark, None);
}

#[test]
fn cpp_heartbeat_uses_enum_ordinals() {
    let path = samples_dir().join("rocketmq-client-cpp-via-python-0.4.4/34-HEART_BEAT-2.bin");
    let (command, _) = decode_file(&path);
    let heartbeat = HeartbeatData::decode(&command.body).unwrap();
    let consumer = &heartbeat.consumer_data_set[0];
    assert_eq!(consumer.subscription_data_set.len(), 2);
    assert!(
        consumer
            .subscription_data_set
            .iter()
            .all(|subscription| subscription.expression_type == "TAG"
                && subscription.sub_version == 1_795_316_055_755)
    );
}
