//! `StoreConfig`: the store's settings, with RocketMQ's `MessageStoreConfig` names (in snake
//! case) and defaults (`../shared/spec/storage.md` §21), validated up front.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use crate::error::{Error, Result};

/// Size of an OS page; flush thresholds count these.
pub(crate) const PAGE_SIZE_BYTES: u64 = 4096;
/// A ConsumeQueue unit: physical offset i64, size i32, tags code i64.
pub(crate) const CQ_UNIT_SIZE_BYTES: u64 = 20;

/// When a put is acknowledged relative to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlushMode {
    /// `ASYNC_FLUSH`: a put returns once its bytes are in the mapped CommitLog (the page
    /// cache). A process crash (`kill -9`) loses nothing acknowledged, because the kernel
    /// still writes the pages back; a power cut loses what was written since the last
    /// background flush (at most `flush_interval_commit_log_ms` plus the time to flush).
    #[default]
    Async,
    /// `SYNC_FLUSH`: a put returns only after an `msync`/`fdatasync` covering it completed
    /// (group commit: concurrent puts share one flush). Neither a crash nor a power cut loses
    /// an acknowledged put. Readers only see flushed messages.
    Sync,
}

/// Which recovery the last `open` ran (storage.md §13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryMode {
    /// The previous process closed the store cleanly (no `abort` file).
    Normal,
    /// The `abort` file was present: the previous process crashed or lost power.
    Abnormal,
}

