//! The file sink: JSON lines ([`LogRecord::json_line`](crate::diagnostics::LogRecord::json_line))
//! appended to `<directory>/<scope>.jsonl`, rotated to `.1` … `.<keep>` by size and by age.
//!
//! - A line that would take the file past `max_size` goes to a fresh file (a single line
//!   longer than `max_size` is written alone to an empty file rather than split).
//! - A file started `max_age` ago or longer is rotated before the next write, and by the
//!   exporter once a second while idle, so the current file never holds a line written more
//!   than `max_age` (plus a second) after the file was started.
//! - When the current file was started is kept in `<scope>.jsonl.started` (one UTC time), so
//!   that the age survives a restart: the records' own times cannot tell (a device's clock may
//!   be wrong, its native records old), and the modification time is the last write's. Without
//!   a readable `.started` file (deleted by hand, or written by no gateway) the file's
//!   modification time is taken.
//! - Rotation renames `x.jsonl.<n>` to `x.jsonl.<n+1>` from the oldest down and `x.jsonl` to
//!   `x.jsonl.1`, after deleting `x.jsonl.<keep>` and any older file (`keep` may have been
//!   lowered).
//! - Lines are flushed once per batch, never synced (SD-card wear): a power cut may lose the
//!   last second of lines, a crash of the gateway none.
//!
//! Synchronous, and clock-free: callers pass `now`, so rotation is tested without waiting.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::FileExport;
use crate::utc::{format_ms, unix_ms};

/// Why a file sink could not write.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The directory is missing and cannot be created.
    #[error(
        "cannot create the log export directory {}: {source}; create it (mode 0750, owned by the gateway's user) or fix [diagnostics] file.directory",
        path.display()
    )]
    Directory {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// Opening, writing or flushing a file failed.
    #[error(
        "cannot write {}: {source}; check that its file system has room and is not read-only, and that the gateway's user may write there",
        path.display()
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// Renaming or deleting a file during rotation failed.
    #[error(
        "cannot rotate {} to {}: {source}; check the permissions of the directory, or move the file away by hand",
        from.display(),
        to.display()
    )]
    Rotate {
        /// The file being moved or deleted.
        from: PathBuf,
        /// Where it was going (the same path for a deletion).
        to: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

/// Why a file is rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The next line would take it past `max_size`.
    Size,
    /// It was started `max_age` ago or longer.
    Age,
}

/// Whether a file of `size` bytes started at `started` must be rotated before a line of
/// `next_len` bytes (0: no line, only the age counts) is written at `now`. A clock that went
/// back counts as no time passed.
pub fn rotation_due(
    size: u64,
    started: SystemTime,
    next_len: u64,
    now: SystemTime,
    limits: &FileExport,
) -> Option<Rotation> {
    if size > 0 && next_len > 0 && size.saturating_add(next_len) > limits.max_size {
        return Some(Rotation::Size);
    }
    let age = now.duration_since(started).unwrap_or_default();
    (age >= limits.max_age).then_some(Rotation::Age)
}

#[derive(Debug)]
struct Current {
    out: BufWriter<File>,
    size: u64,
    started: SystemTime,
}

/// One rotating JSON-lines file.
#[derive(Debug)]
pub struct RotatingFile {
    directory: PathBuf,
    name: String,
    path: PathBuf,
    started_path: PathBuf,
    limits: FileExport,
    current: Option<Current>,
}

impl RotatingFile {
    /// The file `<limits.directory>/<scope>.jsonl`. Nothing is opened before the first write.
    pub fn new(limits: &FileExport, scope: &str) -> Self {
        let name = format!("{scope}.jsonl");
        let directory = limits.directory.clone();
        Self {
            path: directory.join(&name),
            started_path: directory.join(format!("{name}.started")),
            directory,
            name,
            limits: limits.clone(),
            current: None,
        }
    }

    /// The current file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of the `n`th rotated file (`x.jsonl.<n>`).
    pub fn rotated_path(&self, n: u32) -> PathBuf {
        self.directory.join(format!("{}.{n}", self.name))
    }

    /// Appends `lines` (each without its newline) at `now`, rotating as needed, and flushes.
    /// After an error the file is reopened at the next write; the lines of a failed batch may
    /// be written again then (at least once, never lost).
    pub fn write_lines(&mut self, lines: &[String], now: SystemTime) -> Result<(), FileError> {
        let result = self.try_write_lines(lines, now);
        if result.is_err() {
            self.current = None;
        }
        result
    }

