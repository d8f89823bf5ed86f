//! Cutting a slave's CommitLog back to what its master has.
//!
//! The cut needs the store to itself (readers may hold views of the bytes it removes), so a
//! running slave that finds its log ahead of its master's (`ha::check`) writes the
//! offset to `<storePathRootDir>/config/haTruncateOffset` and asks the broker to restart;
//! [`open_store`] — what `Broker::open` calls — applies the cut before anything reads the
//! store ([`MessageStore::open_truncated`]) and only then removes the file. A crash at any
//! point leaves the file (the next start cuts again) or a finished cut.

use std::path::PathBuf;

use ferromq_store::MessageStore;

use crate::config::BrokerConfig;

/// The file holding a pending cut: the offset in decimal.
pub const MARKER_FILE: &str = "haTruncateOffset";

fn marker_path(config: &BrokerConfig) -> PathBuf {
    config.config_dir().join(MARKER_FILE)
}

/// Records that the CommitLog must be cut at `phy_offset` at the next start.
///
/// # Errors
///
/// I/O errors writing the file (durably: temp file, fsync, rename, directory fsync).
pub(crate) fn request_cut(config: &BrokerConfig, phy_offset: i64) -> std::io::Result<()> {
    crate::persist::write_atomic(&marker_path(config), phy_offset.to_string().as_bytes())
}

/// The pending cut, if any.
pub fn pending_cut(config: &BrokerConfig) -> Option<i64> {
    let path = marker_path(config);
    let text = std::fs::read_to_string(&path).ok()?;
    match text.trim().parse::<i64>() {
        Ok(offset) if offset >= 0 => Some(offset),
        _ => {
            tracing::error!(file = %path.display(), text, "ignoring a malformed cut request");
            None
        }
    }
}

/// Opens the store, first applying a pending cut (a slave only: a master never cuts).
///
/// # Errors
///
/// The store does not open.
pub fn open_store(config: &BrokerConfig) -> Result<MessageStore, ferromq_store::Error> {
    let Some(cut) = pending_cut(config) else {
        return MessageStore::open(config.store.clone());
    };
    let store = if config.is_master() {
        tracing::warn!(cut, "a master never cuts its commit log: dropping the cut request");
        MessageStore::open(config.store.clone())?
    } else {
        tracing::warn!(cut, "cutting the commit log where the master's ends, before serving");
        MessageStore::open_truncated(config.store.clone(), cut)?
    };
    let path = marker_path(config);
    for file in [path.clone(), path.with_extension("bak")] {
        if let Err(error) = std::fs::remove_file(&file)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %file.display(), %error, "cannot remove the cut request");
        }
    }
    Ok(store)
}