/// Everything the store can be told. `StoreConfig::new(dir)` gives RocketMQ's defaults.
///
/// Each field names its unit; `validate` (run by `MessageStore::open`) rejects values outside
/// the documented ranges with [`Error::InvalidConfig`] naming the field.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreConfig {
    /// `storePathRootDir`: the store's root directory (created if missing).
    pub store_path_root_dir: PathBuf,
    /// `mappedFileSizeCommitLog`: bytes per CommitLog segment. Default 1 GiB; a multiple of
    /// 4096, at least 64 KiB.
    pub mapped_file_size_commit_log: u64,
    /// `mappedFileSizeConsumeQueue`: bytes per ConsumeQueue file. Default 6,000,000 (300,000
    /// units); rounded up to a multiple of 20 as RocketMQ does; at least 20 units.
    pub mapped_file_size_consume_queue: u64,
    /// `flushDiskType`.
    pub flush_disk_type: FlushMode,
    /// `flushIntervalCommitLog`: async flush period, ms. Default 500; 1..=60,000.
    pub flush_interval_commit_log_ms: u64,
    /// `flushCommitLogLeastPages`: async flush only when this many 4 KiB pages are dirty.
    /// Default 4.
    pub flush_commit_log_least_pages: u64,
    /// `flushCommitLogThoroughInterval`: flush regardless of page count this often, ms.
    /// Default 10,000.
    pub flush_commit_log_thorough_interval_ms: u64,
    /// `flushIntervalConsumeQueue`: ConsumeQueue flush period, ms. Default 1,000.
    pub flush_interval_consume_queue_ms: u64,
    /// `flushConsumeQueueLeastPages`. Default 2.
    pub flush_consume_queue_least_pages: u64,
    /// `flushConsumeQueueThoroughInterval`, ms. Default 60,000.
    pub flush_consume_queue_thorough_interval_ms: u64,
    /// `syncFlushTimeout`: how long a sync-flush put waits before `FlushDiskTimeout`, ms.
    /// Default 5,000; 1..=600,000.
    pub sync_flush_timeout_ms: u64,
    /// `maxMessageSize`: largest body, bytes; the whole record may be 64 KiB larger.
    /// Default 4 MiB; 1..=1 GiB.
    pub max_message_size: u32,
    /// `checkCRCOnRecover`: verify body CRCs (and record CRCs, below) while recovering.
    /// Default true.
    pub check_crc_on_recover: bool,
    /// `enabledAppendPropCRC` [5.x]: end each stored record's properties with the 20-byte
    /// `__CRC32#` property, a CRC of the whole record (storage.md §4.3), which recovery and
    /// reads verify wherever they find it. The body CRC covers only the body: without this,
    /// a power cut that tears a record's header (offsets, timestamps, flag, hosts) can leave
    /// a record that passes every check. Costs 20 bytes and one CRC pass per message, the
    /// latter under the writer lock. Default **true**; RocketMQ's default is false, so set
    /// false for records byte-identical to a default RocketMQ broker's.
    pub enabled_append_prop_crc: bool,
    /// `messageIndexEnable`: maintain the IndexFile (keys and `UNIQ_KEY`). Default true.
    pub message_index_enable: bool,
    /// `maxHashSlotNum`: hash slots per IndexFile. Default 5,000,000.
    pub max_hash_slot_num: u32,
    /// `maxIndexNum`: entries per IndexFile. Default 20,000,000.
    pub max_index_num: u32,
    /// `maxMsgsNumBatch`: most results of one key query. Default 64.
    pub max_msgs_num_batch: u32,
    /// `fileReservedTime`: CommitLog segments older than this may be deleted, hours.
    /// Default 72.
    pub file_reserved_time_hours: u64,
    /// `deleteWhen`: `;`-separated local hours at which expired files are deleted.
    /// Default `"04"`.
    pub delete_when: String,
    /// `diskMaxUsedSpaceRatio`: delete expired files when the disk is fuller than this,
    /// percent. Default 75; 10..=95.
    pub disk_max_used_space_ratio: u32,
    /// `diskSpaceCleanForciblyRatio`: above this usage delete the oldest segments even if not
    /// expired, percent. Default 85; 30..=85.
    pub disk_space_clean_forcibly_ratio: u32,
    /// `diskSpaceWarningLevelRatio`: above this usage refuse puts, percent. Default 90;
    /// 35..=90.
    pub disk_space_warning_level_ratio: u32,
    /// `deleteFileBatchMax`: most CommitLog segments deleted per cleaning run. Default 10.
    pub delete_file_batch_max: u32,
    /// `cleanResourceInterval`: how often expiry runs, ms. Default 10,000.
    pub clean_resource_interval_ms: u64,
    /// `cleanFileForciblyEnable`: allow deleting unexpired segments when the disk is full.
    /// Default true.
    pub clean_file_forcibly_enable: bool,
    /// `maxTransferBytesOnMessageInMemory`: pull byte budget when data is in memory.
    /// Default 262,144.
    pub max_transfer_bytes_on_message_in_memory: u64,
    /// `maxTransferCountOnMessageInMemory`. Default 32.
    pub max_transfer_count_on_message_in_memory: u32,
    /// `maxTransferBytesOnMessageInDisk`. Default 65,536.
    pub max_transfer_bytes_on_message_in_disk: u64,
    /// `maxTransferCountOnMessageInDisk`. Default 8.
    pub max_transfer_count_on_message_in_disk: u32,
    /// `accessMessageInMemoryMaxRatio`: share of RAM treated as "in memory" for pulls,
    /// percent. Default 40; 1..=100.
    pub access_message_in_memory_max_ratio: u32,
    /// `maxFilterMessageSize`: ConsumeQueue bytes one pull may scan at least. Default 16,000.
    pub max_filter_message_size: u32,
    /// `messageDelayLevel`: the delay of each level, for the schedule topic's tags code.
    pub message_delay_level: String,
    /// The broker's `brokerIP1:listenPort`, written as STOREHOST of every record.
    /// Default 127.0.0.1:10911.
    pub store_host: SocketAddr,
    /// Pre-fault each new CommitLog segment in the background before it is used, so that a
    /// roll never stalls a put on page faults. Not a RocketMQ key (its `warmMapedFileEnable`
    /// also `mlock`s). Default true.
    pub prefault_segments: bool,
    /// Physical memory used by the in-memory rule; `None` reads it from the OS.
    pub physical_memory_bytes: Option<u64>,
}

