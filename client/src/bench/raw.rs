//! Raw-frames mode of the produce bench: measures the broker rather than the client.
//!
//! The producer builds one `SEND_MESSAGE_V2` frame per queue exactly as a send would
//! (properties, `UNIQ_KEY`, binary header); each connection then replays those frames with
//! `inflight` requests outstanding, patching only the opaque and the last eight hex digits of
//! the `UNIQ_KEY` (so every message keeps a unique, indexed key), and reads answers by their
//! length prefix and response code. No `RemotingCommand`, header map or timer per message:
//! the generator costs a fraction of a microsecond of CPU per message, so on a machine shared
//! with the broker nearly all of it is left to the broker.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ferromq_message::Message;
use ferromq_remoting::frame::{FrameDecoder, HEADER_OFFSET, SERIALIZE_TYPE_OFFSET, SerializeType};
use ferromq_remoting::header_binary::{CODE_OFFSET, OPAQUE_OFFSET};
use ferromq_remoting::{RemotingCommand, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{ProduceBench, Stats, micros};
use crate::error::{Error, Result};
use crate::producer::Producer;

/// Where the opaque sits in a frame with a binary header.
const BINARY_OPAQUE_POS: usize = HEADER_OFFSET + OPAQUE_OFFSET;
/// Hex digits of the `UNIQ_KEY` rewritten per message.
const KEY_COUNTER_DIGITS: usize = 8;

/// A send frame to replay.
#[derive(Debug, Clone)]
struct Template {
    frame: Bytes,
    /// Offset of the last `KEY_COUNTER_DIGITS` hex digits of the `UNIQ_KEY`.
    key_counter_pos: usize,
}

/// Builds the frames (one per publish queue, by broker address) and runs one connection per
/// producer, each with its share of `concurrency` in flight.
pub(super) async fn run(
    bench: &ProduceBench,
    producer: &Producer,
    body: &Bytes,
    stats: &Arc<Stats>,
) -> Result<()> {
    if bench.batch_size != 1 || bench.keys || !matches!(bench.mode, super::SendMode::Async) {
        return Err(Error::InvalidConfig {
            field: "raw_frames",
            value: "with batches, keys or a sync/oneway mode".into(),
            expected: "single async sends",
        });
    }
    if producer.config().client.serialize_type != SerializeType::RocketMq {
        return Err(Error::InvalidConfig {
            field: "raw_frames",
            value: "with JSON headers".into(),
            expected: "binary (RocketMQ) headers",
        });
    }
    let mut by_addr: HashMap<String, Vec<Template>> = HashMap::new();
    for queue in producer.publish_queues(&bench.topic).await? {
        let mut message = Message::new(bench.topic.clone(), body.clone());
        if let Some(tag) = &bench.tag {
            message.set_tags(tag.clone());
        }
        let (addr, frame, uniq_key) = producer.encoded_send(message, &queue).await?;
        by_addr.entry(addr).or_default().push(template(frame, &uniq_key)?);
    }
    let deadline = bench.duration.map(|duration| Instant::now() + duration);
    let claimed = Arc::new(AtomicU64::new(0));
    let connections = bench.producers.max(1);
    let per_connection = bench.concurrency.div_ceil(connections).max(1);
    let mut tasks = tokio::task::JoinSet::new();
    let mut addrs: Vec<_> = by_addr.into_iter().collect();
    addrs.sort_by(|a, b| a.0.cmp(&b.0));
    for index in 0..connections {
        let (addr, templates) = addrs[index % addrs.len()].clone();
        let connection = Connection {
            templates,
            inflight: per_connection,
            stats: stats.clone(),
            claimed: claimed.clone(),
            count: bench.count,
            deadline,
            timeout: bench.producer.send_msg_timeout,
            body_bytes: u64::try_from(body.len()).unwrap_or(0),
            // Distinct key counters per connection.
            key_base: (index as u32) << 24,
        };
        tasks.spawn(async move { connection.run(&addr).await });
    }
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        if let Ok(Err(error)) = joined {
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn template(frame: BytesMut, uniq_key: &str) -> Result<Template> {
    let bad = |what: &str| Error::InvalidArgument(format!("raw-frames bench: {what}"));
    if frame.get(SERIALIZE_TYPE_OFFSET) != Some(&(SerializeType::RocketMq as u8))
        || frame.len() < BINARY_OPAQUE_POS + 4
    {
        return Err(bad("the frame has no binary header"));
    }
    let key = uniq_key.as_bytes();
    if key.len() < KEY_COUNTER_DIGITS {
        return Err(bad("the UNIQ_KEY is too short"));
    }
    let key_pos = frame
        .windows(key.len())
        .position(|window| window == key)
        .ok_or_else(|| bad("UNIQ_KEY not found in the frame"))?;
    Ok(Template {
        frame: frame.freeze(),
        key_counter_pos: key_pos + key.len() - KEY_COUNTER_DIGITS,
    })
}

/// One connection's replay loop.
struct Connection {
    templates: Vec<Template>,
    inflight: usize,
    stats: Arc<Stats>,
    claimed: Arc<AtomicU64>,
    count: Option<u64>,
    deadline: Option<Instant>,
    timeout: Duration,
    body_bytes: u64,
    key_base: u32,
}

impl Connection {
    async fn run(self, addr: &str) -> Result<()> {
        let connect_error = |err: std::io::Error| {
            Error::InvalidArgument(format!("raw-frames bench: {addr}: {err}"))
        };
        let mut stream = TcpStream::connect(addr).await.map_err(connect_error)?;
        stream.set_nodelay(true).map_err(connect_error)?;
        let decoder = FrameDecoder::default();
        let mut sent_at: HashMap<i32, Instant> = HashMap::with_capacity(self.inflight * 2);
        let mut out = Vec::with_capacity(self.inflight * self.templates[0].frame.len());
        let mut input = BytesMut::with_capacity(1 << 16);
        let mut opaque: i32 = 0;
        let mut stopping = false;
        loop {
            out.clear();
            let now = Instant::now();
            while !stopping && sent_at.len() < self.inflight {
                if !self.claim_one() {
                    stopping = true;
                    break;
                }
                opaque = opaque.wrapping_add(1);
                self.append_frame(&mut out, opaque);
                sent_at.insert(opaque, now);
            }
            if !out.is_empty() {
                stream.write_all(&out).await.map_err(connect_error)?;
            }
            if sent_at.is_empty() {
                return Ok(());
            }
            let read = tokio::time::timeout(self.timeout, stream.read_buf(&mut input)).await;
            match read {
                Ok(Ok(0)) => return Err(connect_error(std::io::ErrorKind::UnexpectedEof.into())),
                Ok(Ok(_)) => {}
                Ok(Err(err)) => return Err(connect_error(err)),
                Err(_) => {
                    // Nothing came back in time: count what is outstanding as failed.
                    let lost = sent_at.len() as u64;
                    self.stats.failures.fetch_add(lost, Ordering::Relaxed);
                    return Err(Error::Timeout { what: "raw-frames send", elapsed: self.timeout });
                }
            }
            while let Some(frame) = decoder
                .decode(&mut input)
                .map_err(|err| Error::InvalidArgument(format!("bad response frame: {err}")))?
            {
                let serialize_type = frame.serialize_type;
                let (code, answered) = match serialize_type {
                    SerializeType::RocketMq => response_code_and_opaque(&frame.header),
                    SerializeType::Json => match RemotingCommand::from_frame(frame) {
                        Ok(command) => (Some(command.code), Some(command.opaque)),
                        Err(_) => (None, None),
                    },
                };
                let started = answered.and_then(|opaque| sent_at.remove(&opaque));
                match (code, started) {
                    (Some(code), Some(started)) if code == ResponseCode::SUCCESS.code() => {
                        self.stats.record(1, self.body_bytes, micros(started.elapsed()));
                    }
                    _ => {
                        self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// Whether one more message may be sent (before the deadline, within the count).
    fn claim_one(&self) -> bool {
        if self.deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return false;
        }
        self.count.is_none_or(|count| self.claimed.fetch_add(1, Ordering::Relaxed) < count)
    }

    fn append_frame(&self, out: &mut Vec<u8>, opaque: i32) {
        let template = &self.templates[opaque.unsigned_abs() as usize % self.templates.len()];
        let start = out.len();
        out.extend_from_slice(&template.frame);
        let frame = &mut out[start..];
        frame[BINARY_OPAQUE_POS..BINARY_OPAQUE_POS + 4].copy_from_slice(&opaque.to_be_bytes());
        let counter = self.key_base.wrapping_add(opaque as u32);
        let digits = &mut frame[template.key_counter_pos..][..KEY_COUNTER_DIGITS];
        for (i, digit) in digits.iter_mut().enumerate() {
            let nibble = (counter >> (4 * (KEY_COUNTER_DIGITS - 1 - i))) & 0xF;
            *digit = b"0123456789ABCDEF"[nibble as usize];
        }
    }
}

/// Code and opaque of a binary response header.
fn response_code_and_opaque(header: &[u8]) -> (Option<i32>, Option<i32>) {
    let code = header
        .get(CODE_OFFSET..CODE_OFFSET + 2)
        .and_then(|b| b.try_into().ok())
        .map(|b| i32::from(i16::from_be_bytes(b)));
    let opaque = header
        .get(OPAQUE_OFFSET..OPAQUE_OFFSET + 4)
        .and_then(|b| b.try_into().ok())
        .map(i32::from_be_bytes);
    (code, opaque)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_header_fields_are_where_the_replay_patches_them() {
        let mut command = RemotingCommand::response(ResponseCode::SUCCESS.code(), None);
        command.opaque = 0x0102_0304;
        command.serialize_type = SerializeType::RocketMq;
        let mut frame = BytesMut::new();
        command.encode(&mut frame).unwrap();
        assert_eq!(&frame[BINARY_OPAQUE_POS..BINARY_OPAQUE_POS + 4], &[1, 2, 3, 4]);
        let header = &frame[HEADER_OFFSET..];
        assert_eq!(response_code_and_opaque(header), (Some(0), Some(0x0102_0304)));
        assert_eq!(response_code_and_opaque(&header[..3]), (Some(0), None));
    }

    #[test]
    fn each_replayed_frame_gets_its_opaque_and_a_unique_key() {
        let key = "0A0000010000000000000000DEADBEEF";
        let mut request = RemotingCommand::request(10);
        request.serialize_type = SerializeType::RocketMq;
        request = request.with_body(format!("UNIQ_KEY\u{1}{key}\u{2}").into_bytes());
        let mut frame = BytesMut::new();
        request.encode(&mut frame).unwrap();
        let template = template(frame.clone(), key).unwrap();
        let connection = Connection {
            templates: vec![template],
            inflight: 1,
            stats: Arc::new(Stats::default()),
            claimed: Arc::new(AtomicU64::new(0)),
            count: None,
            deadline: None,
            timeout: Duration::from_secs(1),
            body_bytes: 0,
            key_base: 1 << 24,
        };
        let mut out = Vec::new();
        connection.append_frame(&mut out, 0x1234);
        let replayed = RemotingCommand::from_frame(
            FrameDecoder::default().decode(&mut BytesMut::from(&out[..])).unwrap().unwrap(),
        )
        .unwrap();
        assert_eq!(replayed.opaque, 0x1234);
        let body = String::from_utf8(replayed.body.to_vec()).unwrap();
        assert_eq!(body, "UNIQ_KEY\u{1}0A000001000000000000000001001234\u{2}");
        assert_eq!(out.len(), frame.len());
    }
}
