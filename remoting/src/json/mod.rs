//! A small fastjson-compatible JSON layer for headers and bodies.
//!
//! RocketMQ's Java side writes JSON with fastjson 1.x, whose output is not always valid JSON:
//! maps with `Integer`/`Long` keys come out as `{0:"a",1:"b"}` and maps keyed by beans as
//! `{{"brokerName":"b","queueId":0,"topic":"T"}:42}` (spec §5 rules 5 and 7). `serde_json`
//! rejects both, so this module has its own tree ([`Value`]), a lenient bounded parser
//! ([`parse`]) and a writer ([`to_vec`]) with the two output styles RocketMQ uses
//! ([`JsonStyle`]).
//!
//! Object keys are themselves [`Value`]s so that numeric and object keys survive a round
//! trip. Numbers keep their text exactly as read, so `1795316032582` or `1.50` are never
//! rounded through a float on their way to an extFields string.

mod parse;
mod value;
mod write;

pub(crate) use parse::string_at;
pub use parse::{MAX_DEPTH, parse};
pub use value::{Number, Object, Value};
pub use write::{JsonStyle, to_vec, write_string};
