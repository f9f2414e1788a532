//! Reading the event log back, rotated files included (`events.jsonl.1`, `events.jsonl.2.gz`
//! as logrotate names them, or `-YYYYMMDD[.gz]` with `dateext`), oldest first, one line at a
//! time: memory stays bounded whatever the size of the history, and a deadline ends a read
//! that takes too long.

use std::{
    fs::File,
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    time::{Instant, SystemTime},
};

/// Longest line passed on; longer ones (never written by the controller) are skipped.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// How a read ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanOutcome {
    /// Files read, whole or in part.
    pub files_read: usize,
    /// Files skipped because they end before `since`.
    pub files_skipped: usize,
    /// The deadline passed before the newest file was read to its end.
    pub timed_out: bool,
    /// Files that could not be opened or decoded, with the error.
    pub errors: Vec<String>,
}

/// The log and its rotated files, oldest first (the live file last).
#[must_use]
pub fn log_files(path: &Path) -> Vec<PathBuf> {
    let Some(name) = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
    else {
        return Vec::new();
    };
    let directory = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut rotated: Vec<(SystemTime, u64, PathBuf)> = std::fs::read_dir(directory)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let suffix = file_name
                .strip_prefix(&name)?
                .strip_prefix(['.', '-'])?
                .to_owned();
            let number = suffix.strip_suffix(".gz").unwrap_or(&suffix);
            if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let metadata = entry.metadata().ok().filter(std::fs::Metadata::is_file)?;
            let modified = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            // Same modification time: `.2` is older than `.1`, `-20260102` newer than `-20260101`.
            let order = number.parse::<u64>().unwrap_or(0);
            let age_rank = if file_name.contains(&format!("{name}.")) {
                u64::MAX - order
            } else {
                order
            };
            Some((modified, age_rank, entry.path()))
        })
        .collect();
    rotated.sort();
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, _, path)| path).collect();
    if path.is_file() {
        files.push(path.to_owned());
    }
    files
}

fn open(path: &Path) -> std::io::Result<Box<dyn BufRead>> {
    let file = File::open(path)?;
    if path.extension().is_some_and(|extension| extension == "gz") {
        Ok(Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(
            file,
        ))))
    } else {
        Ok(Box::new(BufReader::new(file)))
    }
}

/// Calls `on_line` for every line of the log at `path` and its rotated files, oldest first.
/// Rotated files last written before `since` are skipped unread (all their events are older).
/// Stops at `deadline`. Blocking: run it on a blocking thread.
pub fn scan(
    path: &Path,
    since: Option<jiff::Timestamp>,
    deadline: Instant,
    mut on_line: impl FnMut(&str),
) -> ScanOutcome {
    let mut outcome = ScanOutcome::default();
    let files = log_files(path);
    let live = files.len().saturating_sub(1);
    for (index, file) in files.iter().enumerate() {
        if index < live
            && let Some(since) = since
            && let Ok(modified) = file.metadata().and_then(|metadata| metadata.modified())
            && jiff::Timestamp::try_from(modified).is_ok_and(|modified| modified < since)
        {
            outcome.files_skipped += 1;
            continue;
        }
        let mut reader = match open(file) {
            Ok(reader) => reader,
            Err(error) => {
                outcome.errors.push(format!("{}: {error}", file.display()));
                continue;
            }
        };
        outcome.files_read += 1;
        let mut line = Vec::new();
        let mut counter: u32 = 0;
        loop {
            counter = counter.wrapping_add(1);
            if counter.is_multiple_of(1024) && Instant::now() >= deadline {
                outcome.timed_out = true;
                return outcome;
            }
            line.clear();
            let limit = u64::try_from(MAX_LINE_BYTES).unwrap_or(u64::MAX);
            match reader.by_ref().take(limit).read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) if line.last() != Some(&b'\n') && line.len() >= MAX_LINE_BYTES => {
                    // Too long: drop the rest of it.
                    if skip_to_newline(&mut reader).is_err() {
                        break;
                    }
                }
                Ok(_) => {
                    if let Ok(text) = std::str::from_utf8(&line) {
                        let text = text.trim_end_matches(['\n', '\r']);
                        if !text.is_empty() {
                            on_line(text);
                        }
                    }
                }
                Err(error) => {
                    outcome.errors.push(format!("{}: {error}", file.display()));
                    break;
                }
            }
        }
    }
    outcome
}

fn skip_to_newline(reader: &mut Box<dyn BufRead>) -> std::io::Result<()> {
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(());
        }
        if let Some(end) = buffer.iter().position(|byte| *byte == b'\n') {
            reader.consume(end + 1);
            return Ok(());
        }
        let length = buffer.len();
        reader.consume(length);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(path: &Path, text: &str) {
        let file = File::create(path).expect("create");
        let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        encoder.write_all(text.as_bytes()).expect("write");
        encoder.finish().expect("finish");
    }

    fn set_age(path: &Path, seconds_ago: u64) {
        let at = SystemTime::now() - std::time::Duration::from_secs(seconds_ago);
        File::options()
            .append(true)
            .open(path)
            .and_then(|file| file.set_modified(at))
            .expect("set mtime");
    }

    #[test]
    fn rotated_and_compressed_files_are_read_oldest_first() {
        let directory = tempfile::tempdir().expect("tempdir");
        let log = directory.path().join("events.jsonl");
        gzip(&directory.path().join("events.jsonl.3.gz"), "one\n");
        gzip(&directory.path().join("events.jsonl.2.gz"), "two\n");
        std::fs::write(directory.path().join("events.jsonl.1"), "three\n").expect("write");
        std::fs::write(&log, "four\nfive").expect("write");
        std::fs::write(directory.path().join("events.jsonl.bak"), "no\n").expect("write");
        std::fs::write(directory.path().join("other.jsonl.1"), "no\n").expect("write");
        set_age(&directory.path().join("events.jsonl.3.gz"), 300);
        set_age(&directory.path().join("events.jsonl.2.gz"), 200);
        set_age(&directory.path().join("events.jsonl.1"), 100);
        let mut lines = Vec::new();
        let far = Instant::now() + std::time::Duration::from_secs(60);
        let outcome = scan(&log, None, far, |line| lines.push(line.to_owned()));
        assert_eq!(lines, ["one", "two", "three", "four", "five"]);
        assert_eq!(outcome.files_read, 4);
        assert!(outcome.errors.is_empty(), "{outcome:?}");

        // Files written before `since` are not opened.
        let since = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(150);
        let mut lines = Vec::new();
        let outcome = scan(&log, Some(since), far, |line| lines.push(line.to_owned()));
        assert_eq!(lines, ["three", "four", "five"]);
        assert_eq!(outcome.files_skipped, 2);
    }

    #[test]
    fn overlong_lines_are_skipped_and_a_past_deadline_stops_the_read() {
        let directory = tempfile::tempdir().expect("tempdir");
        let log = directory.path().join("events.jsonl");
        let text = format!("a\n{}\nb\n", "x".repeat(MAX_LINE_BYTES * 2));
        std::fs::write(&log, text).expect("write");
        let mut lines = Vec::new();
        let far = Instant::now() + std::time::Duration::from_secs(60);
        scan(&log, None, far, |line| lines.push(line.to_owned()));
        assert_eq!(lines, ["a", "b"]);

        std::fs::write(&log, "line\n".repeat(5000)).expect("write");
        let outcome = scan(&log, None, Instant::now(), |_| {});
        assert!(outcome.timed_out);
    }
}