    fn try_write_lines(&mut self, lines: &[String], now: SystemTime) -> Result<(), FileError> {
        for line in lines {
            let len = line.len() as u64 + 1;
            self.make_room(len, now)?;
            let current = self.open(now)?;
            let written = current
                .out
                .write_all(line.as_bytes())
                .and_then(|()| current.out.write_all(b"\n"));
            match written {
                Ok(()) => current.size += len,
                Err(source) => {
                    return Err(FileError::Write {
                        path: self.path.clone(),
                        source,
                    });
                }
            }
        }
        if let Some(current) = &mut self.current {
            current.out.flush().map_err(|source| FileError::Write {
                path: self.path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Rotates the current file if it is old (the exporter calls this while idle). Does
    /// nothing before the first write.
    pub fn rotate_if_old(&mut self, now: SystemTime) -> Result<(), FileError> {
        let result = self.make_room(0, now);
        if result.is_err() {
            self.current = None;
        }
        result
    }

    /// Whether [`RotatingFile::rotate_if_old`] has anything to do at `now` (no IO).
    pub fn is_old(&self, now: SystemTime) -> bool {
        self.current.as_ref().is_some_and(|c| {
            c.size > 0 && rotation_due(c.size, c.started, 0, now, &self.limits).is_some()
        })
    }

    fn make_room(&mut self, next_len: u64, now: SystemTime) -> Result<(), FileError> {
        if self.current.is_none() && next_len == 0 {
            return Ok(());
        }
        let limits = self.limits.clone();
        let current = self.open(now)?;
        match rotation_due(current.size, current.started, next_len, now, &limits) {
            None => Ok(()),
            // An empty file is not worth a rotation: its clock starts again.
            Some(_) if current.size == 0 => {
                current.started = now;
                self.write_started(now)
            }
            Some(_) => self.rotate(now),
        }
    }

    fn open(&mut self, now: SystemTime) -> Result<&mut Current, FileError> {
        let current = match self.current.take() {
            Some(current) => current,
            None => self.open_current(now)?,
        };
        Ok(self.current.insert(current))
    }

    fn open_current(&self, now: SystemTime) -> Result<Current, FileError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(&self.directory)
            .map_err(|source| FileError::Directory {
                path: self.directory.clone(),
                source,
            })?;
        let write_error = |source| FileError::Write {
            path: self.path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(&self.path)
            .map_err(write_error)?;
        let meta = file.metadata().map_err(write_error)?;
        let size = meta.len();
        let started = if size == 0 {
            self.write_started(now)?;
            now
        } else {
            match self.read_started() {
                Some(started) => started,
                None => {
                    let modified = meta.modified().unwrap_or(now);
                    self.write_started(modified)?;
                    modified
                }
            }
        };
        Ok(Current {
            out: BufWriter::new(file),
            size,
            started,
        })
    }

    fn read_started(&self) -> Option<SystemTime> {
        let text = fs::read_to_string(&self.started_path).ok()?;
        crate::utc::parse(text.get(..64).unwrap_or(&text)).ok()
    }

    fn write_started(&self, started: SystemTime) -> Result<(), FileError> {
        fs::write(
            &self.started_path,
            format!("{}\n", format_ms(unix_ms(started))),
        )
        .map_err(|source| FileError::Write {
            path: self.started_path.clone(),
            source,
        })
    }

    fn rotate(&mut self, now: SystemTime) -> Result<(), FileError> {
        if let Some(mut current) = self.current.take() {
            current.out.flush().map_err(|source| FileError::Write {
                path: self.path.clone(),
                source,
            })?;
        }
        let keep = self.limits.keep;
        self.delete_rotated_from(keep.max(1))?;
        if keep == 0 {
            remove(&self.path)?;
        } else {
            for n in (1..keep).rev() {
                rename(&self.rotated_path(n), &self.rotated_path(n + 1))?;
            }
            rename(&self.path, &self.rotated_path(1))?;
        }
        tracing::debug!(file = %self.path.display(), "diagnostics export file rotated");
        self.current = Some(self.open_current(now)?);
        Ok(())
    }

    /// Deletes `x.jsonl.<n>` for every `n >= from`.
    fn delete_rotated_from(&self, from: u32) -> Result<(), FileError> {
        let entries = fs::read_dir(&self.directory).map_err(|source| FileError::Rotate {
            from: self.directory.clone(),
            to: self.directory.clone(),
            source,
        })?;
        let prefix = format!("{}.", self.name);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let n = name
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse::<u32>().ok());
            if n.is_some_and(|n| n >= from) {
                remove(&entry.path())?;
            }
        }
        Ok(())
    }
}

fn rename(from: &Path, to: &Path) -> Result<(), FileError> {
    match fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(FileError::Rotate {
            from: from.to_owned(),
            to: to.to_owned(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn remove(path: &Path) -> Result<(), FileError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(FileError::Rotate {
            from: path.to_owned(),
            to: path.to_owned(),
            source: e,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
