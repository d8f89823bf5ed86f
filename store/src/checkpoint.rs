//! The `checkpoint` file (storage.md §10): a 4096-byte file of big-endian i64 timestamps and
//! offsets that abnormal recovery uses to choose where to start re-dispatching.
//!
//! ```text
//! offset  size  field
//!      0     8  physicMsgTimestamp   store time of the last CommitLog record known flushed
//!      8     8  logicsMsgTimestamp   store time of the last record whose ConsumeQueue unit is flushed
//!     16     8  indexMsgTimestamp    end time of the last full IndexFile flushed
//!     24     8  masterFlushedOffset  [5.x] HA
//!     32     8  confirmPhyOffset     [5.x]
//!     40     4  check magic          ferromq: ASCII `FMQC`; RocketMQ leaves zeros here
//!     44     4  check CRC            ferromq: CRC-32 (IEEE) of bytes 0..44
//!     48  4048  zero
//! ```
//!
//! RocketMQ reads only the first 40 bytes, so the check field is invisible to it. It is how
//! ferromq tells a torn or garbled checkpoint (a power cut during its write, or damage) from
//! a sound one: timestamps from a damaged checkpoint could start abnormal recovery past data
//! that was never flushed. A checkpoint whose check field is all zeros was written by
//! RocketMQ (or an older ferromq) and is trusted as RocketMQ trusts it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::error::{Error, Result};
use crate::io::{SegmentFile, Storage};

/// Size of the checkpoint file.
pub(crate) const CHECKPOINT_FILE_SIZE: u64 = 4096;
const PHYSIC_POS: u64 = 0;
const LOGICS_POS: u64 = PHYSIC_POS + 8;
const INDEX_POS: u64 = LOGICS_POS + 8;
const MASTER_FLUSHED_POS: u64 = INDEX_POS + 8;
const CONFIRM_POS: u64 = MASTER_FLUSHED_POS + 8;
const FIELDS_END: u64 = CONFIRM_POS + 8;
const CHECK_MAGIC_POS: u64 = FIELDS_END;
const CHECK_CRC_POS: u64 = CHECK_MAGIC_POS + 4;
const CHECK_END: u64 = CHECK_CRC_POS + 4;
const _: () = assert!(CHECK_END <= CHECKPOINT_FILE_SIZE);
/// `FMQC`: the check field was written by ferromq.
const CHECK_MAGIC: [u8; 4] = *b"FMQC";

/// How far before the checkpoint's timestamps abnormal recovery starts (RocketMQ's 3 s).
const RECOVERY_MARGIN_MS: i64 = 3000;

/// The checkpoint values, kept in memory and written by [`Checkpoint::flush`].
#[derive(Debug)]
pub(crate) struct Checkpoint {
    file: Arc<dyn SegmentFile>,
    pub physic_msg_timestamp: AtomicI64,
    pub logics_msg_timestamp: AtomicI64,
    pub index_msg_timestamp: AtomicI64,
    pub master_flushed_offset: AtomicI64,
    pub confirm_phy_offset: AtomicI64,
}

impl Checkpoint {
    /// Opens `path`, creating a zeroed 4096-byte file if it is missing. A damaged file (wrong
    /// size, or a check field that does not match) is not an error: it is warned about and
    /// read as all zeros, which makes abnormal recovery start at the first CommitLog segment
    /// and rebuild the IndexFiles; a file of the wrong size is replaced by a new one, and the
    /// next flush rewrites it.
    ///
    /// # Errors
    /// I/O errors.
    pub(crate) fn open(storage: &dyn Storage, path: &Path) -> Result<Self> {
        let len = file_len(storage, path)?;
        // An empty file cannot be mapped: it is read as zeros, like any other damage.
        let existing = match len {
            Some(len) if len > 0 => {
                Some(storage.open_segment(path).map_err(|e| Error::io("open", path, e))?)
            }
            _ => None,
        };
        let mut head = [0u8; CHECK_END as usize];
        if let Some(file) = &existing {
            let len = (file.size() as usize).min(head.len());
            file.read_at(0, &mut head[..len]).map_err(|e| Error::io("read", path, e))?;
        }
        let full_size = len == Some(CHECKPOINT_FILE_SIZE);
        let size_problem =
            || format!("checkpoint is {} bytes, expected {CHECKPOINT_FILE_SIZE}", len.unwrap_or(0));
        // The values are kept when they check out: a sound check field, or (RocketMQ's files
        // have none) a file of the right size. A missing file is simply new.
        let (keep, problem) = match check_head(&head) {
            _ if len.is_none() => (true, None),
            Check::Sound => (true, (!full_size).then(size_problem)),
            Check::Unchecked if full_size => (true, None),
            Check::Unchecked => (false, Some(size_problem())),
            Check::Damaged(why) => (false, Some(why)),
        };
        if let Some(problem) = problem {
            tracing::warn!(
                path = %path.display(),
                problem,
                kept_values = keep,
                "checkpoint is damaged; without its values recovery starts at the first commit log segment"
            );
        }
        if !keep {
            head = [0; CHECK_END as usize];
        }
        let file = match existing {
            Some(file) if full_size => file,
            existing => {
                // Missing, or damaged to another size: start a new file of the full size
                // (the root directory is synced when the `abort` marker is created).
                drop(existing);
                if len.is_some() {
                    storage.remove_file(path).map_err(|e| Error::io("remove", path, e))?;
                }
                storage
                    .create_segment(path, CHECKPOINT_FILE_SIZE)
                    .map_err(|e| Error::io("create", path, e))?
            }
        };
        let field = |pos: u64| {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(&head[pos as usize..pos as usize + 8]);
            AtomicI64::new(i64::from_be_bytes(buf))
        };
        Ok(Checkpoint {
            physic_msg_timestamp: field(PHYSIC_POS),
            logics_msg_timestamp: field(LOGICS_POS),
            index_msg_timestamp: field(INDEX_POS),
            master_flushed_offset: field(MASTER_FLUSHED_POS),
            confirm_phy_offset: field(CONFIRM_POS),
            file,
        })
    }

