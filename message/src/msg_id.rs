//! Message ids (storage.md §6): the offset message id the broker returns, and the client's
//! unique key (`UNIQ_KEY`). Both are binary layouts rendered as uppercase hex.
//!
//! ```text
//! offset msg id:  | store IP (4 | 16) | port i32 (4) | physical offset i64 (8) |   16 | 28 bytes
//! UNIQ_KEY:       | IP (4 | 16) | pid u16 (2) | class-loader hash i32 (4) |
//!                 | ms since month start i32 (4) | counter u16 (2) |               16 | 28 bytes
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// Hex length of an offset msg id with an IPv4 store host (16 bytes).
pub const OFFSET_MSG_ID_V4_LEN: usize = 32;
/// Hex length of an offset msg id with an IPv6 store host (28 bytes).
pub const OFFSET_MSG_ID_V6_LEN: usize = 56;
/// Hex length of a UNIQ_KEY from an IPv4 client (16 bytes).
pub const UNIQ_KEY_V4_LEN: usize = 32;
/// Hex length of a UNIQ_KEY from an IPv6 client (28 bytes).
pub const UNIQ_KEY_V6_LEN: usize = 56;

const HEX_DIGITS: &[u8; 16] = b"0123456789ABCDEF";

/// The offset message id of the record at `physical_offset` stored by `store_host`:
/// uppercase hex, 32 characters (IPv4) or 56 (IPv6).
#[must_use]
pub fn encode_offset_msg_id(store_host: SocketAddr, physical_offset: i64) -> String {
    let mut id = String::with_capacity(OFFSET_MSG_ID_V6_LEN);
    match store_host.ip() {
        IpAddr::V4(ip) => push_hex(&mut id, &ip.octets()),
        IpAddr::V6(ip) => push_hex(&mut id, &ip.octets()),
    }
    push_hex(&mut id, &i32::from(store_host.port()).to_be_bytes());
    push_hex(&mut id, &physical_offset.to_be_bytes());
    id
}

/// Decodes an offset message id into the store host and physical offset. The length picks
/// the address family (32 ⇒ IPv4, 56 ⇒ IPv6); hex digits of either case are accepted.
///
/// # Errors
///
/// [`Error::InvalidMessageId`] for another length, a non-hex character or a port outside
/// 0..=65535.
pub fn decode_offset_msg_id(id: &str) -> Result<(SocketAddr, i64)> {
    const WHAT: &str = "offset message id";
    let invalid = |reason| Error::InvalidMessageId { what: WHAT, len: id.len(), reason };
    let mut hex = HexReader::new(id.as_bytes());
    let ip = match id.len() {
        OFFSET_MSG_ID_V4_LEN => {
            IpAddr::V4(Ipv4Addr::from(hex.array().ok_or_else(|| invalid(NOT_HEX))?))
        }
        OFFSET_MSG_ID_V6_LEN => {
            IpAddr::V6(Ipv6Addr::from(hex.array().ok_or_else(|| invalid(NOT_HEX))?))
        }
        _ => return Err(invalid("expected 32 (ipv4) or 56 (ipv6) hex characters")),
    };
    let port = i32::from_be_bytes(hex.array().ok_or_else(|| invalid(NOT_HEX))?);
    let port = u16::try_from(port).map_err(|_| invalid("port outside 0..=65535"))?;
    let offset = i64::from_be_bytes(hex.array().ok_or_else(|| invalid(NOT_HEX))?);
    Ok((SocketAddr::new(ip, port), offset))
}

const NOT_HEX: &str = "expected only hex digits";

/// The parts of a UNIQ_KEY (storage.md §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UniqKey {
    /// The client's IP (or Java's fake IP from the clock when it had none).
    pub ip: IpAddr,
    /// Low 16 bits of the client's process id.
    pub pid: u16,
    /// Java class-loader hash; any i32 in other clients.
    pub class_loader_hash: i32,
    /// Milliseconds since the start of the month when the id was made (Java: local time).
    pub time_since_month_start_ms: i32,
    /// Per-process counter, wrapping at 65536.
    pub counter: u16,
}