impl StoreConfig {
    /// RocketMQ's defaults, with the store rooted at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            store_path_root_dir: dir.into(),
            mapped_file_size_commit_log: 1 << 30,
            mapped_file_size_consume_queue: 300_000 * CQ_UNIT_SIZE_BYTES,
            flush_disk_type: FlushMode::Async,
            flush_interval_commit_log_ms: 500,
            flush_commit_log_least_pages: 4,
            flush_commit_log_thorough_interval_ms: 10_000,
            flush_interval_consume_queue_ms: 1_000,
            flush_consume_queue_least_pages: 2,
            flush_consume_queue_thorough_interval_ms: 60_000,
            sync_flush_timeout_ms: 5_000,
            max_message_size: 4 << 20,
            check_crc_on_recover: true,
            enabled_append_prop_crc: true,
            message_index_enable: true,
            max_hash_slot_num: 5_000_000,
            max_index_num: 20_000_000,
            max_msgs_num_batch: 64,
            file_reserved_time_hours: 72,
            delete_when: "04".to_owned(),
            disk_max_used_space_ratio: 75,
            disk_space_clean_forcibly_ratio: 85,
            disk_space_warning_level_ratio: 90,
            delete_file_batch_max: 10,
            clean_resource_interval_ms: 10_000,
            clean_file_forcibly_enable: true,
            max_transfer_bytes_on_message_in_memory: 262_144,
            max_transfer_count_on_message_in_memory: 32,
            max_transfer_bytes_on_message_in_disk: 65_536,
            max_transfer_count_on_message_in_disk: 8,
            access_message_in_memory_max_ratio: 40,
            max_filter_message_size: 16_000,
            message_delay_level: "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"
                .to_owned(),
            store_host: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 10911),
            prefault_segments: true,
            physical_memory_bytes: None,
        }
    }

    /// Small files for tests and examples: 64 KiB CommitLog segments, 100-unit ConsumeQueue
    /// files and a small IndexFile, so rolls happen after a few messages.
    #[cfg(any(test, feature = "internals"))]
    pub fn small_for_tests(dir: impl Into<PathBuf>) -> Self {
        let mut config = StoreConfig::new(dir);
        config.mapped_file_size_commit_log = 64 * 1024;
        config.mapped_file_size_consume_queue = 100 * CQ_UNIT_SIZE_BYTES;
        config.max_hash_slot_num = 64;
        config.max_index_num = 256;
        config.max_message_size = 16 * 1024;
        config.prefault_segments = false;
        config
    }

    /// `mappedFileSizeConsumeQueue` rounded up to a whole number of units, as RocketMQ's
    /// getter does.
    pub fn consume_queue_file_size(&self) -> u64 {
        self.mapped_file_size_consume_queue.div_ceil(CQ_UNIT_SIZE_BYTES) * CQ_UNIT_SIZE_BYTES
    }

    /// The delay of each level in ms (level 1 first), parsed from `message_delay_level`.
    ///
    /// # Errors
    /// `InvalidConfig` when an entry is not a number followed by `s`, `m`, `h` or `d`.
    pub fn delay_levels_ms(&self) -> Result<Vec<u64>> {
        self.message_delay_level.split_whitespace().map(parse_delay).collect()
    }

    /// Checks every field against its documented range.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first offending field and its allowed range.
    pub fn validate(&self) -> Result<()> {
        let segment = self.mapped_file_size_commit_log;
        check(
            "mappedFileSizeCommitLog",
            segment,
            segment >= 64 * 1024 && segment.is_multiple_of(PAGE_SIZE_BYTES) && segment <= 1 << 40,
            "a multiple of 4096 in 65536..=1099511627776",
        )?;
        let cq = self.consume_queue_file_size();
        check(
            "mappedFileSizeConsumeQueue",
            self.mapped_file_size_consume_queue,
            (20 * CQ_UNIT_SIZE_BYTES..=1 << 32).contains(&cq),
            "400..=4294967296",
        )?;
        range("flushIntervalCommitLog", self.flush_interval_commit_log_ms, 1, 60_000)?;
        range("flushCommitLogLeastPages", self.flush_commit_log_least_pages, 0, 1 << 20)?;
        let thorough = self.flush_commit_log_thorough_interval_ms;
        range("flushCommitLogThoroughInterval", thorough, 1, 3_600_000)?;
        range("flushIntervalConsumeQueue", self.flush_interval_consume_queue_ms, 1, 60_000)?;
        range("flushConsumeQueueLeastPages", self.flush_consume_queue_least_pages, 0, 1 << 20)?;
        let cq_thorough = self.flush_consume_queue_thorough_interval_ms;
        range("flushConsumeQueueThoroughInterval", cq_thorough, 1, 3_600_000)?;
        range("syncFlushTimeout", self.sync_flush_timeout_ms, 1, 600_000)?;
        range("maxMessageSize", u64::from(self.max_message_size), 1, 1 << 30)?;
        range("maxHashSlotNum", u64::from(self.max_hash_slot_num), 1, 100_000_000)?;
        range("maxIndexNum", u64::from(self.max_index_num), 2, 400_000_000)?;
        range("maxMsgsNumBatch", u64::from(self.max_msgs_num_batch), 1, 10_000)?;
        range("fileReservedTime", self.file_reserved_time_hours, 0, 24 * 365 * 100)?;
        range("diskMaxUsedSpaceRatio", u64::from(self.disk_max_used_space_ratio), 10, 95)?;
        let forcibly = u64::from(self.disk_space_clean_forcibly_ratio);
        range("diskSpaceCleanForciblyRatio", forcibly, 30, 85)?;
        let warning = u64::from(self.disk_space_warning_level_ratio);
        range("diskSpaceWarningLevelRatio", warning, 35, 90)?;
        range("deleteFileBatchMax", u64::from(self.delete_file_batch_max), 1, 10_000)?;
        range("cleanResourceInterval", self.clean_resource_interval_ms, 1, 86_400_000)?;
        let ratio = u64::from(self.access_message_in_memory_max_ratio);
        range("accessMessageInMemoryMaxRatio", ratio, 1, 100)?;
        self.delete_hours()?;
        let levels = self.delay_levels_ms()?;
        check(
            "messageDelayLevel",
            &self.message_delay_level,
            !levels.is_empty() && levels.len() <= 255,
            "1 to 255 space-separated delays such as 1s 5m 2h",
        )?;
        Ok(())
    }

    /// The local hours of `delete_when`.
    pub(crate) fn delete_hours(&self) -> Result<Vec<u32>> {
        self.delete_when
            .split(';')
            .map(|hour| match hour.trim().parse::<u32>() {
                Ok(hour) if hour < 24 => Ok(hour),
                _ => Err(invalid("deleteWhen", &self.delete_when, "hours 0..=23 separated by ;")),
            })
            .collect()
    }
}

