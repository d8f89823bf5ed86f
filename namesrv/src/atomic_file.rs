//! Replacing a small file so that a crash or power cut leaves either the old or the new
//! content, never a torn mix: write a temporary file beside it, fsync it, rename it over the
//! target, fsync the directory. (Java's `MixAll.string2File` writes in place and keeps a
//! `.bak`; the rename makes the backup unnecessary.)

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Atomically replaces `path` with `bytes`, creating missing parent directories.
///
/// # Errors
///
/// [`Error::Io`] naming the file or directory that failed; the old content is then intact
/// (a leftover `.tmp` file may remain and is overwritten next time).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let mut file =
        OpenOptions::new().write(true).create(true).truncate(true).open(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io(path))?;
    // The rename is durable only once the directory entry is.
    File::open(dir).and_then(|dir| dir.sync_all()).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("kvConfig.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("kvConfig.json")]);
    }

    #[test]
    fn failure_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"x").unwrap();
        let err = write_atomically(&blocker.join("child.json"), b"y").unwrap_err();
        assert!(err.to_string().contains("file"), "{err}");
    }
}