    /// Writes the current values with their check field and makes them durable.
    pub(crate) fn flush(&self) -> Result<()> {
        let mut buf = [0u8; CHECK_END as usize];
        let fields = [
            &self.physic_msg_timestamp,
            &self.logics_msg_timestamp,
            &self.index_msg_timestamp,
            &self.master_flushed_offset,
            &self.confirm_phy_offset,
        ];
        for (chunk, field) in buf[..FIELDS_END as usize].chunks_exact_mut(8).zip(fields) {
            chunk.copy_from_slice(&field.load(Ordering::Acquire).to_be_bytes());
        }
        buf[CHECK_MAGIC_POS as usize..CHECK_CRC_POS as usize].copy_from_slice(&CHECK_MAGIC);
        let crc = crc32fast::hash(&buf[..CHECK_CRC_POS as usize]);
        buf[CHECK_CRC_POS as usize..].copy_from_slice(&crc.to_be_bytes());
        let path = self.file.path();
        self.file.write_at(0, &buf).map_err(|e| Error::io("write", path, e))?;
        crate::crash_point::hit(crate::crash_point::CHECKPOINT_BEFORE_SYNC);
        self.file.sync_range(0, CHECKPOINT_FILE_SIZE).map_err(|e| Error::io("flush", path, e))
    }

    /// RocketMQ's `getMinTimestamp`: `max(0, min(physic, logics) - 3000)`.
    pub(crate) fn min_timestamp(&self) -> i64 {
        let physic = self.physic_msg_timestamp.load(Ordering::Acquire);
        let logics = self.logics_msg_timestamp.load(Ordering::Acquire);
        physic.min(logics).saturating_sub(RECOVERY_MARGIN_MS).max(0)
    }
}

/// The length of the file at `path`, `None` if there is none.
fn file_len(storage: &dyn Storage, path: &Path) -> Result<Option<u64>> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(None);
    };
    let entries = storage.list(dir).map_err(|e| Error::io("list", dir, e))?;
    Ok(entries.into_iter().find(|e| !e.is_dir && *name == *e.name).map(|e| e.len))
}

/// What the check field says about the first `CHECK_END` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    /// Written by ferromq, and the CRC matches.
    Sound,
    /// No check field (zeros): written by RocketMQ or an older ferromq.
    Unchecked,
    /// The check field is present but does not match, or is garbage.
    Damaged(String),
}