impl UniqKey {
    /// Renders the key as uppercase hex: 32 characters (IPv4) or 56 (IPv6).
    #[must_use]
    pub fn encode(&self) -> String {
        let mut id = String::with_capacity(UNIQ_KEY_V6_LEN);
        push_hex(&mut id, &prefix_bytes(self.ip, self.pid, self.class_loader_hash));
        push_hex(&mut id, &self.time_since_month_start_ms.to_be_bytes());
        push_hex(&mut id, &self.counter.to_be_bytes());
        id
    }

    /// Parses a UNIQ_KEY. Treat the result as informative only: brokers must treat keys as
    /// opaque, and other clients may use other layouts.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidMessageId`] for a length other than 32 or 56 or a non-hex character.
    pub fn parse(id: &str) -> Result<Self> {
        let invalid =
            |reason| Error::InvalidMessageId { what: "unique key", len: id.len(), reason };
        let mut hex = HexReader::new(id.as_bytes());
        let ip = match id.len() {
            UNIQ_KEY_V4_LEN => {
                IpAddr::V4(Ipv4Addr::from(hex.array().ok_or_else(|| invalid(NOT_HEX))?))
            }
            UNIQ_KEY_V6_LEN => {
                IpAddr::V6(Ipv6Addr::from(hex.array().ok_or_else(|| invalid(NOT_HEX))?))
            }
            _ => return Err(invalid("expected 32 (ipv4) or 56 (ipv6) hex characters")),
        };
        let pid = u16::from_be_bytes(hex.array().ok_or_else(|| invalid(NOT_HEX))?);
        let class_loader_hash = i32::from_be_bytes(hex.array().ok_or_else(|| invalid(NOT_HEX))?);
        let time = i32::from_be_bytes(hex.array().ok_or_else(|| invalid(NOT_HEX))?);
        let counter = u16::from_be_bytes(hex.array().ok_or_else(|| invalid(NOT_HEX))?);
        Ok(Self { ip, pid, class_loader_hash, time_since_month_start_ms: time, counter })
    }
}

/// Makes UNIQ_KEYs as Java's `MessageClientIDSetter.createUniqID` does: a fixed per-process
/// prefix (IP, pid, class-loader hash) and a time + counter suffix. Thread-safe; share one
/// per process.
#[derive(Debug)]
pub struct UniqKeyGenerator {
    /// Hex of IP, pid and class-loader hash (24 or 48 characters).
    prefix: String,
    counter: AtomicU16,
}

impl UniqKeyGenerator {
    /// A generator for a process at `ip` with process id `pid` (only the low 16 bits are
    /// used) and Java class-loader hash `class_loader_hash` (any value will do).
    #[must_use]
    pub fn new(ip: IpAddr, pid: u32, class_loader_hash: i32) -> Self {
        let pid = u16::try_from(pid & 0xFFFF).unwrap_or_default();
        let mut prefix = String::with_capacity(UNIQ_KEY_V6_LEN);
        push_hex(&mut prefix, &prefix_bytes(ip, pid, class_loader_hash));
        Self { prefix, counter: AtomicU16::new(0) }
    }

    /// A generator for this process without knowing its IP: uses Java's fallback "fake IP"
    /// (the low 4 bytes of the current time in ms, [`fake_ip`]), `std::process::id()`, and
    /// the current time's sub-second nanoseconds as the class-loader hash. A client that
    /// knows its address should use [`UniqKeyGenerator::new`].
    #[must_use]
    pub fn for_this_process() -> Self {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let now_ms = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
        let class_loader_hash = i32::try_from(now.subsec_nanos()).unwrap_or_default();
        Self::new(IpAddr::V4(fake_ip(now_ms)), std::process::id(), class_loader_hash)
    }

