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
//!     40  4056  zero
//! ```

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
const _: () = assert!(FIELDS_END <= CHECKPOINT_FILE_SIZE);

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
    /// Opens `path`, creating a zeroed 4096-byte file if it is missing.
    ///
    /// # Errors
    /// `Corrupt` if the file exists with another size; I/O errors.
    pub(crate) fn open(storage: &dyn Storage, path: &Path) -> Result<Self> {
        let file = if storage.exists(path) {
            let file = storage.open_segment(path).map_err(|e| Error::io("open", path, e))?;
            if file.size() != CHECKPOINT_FILE_SIZE {
                return Err(Error::corrupt(
                    path,
                    format!("checkpoint is {} bytes, expected {CHECKPOINT_FILE_SIZE}", file.size()),
                ));
            }
            file
        } else {
            storage
                .create_segment(path, CHECKPOINT_FILE_SIZE)
                .map_err(|e| Error::io("create", path, e))?
        };
        let read = |pos: u64| -> Result<AtomicI64> {
            let mut buf = [0u8; 8];
            file.read_at(pos, &mut buf).map_err(|e| Error::io("read", path, e))?;
            Ok(AtomicI64::new(i64::from_be_bytes(buf)))
        };
        Ok(Checkpoint {
            physic_msg_timestamp: read(PHYSIC_POS)?,
            logics_msg_timestamp: read(LOGICS_POS)?,
            index_msg_timestamp: read(INDEX_POS)?,
            master_flushed_offset: read(MASTER_FLUSHED_POS)?,
            confirm_phy_offset: read(CONFIRM_POS)?,
            file,
        })
    }

    /// Writes the current values and makes them durable.
    pub(crate) fn flush(&self) -> Result<()> {
        let mut buf = [0u8; FIELDS_END as usize];
        let fields = [
            &self.physic_msg_timestamp,
            &self.logics_msg_timestamp,
            &self.index_msg_timestamp,
            &self.master_flushed_offset,
            &self.confirm_phy_offset,
        ];
        for (chunk, field) in buf.chunks_exact_mut(8).zip(fields) {
            chunk.copy_from_slice(&field.load(Ordering::Acquire).to_be_bytes());
        }
        let path = self.file.path();
        self.file.write_at(0, &buf).map_err(|e| Error::io("write", path, e))?;
        self.file.sync_range(0, CHECKPOINT_FILE_SIZE).map_err(|e| Error::io("flush", path, e))
    }

    /// RocketMQ's `getMinTimestamp`: `max(0, min(physic, logics) - 3000)`.
    pub(crate) fn min_timestamp(&self) -> i64 {
        let physic = self.physic_msg_timestamp.load(Ordering::Acquire);
        let logics = self.logics_msg_timestamp.load(Ordering::Acquire);
        physic.min(logics).saturating_sub(RECOVERY_MARGIN_MS).max(0)
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
        assert!(bytes[40..].iter().all(|&b| b == 0));

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

    #[test]
    fn wrong_size_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint");
        std::fs::write(&path, [0u8; 100]).unwrap();
        let err = Checkpoint::open(&FsStorage, &path).unwrap_err().to_string();
        assert!(err.contains("checkpoint is 100 bytes, expected 4096"), "{err}");
    }
}