fn parse_delay(entry: &str) -> Result<u64> {
    let bad = || invalid("messageDelayLevel", entry, "a number followed by s, m, h or d");
    let unit_ms = match entry.chars().last() {
        Some('s') => 1_000,
        Some('m') => 60_000,
        Some('h') => 3_600_000,
        Some('d') => 86_400_000,
        _ => return Err(bad()),
    };
    let count: u64 = entry[..entry.len() - 1].parse().map_err(|_| bad())?;
    count.checked_mul(unit_ms).ok_or_else(bad)
}

fn range(field: &'static str, value: u64, min: u64, max: u64) -> Result<()> {
    check(field, value, (min..=max).contains(&value), &format!("{min}..={max}"))
}

fn check(field: &'static str, value: impl ToString, ok: bool, expected: &str) -> Result<()> {
    if ok { Ok(()) } else { Err(invalid(field, value, expected)) }
}

fn invalid(field: &'static str, value: impl ToString, expected: &str) -> Error {
    Error::InvalidConfig { field, value: value.to_string(), expected: expected.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_rocketmqs_and_valid() {
        let config = StoreConfig::new("/tmp/x");
        config.validate().unwrap();
        assert_eq!(config.mapped_file_size_commit_log, 1_073_741_824);
        assert_eq!(config.consume_queue_file_size(), 6_000_000);
        assert_eq!(config.delay_levels_ms().unwrap().len(), 18);
        assert_eq!(config.delay_levels_ms().unwrap()[17], 2 * 3_600_000);
        assert_eq!(config.delete_hours().unwrap(), vec![4]);
    }

    #[test]
    fn consume_queue_size_rounds_up_to_whole_units() {
        let mut config = StoreConfig::new("/tmp/x");
        config.mapped_file_size_consume_queue = 1001;
        assert_eq!(config.consume_queue_file_size(), 1020);
    }

    #[test]
    fn invalid_values_name_the_field_and_range() {
        let mut config = StoreConfig::new("/tmp/x");
        config.mapped_file_size_commit_log = 1000;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("mappedFileSizeCommitLog = 1000"), "{err}");
        assert!(err.contains("multiple of 4096"), "{err}");

        let mut config = StoreConfig::new("/tmp/x");
        config.disk_max_used_space_ratio = 99;
        let err = config.validate().unwrap_err().to_string();
        assert_eq!(err, "invalid config: diskMaxUsedSpaceRatio = 99, expected 10..=95");

        let mut config = StoreConfig::new("/tmp/x");
        config.delete_when = "04;25".into();
        assert!(config.validate().unwrap_err().to_string().contains("deleteWhen"));

        let mut config = StoreConfig::new("/tmp/x");
        config.message_delay_level = "1s 5x".into();
        assert!(config.validate().unwrap_err().to_string().contains("5x"));
    }
}