    /// The next id for time `now_ms`, with `month_start_ms` the start of the current month
    /// (both ms since the epoch). The time part is `(now_ms - month_start_ms) as i32`, like
    /// Java's cast; the counter wraps at 65536.
    #[must_use]
    pub fn next_id(&self, now_ms: i64, month_start_ms: i64) -> String {
        let since_month_start = now_ms.wrapping_sub(month_start_ms);
        // Java's `(int)` cast keeps the low 32 bits.
        let time = i32::from_be_bytes(low_32_bits(since_month_start));
        let counter = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(self.prefix.len() + 12);
        id.push_str(&self.prefix);
        push_hex(&mut id, &time.to_be_bytes());
        push_hex(&mut id, &counter.to_be_bytes());
        id
    }

    /// The next id for the current system time; the month starts at 00:00 **UTC** on its
    /// first day (Java uses the local time zone, which only shifts the time part).
    #[must_use]
    pub fn next_id_now(&self) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let now_ms = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
        self.next_id(now_ms, month_start_utc_ms(now_ms))
    }
}

/// Java's `createFakeIP`: the low 4 bytes of `now_ms`, used when no local IP is known.
#[must_use]
pub fn fake_ip(now_ms: i64) -> Ipv4Addr {
    Ipv4Addr::from(low_32_bits(now_ms))
}

/// Start of the UTC month containing `now_ms` (ms since the epoch), by the proleptic
/// Gregorian calendar.
#[must_use]
pub fn month_start_utc_ms(now_ms: i64) -> i64 {
    const MS_PER_DAY: i64 = 86_400_000;
    let days = now_ms.div_euclid(MS_PER_DAY);
    let (year, month, _) = civil_from_days(days);
    days_from_civil(year, month, 1).saturating_mul(MS_PER_DAY)
}

fn low_32_bits(value: i64) -> [u8; 4] {
    let [_, _, _, _, a, b, c, d] = value.to_be_bytes();
    [a, b, c, d]
}

fn prefix_bytes(ip: IpAddr, pid: u16, class_loader_hash: i32) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(16 + 6);
    match ip {
        IpAddr::V4(ip) => bytes.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => bytes.extend_from_slice(&ip.octets()),
    }
    bytes.extend_from_slice(&pid.to_be_bytes());
    bytes.extend_from_slice(&class_loader_hash.to_be_bytes());
    bytes
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    for &byte in bytes {
        out.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(HEX_DIGITS[usize::from(byte & 0x0F)]));
    }
}

/// Reads fixed-size byte arrays from a hex string whose length the caller has checked.
struct HexReader<'a> {
    hex: &'a [u8],
}

impl<'a> HexReader<'a> {
    fn new(hex: &'a [u8]) -> Self {
        Self { hex }
    }

