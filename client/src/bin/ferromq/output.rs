//! Printing: aligned tables for people, JSON for machines; argument parsers shared by the
//! commands.

use std::time::Duration;

use ferromq_client::MessageExt;
use serde_json::{Value, json};

/// How results are printed.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// JSON instead of tables.
    pub json: bool,
}

impl Output {
    /// Prints `value` as one line of JSON.
    pub fn json(self, value: &Value) {
        println!("{value}");
    }

    /// Prints a table (or, with `--json`, an array of objects keyed by the headers).
    pub fn table(self, headers: &[&str], rows: &[Vec<String>]) {
        if self.json {
            let objects: Vec<Value> = rows
                .iter()
                .map(|row| {
                    let map: serde_json::Map<String, Value> = headers
                        .iter()
                        .zip(row)
                        .map(|(header, cell)| ((*header).to_owned(), cell_value(cell)))
                        .collect();
                    Value::Object(map)
                })
                .collect();
            self.json(&Value::Array(objects));
            return;
        }
        let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
        for row in rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<&str>| {
            let padded: Vec<String> =
                cells.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
            println!("{}", padded.join("  ").trim_end());
        };
        line(headers.to_vec());
        for row in rows {
            line(row.iter().map(String::as_str).collect());
        }
    }
}

/// Numbers stay numbers in JSON tables.
fn cell_value(cell: &str) -> Value {
    if let Ok(number) = cell.parse::<i64>() {
        return json!(number);
    }
    if let Ok(number) = cell.parse::<f64>()
        && number.is_finite()
        && cell.contains('.')
    {
        return json!(number);
    }
    Value::String(cell.to_owned())
}

/// `10s`, `500ms`, `2m`, `1h`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit_ms) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1.0)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1000.0)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60_000.0)
    } else if let Some(h) = text.strip_suffix('h') {
        (h, 3_600_000.0)
    } else {
        (text, 1000.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 10s or 500ms"))?;
    if !(value >= 0.0 && value.is_finite()) {
        return Err(format!("{text:?} is not a positive duration"));
    }
    Ok(Duration::from_micros((value * unit_ms * 1000.0) as u64))
}

/// A time as milliseconds since the epoch: digits (ms), `yyyyMMddHHmmss` (UTC) or `now`.
pub fn parse_time_ms(text: &str) -> Result<i64, String> {
    if text == "now" {
        return Ok(now_ms());
    }
    if text.len() == 14
        && let Some(ms) = parse_compact_utc(text)
    {
        return Ok(ms);
    }
    text.parse().map_err(|_| {
        format!("{text:?} is not a time (ms since the epoch, yyyyMMddHHmmss UTC, or now)")
    })
}

fn parse_compact_utc(text: &str) -> Option<i64> {
    let field = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (field(0..4)?, field(4..6)?, field(6..8)?);
    let (hour, minute, second) = (field(8..10)?, field(10..12)?, field(12..14)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000)
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// `2023-11-14 22:13:20.000` (UTC).
pub fn format_time(ms: i64) -> String {
    if ms <= 0 {
        return "-".to_owned();
    }
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = ferromq_message::msg_id::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// A message as JSON (body as UTF-8 text when it is, else its length).
pub fn message_json(message: &MessageExt) -> Value {
    let body = match std::str::from_utf8(&message.message.body) {
        Ok(text) => json!(text),
        Err(_) => json!(format!("<{} bytes>", message.message.body.len())),
    };
    json!({
        "topic": message.topic(),
        "msgId": message.client_msg_id(),
        "offsetMsgId": message.msg_id,
        "queueId": message.queue_id,
        "queueOffset": message.queue_offset,
        "tags": message.message.tags(),
        "keys": message.message.keys(),
        "reconsumeTimes": message.reconsume_times,
        "bornTimestamp": message.born_timestamp,
        "storeTimestamp": message.store_timestamp,
        "bornHost": message.born_host.to_string(),
        "storeHost": message.store_host.to_string(),
        "properties": message.message.properties,
        "body": body,
    })
}

/// Prints a message for people, or as one JSON line.
pub fn print_message(out: Output, message: &MessageExt) {
    if out.json {
        out.json(&message_json(message));
        return;
    }
    let body = String::from_utf8_lossy(&message.message.body);
    println!(
        "{} {}[{}]@{} msgId={} tags={} keys={} stored={} body={}",
        message.topic(),
        message.store_host,
        message.queue_id,
        message.queue_offset,
        message.client_msg_id(),
        message.message.tags().unwrap_or("-"),
        message.message.keys().unwrap_or("-"),
        format_time(message.store_timestamp),
        body
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("x").is_err());
        assert_eq!(parse_time_ms("20231114221320"), Ok(1_700_000_000_000));
        assert_eq!(parse_time_ms("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(format_time(1_700_000_000_123), "2023-11-14 22:13:20.123");
        assert_eq!(cell_value("12"), json!(12));
        assert_eq!(cell_value("1.5"), json!(1.5));
        assert_eq!(cell_value("b"), json!("b"));
    }
}
