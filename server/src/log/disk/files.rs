//! The data directory's files: the lock held for the process's lifetime, temporaries named
//! per process, a damaged log kept aside, and a log replaced atomically (write, sync, rename,
//! sync the directory).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use super::{LOCK, LOG};

pub(super) fn in_dir(dir: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("--data-dir {}: {e}", dir.display()))
}

/// Takes `dir`'s lock for the process's lifetime, or says who has it.
pub(super) fn lock_dir(dir: &Path) -> io::Result<File> {
    let path = dir.join(LOCK);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "already in use by another ssecast process ({} is locked)",
                path.display()
            ),
        )),
        Err(TryLockError::Error(e)) => Err(io::Error::new(
            e.kind(),
            format!("cannot lock {}: {e}", path.display()),
        )),
    }
}

/// The name of this process's temporary log: no other process writes a file of that name.
pub(super) fn temporary_name() -> String {
    format!("{LOG}.tmp.{}", std::process::id())
}

/// Removes temporary logs a crashed process left (under the lock: no live process owns one).
pub(super) fn remove_stale_temporaries(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == format!("{LOG}.tmp") || name.starts_with(&format!("{LOG}.tmp.")) {
            log::debug!("{}: removing a stale temporary log", entry.path().display());
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Keeps the current log under a new name, `history.log.damaged-<unix time>` (a hard link,
/// so the bytes are never rewritten; a copy where links are not possible).
pub(super) fn keep_aside(dir: &Path) -> io::Result<PathBuf> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let log = dir.join(LOG);
    let mut aside = dir.join(format!("{LOG}.damaged-{now}"));
    let mut n = 1;
    while aside.exists() {
        aside = dir.join(format!("{LOG}.damaged-{now}-{n}"));
        n += 1;
    }
    if std::fs::hard_link(&log, &aside).is_err() {
        std::fs::copy(&log, &aside)?;
    }
    sync_dir(dir)?;
    Ok(aside)
}

/// Why [`replace_log`] failed: before the rename the old log is intact and in use; after it,
/// the directory may not be durable.
#[derive(Debug)]
pub(super) enum Replace {
    Before(io::Error),
    After(io::Error),
}

impl From<Replace> for io::Error {
    fn from(e: Replace) -> io::Error {
        match e {
            Replace::Before(e) | Replace::After(e) => e,
        }
    }
}

/// Replaces the log with `content` (write a temporary file, sync, rename over the log, sync
/// the directory); returns the new log, open for appending.
pub(super) fn replace_log(dir: &Path, content: &[u8]) -> Result<File, Replace> {
    let tmp = dir.join(temporary_name());
    let written = (|| {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        drop(f);
        // Opened again in append mode: the handle follows the file through the rename.
        let f = OpenOptions::new().append(true).open(&tmp)?;
        std::fs::rename(&tmp, dir.join(LOG))?;
        Ok(f)
    })();
    let file = written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Replace::Before(e)
    })?;
    sync_dir(dir).map_err(Replace::After)?;
    Ok(file)
}

pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #[test]
    fn temporaries_carry_the_pid() {
        assert_eq!(
            super::temporary_name(),
            format!("history.log.tmp.{}", std::process::id())
        );
    }
}