    /// The next `N` bytes, or `None` if the input is short or not hex.
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let mut out = [0; N];
        for byte in &mut out {
            let (&[high, low], rest) = self.hex.split_first_chunk::<2>()?;
            *byte = (hex_value(high)? << 4) | hex_value(low)?;
            self.hex = rest;
        }
        Some(out)
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

/// (year, month 1..=12, day 1..=31) of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`), proleptic Gregorian. Shared by everything that names files or prints
/// times without a time-zone database.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_msg_id_of_vector_a_and_c() {
        let a: SocketAddr = "192.168.0.2:10911".parse().unwrap();
        assert_eq!(encode_offset_msg_id(a, 1234), "C0A8000200002A9F00000000000004D2");
        assert_eq!(decode_offset_msg_id("C0A8000200002A9F00000000000004D2"), Ok((a, 1234)));
        assert_eq!(decode_offset_msg_id("c0a8000200002a9f00000000000004d2"), Ok((a, 1234)));
        let c: SocketAddr = "[2001:db8::2]:10911".parse().unwrap();
        let id = "20010DB800000000000000000000000200002A9F0000000000001388";
        assert_eq!(encode_offset_msg_id(c, 5000), id);
        assert_eq!(decode_offset_msg_id(id), Ok((c, 5000)));
    }

    #[test]
    fn offset_msg_id_rejects_bad_input() {
        for bad in
            ["", "C0A8", "G0A8000200002A9F00000000000004D2", "C0A80002FFFFFFFF00000000000004D2"]
        {
            assert!(
                matches!(decode_offset_msg_id(bad), Err(Error::InvalidMessageId { .. })),
                "{bad:?}"
            );
        }
        // Multi-byte characters give the right length in bytes but are not hex.
        assert!(decode_offset_msg_id(&"é".repeat(16)).is_err());
    }

    #[test]
    fn ipv6_id_prefix_of_ipv4_length_decodes_as_ipv4() {
        // Found by proptest: the family comes from the length alone, so the first 32 chars
        // of an IPv6 id whose address bytes 4..8 form a valid port decode as an IPv4 id.
        let id = encode_offset_msg_id("[::]:0".parse().unwrap(), 0);
        assert_eq!(id.len(), OFFSET_MSG_ID_V6_LEN);
        let prefix = &id[..OFFSET_MSG_ID_V4_LEN];
        assert_eq!(decode_offset_msg_id(prefix), Ok(("0.0.0.0:0".parse().unwrap(), 0)));
    }

    #[test]
    fn uniq_key_sample_parses() {
        // storage.md §22: ip 192.168.0.10, pid 4242.
        let key = UniqKey::parse("C0A8000A109230946E096C8E658E0000").unwrap();
        assert_eq!(key.ip, IpAddr::V4(Ipv4Addr::new(192, 168, 0, 10)));
        assert_eq!(key.pid, 4242);
        assert_eq!(key.class_loader_hash, 0x3094_6E09);
        assert_eq!(key.time_since_month_start_ms, 0x6C8E_658E);
        assert_eq!(key.counter, 0);
        assert_eq!(key.encode(), "C0A8000A109230946E096C8E658E0000");
    }

    #[test]
    fn generator_reproduces_the_sample_and_counts() {
        let ip = IpAddr::V4(Ipv4Addr::new(192, 168, 0, 10));
        let generator = UniqKeyGenerator::new(ip, 0x0001_1092, 0x3094_6E09);
        let month_start = 1_000_000;
        let now = month_start + 0x6C8E_658E;
        assert_eq!(generator.next_id(now, month_start), "C0A8000A109230946E096C8E658E0000");
        assert_eq!(generator.next_id(now, month_start), "C0A8000A109230946E096C8E658E0001");
        let v6 = UniqKeyGenerator::new("fe80::1".parse().unwrap(), 1, 2).next_id(0, 0);
        assert_eq!(v6.len(), UNIQ_KEY_V6_LEN);
    }

    #[test]
    fn generator_counter_wraps_at_65536() {
        let generator = UniqKeyGenerator::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1, 1);
        for _ in 0..65_536 {
            let _ = generator.next_id(0, 0);
        }
        assert!(generator.next_id(0, 0).ends_with("0000"));
        let now = UniqKeyGenerator::for_this_process().next_id_now();
        assert_eq!(now.len(), UNIQ_KEY_V4_LEN);
    }

    #[test]
    fn month_start_is_first_day_midnight_utc() {
        // 2023-11-14T22:13:20Z -> 2023-11-01T00:00:00Z.
        assert_eq!(month_start_utc_ms(1_700_000_000_000), 1_698_796_800_000);
        // 2024-02-29T12:00:00Z -> 2024-02-01.
        assert_eq!(month_start_utc_ms(1_709_208_000_000), 1_706_745_600_000);
        assert_eq!(month_start_utc_ms(0), 0);
        // 1969-12-31T23:59:59.999Z -> 1969-12-01.
        assert_eq!(month_start_utc_ms(-1), -2_678_400_000);
        for days in [-800_000_i64, -1, 0, 59, 365, 11_016, 19_675, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