fn check_head(head: &[u8; CHECK_END as usize]) -> Check {
    let check = &head[CHECK_MAGIC_POS as usize..];
    if check.iter().all(|&b| b == 0) {
        return Check::Unchecked;
    }
    if check[..4] != CHECK_MAGIC {
        return Check::Damaged(format!(
            "check field at offset {CHECK_MAGIC_POS} is {check:02x?}, expected magic FMQC"
        ));
    }
    let mut stored = [0u8; 4];
    stored.copy_from_slice(&check[4..]);
    let stored = u32::from_be_bytes(stored);
    let computed = crc32fast::hash(&head[..CHECK_CRC_POS as usize]);
    if stored == computed {
        Check::Sound
    } else {
        Check::Damaged(format!(
            "CRC at offset {CHECK_CRC_POS} is {stored:#010x}, computed {computed:#010x}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::FsStorage;

    #[test]
    fn round_trip_and_layout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint");
        let checkpoint = Checkpoint::open(&FsStorage, &path).unwrap();
        assert_eq!(checkpoint.min_timestamp(), 0);
        checkpoint.physic_msg_timestamp.store(1_700_000_010_000, Ordering::Release);
        checkpoint.logics_msg_timestamp.store(1_700_000_005_000, Ordering::Release);
        checkpoint.index_msg_timestamp.store(1_700_000_000_000, Ordering::Release);
        checkpoint.flush().unwrap();
        drop(checkpoint);

        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 4096);
        assert_eq!(&bytes[0..8], &1_700_000_010_000i64.to_be_bytes());
        assert_eq!(&bytes[8..16], &1_700_000_005_000i64.to_be_bytes());
        assert_eq!(&bytes[40..44], b"FMQC");
        assert_eq!(&bytes[44..48], &crc32fast::hash(&bytes[..44]).to_be_bytes());
        assert!(bytes[48..].iter().all(|&b| b == 0));

        let checkpoint = Checkpoint::open(&FsStorage, &path).unwrap();
        assert_eq!(checkpoint.min_timestamp(), 1_700_000_002_000);
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        // Found by the `checkpoint` fuzz target: a garbage timestamp near i64::MIN.
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = Checkpoint::open(&FsStorage, &dir.path().join("checkpoint")).unwrap();
        checkpoint.physic_msg_timestamp.store(i64::MIN, Ordering::Release);
        assert_eq!(checkpoint.min_timestamp(), 0);
    }

    /// A checkpoint as RocketMQ writes it: the fields, no check field.
    fn rocketmq_checkpoint(physic: i64, logics: i64) -> Vec<u8> {
        let mut bytes = vec![0u8; 4096];
        bytes[..8].copy_from_slice(&physic.to_be_bytes());
        bytes[8..16].copy_from_slice(&logics.to_be_bytes());
        bytes
    }

    #[test]
    fn a_rocketmq_checkpoint_without_check_field_is_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint");
        std::fs::write(&path, rocketmq_checkpoint(1_700_000_010_000, 1_700_000_020_000)).unwrap();
        let checkpoint = Checkpoint::open(&FsStorage, &path).unwrap();
        assert_eq!(checkpoint.min_timestamp(), 1_700_000_007_000);
    }

    #[test]
    fn a_torn_or_garbled_checkpoint_reads_as_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint");
        let checkpoint = Checkpoint::open(&FsStorage, &path).unwrap();
        checkpoint.physic_msg_timestamp.store(1_700_000_010_000, Ordering::Release);
        checkpoint.logics_msg_timestamp.store(1_700_000_010_000, Ordering::Release);
        checkpoint.flush().unwrap();
        drop(checkpoint);
        let sound = std::fs::read(&path).unwrap();
        // A torn write: the new first field over the old rest, check field included.
        let mut torn = sound.clone();
        torn[..8].copy_from_slice(&1_700_000_099_999i64.to_be_bytes());
        // Garbage over the check field, and a check field with a wrong CRC.
        let mut garbage = sound.clone();
        garbage[40..44].copy_from_slice(b"\x13\x37\x00\x01");
        let mut flipped = sound.clone();
        flipped[45] ^= 0xff;
        for damaged in [torn, garbage, flipped] {
            std::fs::write(&path, &damaged).unwrap();
            let checkpoint = Checkpoint::open(&FsStorage, &path).unwrap();
            assert_eq!(checkpoint.physic_msg_timestamp.load(Ordering::Acquire), 0);
            assert_eq!(checkpoint.min_timestamp(), 0);
        }
    }

    #[test]
    fn a_checkpoint_of_the_wrong_size_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint");
        for len in [0, 20, 100, 5000] {
            let mut bytes = rocketmq_checkpoint(1_700_000_010_000, 1_700_000_010_000);
            bytes.resize(len, 0);
            std::fs::write(&path, &bytes).unwrap();
            let checkpoint = Checkpoint::open(&FsStorage, &path).unwrap();
            assert_eq!(checkpoint.min_timestamp(), 0, "{len} bytes");
            assert_eq!(std::fs::metadata(&path).unwrap().len(), 4096, "{len} bytes");
            checkpoint.flush().unwrap();
        }
        // A sound head in a file of the wrong size keeps its values.
        let checkpoint = Checkpoint::open(&FsStorage, &path).unwrap();
        checkpoint.physic_msg_timestamp.store(1_700_000_010_000, Ordering::Release);
        checkpoint.logics_msg_timestamp.store(1_700_000_010_000, Ordering::Release);
        checkpoint.flush().unwrap();
        drop(checkpoint);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(48);
        std::fs::write(&path, &bytes).unwrap();
        let checkpoint = Checkpoint::open(&FsStorage, &path).unwrap();
        assert_eq!(checkpoint.min_timestamp(), 1_700_000_007_000);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 4096);
    }
}
