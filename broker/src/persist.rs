//! Crash-safe JSON files under `<store>/config/` (broker.md §2.1, storage.md §20).
//!
//! A write goes to `<name>.tmp`, is synced, the current file becomes `<name>.bak`, the
//! temporary file is renamed over `<name>` and the directory is synced. A crash at any point
//! leaves either the new file, or the previous one as `<name>` or `<name>.bak`; loading tries
//! `<name>` and then `<name>.bak`.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically and durably.
///
/// # Errors
///
/// Any I/O error; the previous content is then still in place (or in `.bak`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // A bare file name has the parent "", which cannot be opened to sync: use ".".
    let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = with_suffix(path, ".tmp");
    {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    if path.exists() {
        fs::rename(path, with_suffix(path, ".bak"))?;
    }
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

/// Reads `path`, falling back to `<path>.bak` when it is missing or `parse` rejects it.
/// `Ok(None)` when neither exists.
///
/// # Errors
///
/// The parse error of the main file when the backup does not parse either (a corrupt
/// config file is a start-up error, not something to silently replace with defaults).
pub fn load<T, E: std::fmt::Display>(
    path: &Path,
    parse: impl Fn(&[u8]) -> Result<T, E>,
) -> Result<Option<T>, String> {
    let backup = with_suffix(path, ".bak");
    let mut first_error = None;
    for candidate in [path, backup.as_path()] {
        match fs::read(candidate) {
            Ok(bytes) => match parse(&bytes) {
                Ok(value) => {
                    if candidate != path {
                        tracing::warn!(file = %path.display(), "unreadable; loaded {}", candidate.display());
                    }
                    return Ok(Some(value));
                }
                Err(error) => {
                    tracing::warn!(file = %candidate.display(), %error, "config file does not parse");
                    first_error.get_or_insert_with(|| format!("{}: {error}", candidate.display()));
                }
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                first_error.get_or_insert_with(|| format!("{}: {error}", candidate.display()));
            }
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(None),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(bytes: &[u8]) -> Result<String, String> {
        let text = String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())?;
        if text.starts_with('{') { Ok(text) } else { Err("not json".to_owned()) }
    }

    #[test]
    fn write_load_and_fall_back_to_backup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config/topics.json");
        assert_eq!(load(&path, parse_text).unwrap(), None);
        write_atomic(&path, b"{1}").unwrap();
        write_atomic(&path, b"{2}").unwrap();
        assert_eq!(load(&path, parse_text).unwrap().as_deref(), Some("{2}"));
        fs::write(&path, b"garbage").unwrap();
        assert_eq!(load(&path, parse_text).unwrap().as_deref(), Some("{1}"), "backup");
        fs::write(with_suffix(&path, ".bak"), b"garbage").unwrap();
        assert!(load(&path, parse_text).is_err(), "both corrupt is an error");
    }
}
