//! `--data-dir DIR`: the replay history on disk, so a restarted server replays to reconnecting
//! clients what they missed, with ids that continue where they stopped.
//!
//! The store is one append-only log, `DIR/history.log`, of checksummed records: an event
//! (its `seq`, topic, id if the publisher chose it, type, retry, data) or a topic's eviction
//! mark. A thread writes what was appended and `fdatasync`s it, many publishes per sync
//! (group commit); `POST /publish` answers only after its event is synced.
//!
//! The store decides nothing about retention: the hub does. When the log has grown to twice
//! its size after the last compaction, the app hands the store the hub's
//! [`retained_seqs`](ssecast::Hub::retained_seqs), and the writer rewrites the log (to a
//! temporary file of this process, synced, renamed) with exactly those events, plus, per
//! topic that keeps some, the newest `seq` it let go of. Replaying that log into a hub with
//! the same flags rebuilds the history the hub held.
//!
//! One process per directory: `DIR/lock` is locked (`flock`, exclusive) for the process's
//! lifetime, and a second server on the directory refuses to start.
//!
//! Guarantee: an event acknowledged by `POST /publish` (200) is on disk before the answer,
//! so a crash (`kill -9`, power loss) loses none of them. Subscribers may receive an event
//! up to one sync before it is on disk; a crash in that window can lose it (its publisher
//! got no 200), and ids after a restart skip past it, so a client that saw it resumes as
//! `ssecast.missed`, never on a reused id. Ticks (`--tick`) are logged without waiting.
//!
//! Reading the log back at startup: an incomplete last record (a crash mid-write: fewer bytes
//! than its header says, at the end of the file) is cut off silently. Any other record that
//! fails its checksum or does not parse is damage: it is skipped, the records after it are
//! found again (see [`scan`]) and restored, the damaged file is kept aside as
//! `history.log.damaged-<unix time>` and a clean log is written from what was recovered.
//! Since the damaged record's topic is unknown, every topic is marked as having let go of
//! events up to the damage, so a client resuming from before it gets `ssecast.missed`.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use ssecast::{Event, EventId, EventType, Hub, Millis, Topic};

use crate::config::ServeArgs;

const LOG: &str = "history.log";
const LOCK: &str = "lock";
const KIND_EVENT: u8 = 1;
const KIND_EVICTED: u8 = 2;
/// Records longer than this are corrupt (bodies are bounded far below it).
const MAX_RECORD: usize = 1 << 30;
/// The first four bytes of every record this version writes. Its first byte, 0xFF, never
/// occurs in UTF-8, so never in a record's text fields: scanning for it after damage looks
/// at few places. As a little-endian `u32` it is above [`MAX_RECORD`], so no record of the
/// earlier format (which began with its length) starts with it.
const MAGIC: [u8; 4] = [0xFF, b'S', b'S', b'E'];
/// `[MAGIC][len u32][crc32 u32][payload]`.
const HEADER: usize = 12;
/// `[len u32][crc32 u32][payload]`: records of logs written before [`MAGIC`], still read.
const OLD_HEADER: usize = 8;
/// The log is not compacted before it holds this many bytes more than after the last
/// compaction.
const MIN_GROWTH: u64 = 1 << 20;

/// What the log held at startup, in log order.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    pub(crate) events: Vec<(Topic, u64, Event)>,
    pub(crate) evicted: Vec<(Topic, u64)>,
    /// The newest `seq` in the log (0: none).
    pub(crate) last_seq: u64,
}

/// A compaction the app asked for: keep the events whose `seq` is in `retained` (sorted),
/// and every event after `upto` (appended after the hub was asked).
#[derive(Debug)]
struct Compaction {
    retained: Vec<u64>,
    upto: u64,
}

#[derive(Debug)]
struct Inner {
    /// Appended records not yet handed to the writer.
    buffer: Vec<u8>,
    /// Records appended so far; a record's ticket is this count once it is in.
    appended: u64,
    /// Records on disk (synced).
    synced: u64,
    waiters: Vec<(u64, async_channel::Sender<Result<(), String>>)>,
    /// Set when a write or sync failed: later publishes are refused, not silently undurable.
    failed: Option<String>,
    /// Bytes in the log file.
    file_len: u64,
    /// The log's length after the last compaction (or at startup).
    base_len: u64,
    /// Asked for, not yet taken by the writer.
    compaction: Option<Compaction>,
    /// A compaction was asked for and has not finished: do not ask again.
    compacting: bool,
}

/// The on-disk history. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
    inner: Mutex<Inner>,
    wake: Condvar,
    /// Holds the directory's lock for as long as the process runs (the store lives in the
    /// app, which lives until exit).
    _lock: File,
}

/// What [`Store::append`] did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Appended {
    /// To wait for with [`Store::durable`].
    pub(crate) ticket: u64,
    /// The log has doubled since its last compaction: hand the hub's retained events to
    /// [`Store::compact`].
    pub(crate) compact: bool,
}

impl Store {
    /// Locks `dir` (creating it), reads the log back, and starts the writer thread.
    pub(crate) fn open(dir: &Path) -> io::Result<(Arc<Store>, Restored)> {
        std::fs::create_dir_all(dir)?;
        let lock = lock_dir(dir)?;
        remove_stale_temporaries(dir)?;
        let path = dir.join(LOG);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let scan = scan(&bytes);
        let last_seq = scan
            .records
            .iter()
            .filter_map(|r| match r.parsed {
                Parsed::Event(_, seq, _) => Some(seq),
                Parsed::Evicted(..) => None,
            })
            .max()
            .unwrap_or(0);
        let mut damage_marks = Vec::new();
        let file = if scan.damaged.is_empty() {
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            if let Some(torn) = scan.torn {
                // An append the crash interrupted: never acknowledged, nothing lost.
                log::debug!(
                    "{}: cut an incomplete record at the end ({} bytes at offset {})",
                    path.display(),
                    bytes.len() - torn,
                    torn
                );
                file.set_len(torn as u64)?;
                file.sync_all()?;
            }
            file
        } else {
            // Every topic may have lost an event at the damage: mark them all.
            let mark = scan.damage_mark(last_seq);
            let topics: HashSet<&Topic> = scan
                .records
                .iter()
                .filter_map(|r| match &r.parsed {
                    Parsed::Event(topic, _, _) => Some(topic),
                    Parsed::Evicted(..) => None,
                })
                .collect();
            damage_marks = topics.into_iter().map(|t| (t.clone(), mark)).collect();
            let mut clean = Vec::with_capacity(bytes.len());
            for record in &scan.records {
                clean.extend_from_slice(&frame(&bytes[record.payload.clone()]));
            }
            for (topic, seq) in &damage_marks {
                clean.extend_from_slice(&frame(&evicted_payload(topic, *seq)));
            }
            let aside = keep_aside(dir)?;
            let file = replace_log(dir, &clean)?;
            let stretches: Vec<String> = scan
                .damaged
                .iter()
                .take(10)
                .map(|d| format!("{} bytes at offset {}", d.len, d.offset))
                .collect();
            log::warn!(
                "{}: skipped {} damaged record{} ({}{}), {} bytes in all, and restored the {} \
                 others; the damaged log is kept as {}; clients resuming from before the \
                 damage are told they missed events",
                path.display(),
                scan.damaged.len(),
                if scan.damaged.len() == 1 { "" } else { "s" },
                stretches.join(", "),
                if scan.damaged.len() > 10 { ", ..." } else { "" },
                scan.damaged.iter().map(|d| d.len).sum::<usize>(),
                scan.records.len(),
                aside.display(),
            );
            file
        };
        // The log's directory entry, if it was just made, and any truncation are durable
        // before anything is acknowledged.
        sync_dir(dir)?;
        drop(bytes);
        let mut restored = Restored {
            last_seq,
            ..Restored::default()
        };
        for record in scan.records {
            match record.parsed {
                Parsed::Event(topic, seq, event) => restored.events.push((topic, seq, event)),
                Parsed::Evicted(topic, seq) => restored.evicted.push((topic, seq)),
            }
        }
        restored.evicted.extend(damage_marks);
        let file_len = file.metadata()?.len();
        let store = Arc::new(Store {
            dir: dir.to_path_buf(),
            inner: Mutex::new(Inner {
                buffer: Vec::new(),
                appended: 0,
                synced: 0,
                waiters: Vec::new(),
                failed: None,
                file_len,
                base_len: file_len,
                compaction: None,
                compacting: false,
            }),
            wake: Condvar::new(),
            _lock: lock,
        });
        let writer = Arc::clone(&store);
        std::thread::Builder::new()
            .name("ssecast-store".into())
            .spawn(move || writer.run_writer(file))?;
        Ok((store, restored))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not stop the log; its state stays consistent per record.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends event `seq` of `topic` (call under the hub lock, so the log is in `seq`
    /// order).
    pub(crate) fn append(&self, topic: &Topic, seq: u64, event: &Event) -> Appended {
        let record = encode_event(topic, seq, event);
        let mut inner = self.lock();
        if inner.failed.is_none() {
            // After a failure the writer has stopped: nothing would drain the buffer.
            inner.buffer.extend_from_slice(&record);
        }
        inner.appended += 1;
        let ticket = inner.appended;
        let size = inner.file_len + inner.buffer.len() as u64;
        let compact =
            !inner.compacting && inner.failed.is_none() && size > 2 * inner.base_len + MIN_GROWTH;
        inner.compacting |= compact;
        drop(inner);
        self.wake.notify_one();
        Appended { ticket, compact }
    }

    /// Asks the writer to rewrite the log with the events whose `seq` is in `retained`
    /// (the hub's [`retained_seqs`](Hub::retained_seqs), taken under the hub lock right after
    /// appending event `upto`), and every event after `upto`.
    pub(crate) fn compact(&self, retained: Vec<u64>, upto: u64) {
        let mut inner = self.lock();
        inner.compacting = true;
        inner.compaction = Some(Compaction { retained, upto });
        drop(inner);
        self.wake.notify_one();
    }

    /// Waits until the record of `ticket` is on disk.
    pub(crate) async fn durable(&self, ticket: u64) -> Result<(), String> {
        let rx = {
            let mut inner = self.lock();
            if let Some(e) = &inner.failed {
                return Err(e.clone());
            }
            if inner.synced >= ticket {
                return Ok(());
            }
            let (tx, rx) = async_channel::bounded(1);
            inner.waiters.push((ticket, tx));
            rx
        };
        rx.recv()
            .await
            .unwrap_or_else(|_| Err("the history writer stopped".into()))
    }

    /// The writer thread: writes and syncs what was appended, then compacts when asked.
    fn run_writer(&self, mut file: File) {
        loop {
            let (chunk, target, compaction) = {
                let mut inner = self.lock();
                while inner.buffer.is_empty() && inner.compaction.is_none() {
                    inner = self.wake.wait(inner).unwrap_or_else(|p| p.into_inner());
                }
                (
                    std::mem::take(&mut inner.buffer),
                    inner.appended,
                    inner.compaction.take(),
                )
            };
            if !chunk.is_empty() {
                let written = file.write_all(&chunk).and_then(|()| file.sync_data());
                let mut inner = self.lock();
                if let Err(e) = written {
                    return self.fail(inner, &format!("could not write the history to disk: {e}"));
                }
                inner.file_len += chunk.len() as u64;
                inner.synced = target;
                let mut waiters = std::mem::take(&mut inner.waiters);
                waiters.retain(|(ticket, tx)| {
                    if *ticket <= target {
                        let _ = tx.try_send(Ok(()));
                        false
                    } else {
                        true
                    }
                });
                inner.waiters = waiters;
            }
            if let Some(compaction) = compaction {
                // Everything up to `upto` is in the file now: it was appended before the
                // compaction was asked for, so it was in this chunk or an earlier one.
                let result = self.compact_log(&compaction);
                let mut inner = self.lock();
                inner.compacting = false;
                match result {
                    Ok(Compacted::Done(new_file, len)) => {
                        file = new_file;
                        inner.file_len = len;
                        inner.base_len = len;
                    }
                    Ok(Compacted::Skipped(reason)) => {
                        // The log stays as it is and is tried again once it doubles.
                        log::warn!("{}: not compacted: {reason}", self.dir.join(LOG).display());
                        inner.base_len = inner.file_len;
                    }
                    Err(e) => {
                        return self.fail(inner, &format!("could not compact the history: {e}"))
                    }
                }
            }
        }
    }

    /// Records a failure and answers every waiting publish with it; the writer then stops.
    fn fail(&self, mut inner: MutexGuard<'_, Inner>, reason: &str) {
        log::error!("{reason}");
        inner.failed = Some(reason.to_owned());
        for (_, tx) in inner.waiters.drain(..) {
            let _ = tx.try_send(Err(reason.to_owned()));
        }
    }

    /// Rewrites the log as `compaction` says: reads it back, keeps the retained events in
    /// log order and, for each topic that keeps some, its newest eviction mark.
    fn compact_log(&self, compaction: &Compaction) -> io::Result<Compacted> {
        let bytes = std::fs::read(self.dir.join(LOG))?;
        let scan = scan(&bytes);
        if let Some(first) = scan.damaged.first() {
            return Ok(Compacted::Skipped(format!(
                "it is damaged at offset {} (it is set right at the next start)",
                first.offset
            )));
        }
        let mut out = Vec::with_capacity(bytes.len() / 2);
        let mut marks: HashMap<&Topic, u64> = HashMap::new();
        let mut keeps: HashSet<&Topic> = HashSet::new();
        for record in &scan.records {
            match &record.parsed {
                Parsed::Event(topic, seq, _) => {
                    let kept =
                        *seq > compaction.upto || compaction.retained.binary_search(seq).is_ok();
                    if kept {
                        out.extend_from_slice(&frame(&bytes[record.payload.clone()]));
                        keeps.insert(topic);
                    } else {
                        let mark = marks.entry(topic).or_default();
                        *mark = (*mark).max(*seq);
                    }
                }
                Parsed::Evicted(topic, seq) => {
                    let mark = marks.entry(topic).or_default();
                    *mark = (*mark).max(*seq);
                }
            }
        }
        // A topic that keeps nothing is unknown to a hub rebuilt from the log, which would
        // ignore its mark: leave it out, or marks of long-gone topics would pile up.
        for (topic, seq) in marks {
            if keeps.contains(topic) {
                out.extend_from_slice(&frame(&evicted_payload(topic, seq)));
            }
        }
        let len = out.len() as u64;
        match replace_log(&self.dir, &out) {
            Ok(file) => Ok(Compacted::Done(file, len)),
            Err(Replace::Before(e)) => Ok(Compacted::Skipped(e.to_string())),
            Err(Replace::After(e)) => Err(e),
        }
    }
}

enum Compacted {
    /// The new log, open for appending, and its length.
    Done(File, u64),
    /// The old log is still in place and still appended to.
    Skipped(String),
}

/// Opens the store in `dir` and builds the hub from what it holds: every kept event back in
/// its history under its old id, and ids that continue after the newest (or from the start
/// time in microseconds if that is later, so an id handed out but never made durable before
/// a crash is never given again). Then, if the hub let some of the log's events go (the
/// flags changed, or the log grew since its last compaction), the log is compacted to what
/// the hub holds.
pub(crate) fn restore(dir: &Path, args: &ServeArgs) -> io::Result<(Hub, Arc<Store>)> {
    let mut config = args.hub_config();
    let (store, restored) = Store::open(dir).map_err(|e| in_dir(dir, e))?;
    config.first_seq = config.first_seq.max(restored.last_seq.saturating_add(1));
    let mut hub = Hub::new(config);
    let count = restored.events.len();
    for (topic, seq, event) in restored.events {
        // Refused only for a log not in seq order, which this store never writes.
        if let Err(e) = hub.publish_at(&topic, event, seq, Millis(0)) {
            log::warn!("{}: skipping event {seq} of {topic}: {e}", dir.display());
        }
    }
    for (topic, seq) in restored.evicted {
        hub.mark_evicted(&topic, seq);
    }
    let retained = hub.retained_seqs();
    log::info!(
        "{}: {} events of history restored",
        dir.display(),
        retained.len()
    );
    if retained.len() < count {
        store.compact(retained, restored.last_seq);
    }
    Ok((hub, store))
}

fn in_dir(dir: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("--data-dir {}: {e}", dir.display()))
}

/// Takes `dir`'s lock for the process's lifetime, or says who has it.
fn lock_dir(dir: &Path) -> io::Result<File> {
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
fn temporary_name() -> String {
    format!("{LOG}.tmp.{}", std::process::id())
}

/// Removes temporary logs a crashed process left (under the lock: no live process owns one).
fn remove_stale_temporaries(dir: &Path) -> io::Result<()> {
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
fn keep_aside(dir: &Path) -> io::Result<PathBuf> {
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
enum Replace {
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
fn replace_log(dir: &Path, content: &[u8]) -> Result<File, Replace> {
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

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `[MAGIC][len u32][crc32 u32][payload]`, little-endian.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + HEADER);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// A record read back.
#[derive(Debug)]
struct Record {
    payload: std::ops::Range<usize>,
    parsed: Parsed,
}

/// A stretch of the log skipped as damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Damage {
    offset: usize,
    len: usize,
    /// The `seq` of the first event after it (`None`: none follows).
    next_seq: Option<u64>,
}

/// A log read back: its records, the damage skipped, and where a torn tail starts.
#[derive(Debug, Default)]
struct Scan {
    records: Vec<Record>,
    damaged: Vec<Damage>,
    /// The offset of an incomplete last record.
    torn: Option<usize>,
}

impl Scan {
    /// The eviction mark that makes every resume from before the damage a miss: an event lost
    /// in it has a `seq` below the next event's, or above every `seq` when none follows.
    fn damage_mark(&self, last_seq: u64) -> u64 {
        self.damaged
            .iter()
            .map(|d| d.next_seq.map_or(last_seq.saturating_add(1), |s| s - 1))
            .max()
            .unwrap_or(0)
    }
}

/// Why no record starts at an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bad {
    /// The file ends before the record does; `end` is where its header says it ends, if
    /// the header is whole.
    Incomplete,
    /// A bad length, checksum or payload; the record would end at `end` if its length is
    /// right.
    Invalid { end: Option<usize> },
}

/// The record at `at` and where it ends.
fn record_at(bytes: &[u8], at: usize) -> Result<(Record, usize), Bad> {
    let rest = &bytes[at..];
    let (header, len_at) = if rest.starts_with(&MAGIC) {
        (HEADER, 4)
    } else if rest.len() < MAGIC.len() && MAGIC.starts_with(rest) {
        return Err(Bad::Incomplete);
    } else {
        (OLD_HEADER, 0)
    };
    let word = |i: usize| -> Option<u32> {
        Some(u32::from_le_bytes(rest.get(i..i + 4)?.try_into().ok()?))
    };
    let (Some(len), Some(crc)) = (word(len_at), word(len_at + 4)) else {
        return Err(Bad::Incomplete);
    };
    let len = len as usize;
    if len > MAX_RECORD {
        return Err(Bad::Invalid { end: None });
    }
    let end = at + header + len;
    if end > bytes.len() {
        return Err(Bad::Incomplete);
    }
    let payload = at + header..end;
    if crc32fast::hash(&bytes[payload.clone()]) != crc {
        return Err(Bad::Invalid { end: Some(end) });
    }
    match parse(&bytes[payload.clone()]) {
        Some(parsed) => Ok((Record { payload, parsed }, end)),
        None => Err(Bad::Invalid { end: Some(end) }),
    }
}

/// Reads every record of a log. After a bad record it looks for the next good one: first
/// where the bad record's length says it ends (one damaged record whose length is intact),
/// else at every later offset, or, once the log has shown a record of this version, only at
/// offsets holding [`MAGIC`]. A position passes only if its length fits, its CRC-32 matches
/// (1 in 4 billion by chance) and its payload parses, so a false start is very unlikely.
/// If no good record follows, a bad record whose end lies past the end of the file is a
/// torn tail; anything else is damage.
fn scan(bytes: &[u8]) -> Scan {
    let mut scan = Scan::default();
    let mut at = 0;
    let mut current = false;
    while at < bytes.len() {
        match record_at(bytes, at) {
            Ok((record, end)) => {
                current |= bytes[at..].starts_with(&MAGIC);
                scan.records.push(record);
                at = end;
            }
            Err(bad) => {
                let exact = match bad {
                    Bad::Invalid { end: Some(end) } if end < bytes.len() => {
                        record_at(bytes, end).ok().map(|_| end)
                    }
                    _ => None,
                };
                let next = exact.or_else(|| {
                    (at + 1..bytes.len()).find(|&p| {
                        (!current || bytes[p..].starts_with(&MAGIC)) && record_at(bytes, p).is_ok()
                    })
                });
                match next {
                    Some(next) => {
                        scan.damaged.push(Damage {
                            offset: at,
                            len: next - at,
                            next_seq: None,
                        });
                        at = next;
                    }
                    None if bad == Bad::Incomplete || bytes[at..].iter().all(|&b| b == 0) => {
                        // Zeros: a file extended by a write the crash interrupted.
                        scan.torn = Some(at);
                        break;
                    }
                    None => {
                        scan.damaged.push(Damage {
                            offset: at,
                            len: bytes.len() - at,
                            next_seq: None,
                        });
                        break;
                    }
                }
            }
        }
    }
    // The first event after each stretch.
    let mut records = scan.records.iter().peekable();
    for damage in &mut scan.damaged {
        while records
            .next_if(|r| r.payload.start < damage.offset)
            .is_some()
        {}
        damage.next_seq = records.clone().find_map(|r| match r.parsed {
            Parsed::Event(_, seq, _) => Some(seq),
            Parsed::Evicted(..) => None,
        });
    }
    scan
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn encode_event(topic: &Topic, seq: u64, event: &Event) -> Vec<u8> {
    let mut p = Vec::with_capacity(32 + topic.as_str().len() + event.data().len());
    p.push(KIND_EVENT);
    p.extend_from_slice(&seq.to_le_bytes());
    put_str(&mut p, topic.as_str());
    let flags = u8::from(event.id().is_some())
        | u8::from(event.event_type().is_some()) << 1
        | u8::from(event.retry().is_some()) << 2;
    p.push(flags);
    if let Some(id) = event.id() {
        put_str(&mut p, id.as_str());
    }
    if let Some(t) = event.event_type() {
        put_str(&mut p, t.as_str());
    }
    if let Some(r) = event.retry() {
        p.extend_from_slice(&r.0.to_le_bytes());
    }
    put_str(&mut p, event.data());
    frame(&p)
}

fn evicted_payload(topic: &Topic, seq: u64) -> Vec<u8> {
    let mut p = Vec::new();
    p.push(KIND_EVICTED);
    p.extend_from_slice(&seq.to_le_bytes());
    put_str(&mut p, topic.as_str());
    p
}

#[derive(Debug)]
enum Parsed {
    Event(Topic, u64, Event),
    Evicted(Topic, u64),
}

/// Reads fields off the front of a payload.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<&'a str> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        std::str::from_utf8(self.take(len)?).ok()
    }
}

/// A record's payload; `None` if it does not make sense (or has bytes left over).
fn parse(payload: &[u8]) -> Option<Parsed> {
    let mut c = Cursor(payload);
    let kind = c.u8()?;
    let seq = c.u64()?;
    let topic = Topic::new(c.str()?).ok()?;
    let parsed = match kind {
        KIND_EVICTED => Parsed::Evicted(topic, seq),
        KIND_EVENT => {
            let flags = c.u8()?;
            if flags & !7 != 0 {
                return None;
            }
            let id = if flags & 1 != 0 {
                EventId::new(c.str()?).ok()?
            } else {
                // The hub's own id for it.
                EventId::from(seq)
            };
            let event_type = if flags & 2 != 0 {
                Some(EventType::new(c.str()?).ok()?)
            } else {
                None
            };
            let retry = if flags & 4 != 0 { Some(c.u64()?) } else { None };
            let mut event = Event::new(c.str()?).with_id(id);
            if let Some(t) = event_type {
                event = event.with_type(t);
            }
            if let Some(ms) = retry {
                event = event.with_retry(Millis(ms));
            }
            Parsed::Event(topic, seq, event)
        }
        _ => return None,
    };
    c.0.is_empty().then_some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str) -> Topic {
        Topic::new(name).unwrap()
    }

    fn event(seq: u64) -> Vec<u8> {
        encode_event(&topic("t"), seq, &Event::new(format!("event {seq}")))
    }

    /// A record as the earlier format wrote it: `[len][crc][payload]`.
    fn old_event(seq: u64) -> Vec<u8> {
        let record = event(seq);
        let payload = &record[HEADER..];
        let mut out = (payload.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// What a scan finds: the seqs of its events, the (offset, len) of each damaged stretch,
    /// and where a torn tail starts.
    fn check(bytes: &[u8], seqs: &[u64], damaged: &[(usize, usize)], torn: Option<usize>) {
        let scan = scan(bytes);
        let found: Vec<u64> = scan
            .records
            .iter()
            .filter_map(|r| match r.parsed {
                Parsed::Event(_, seq, _) => Some(seq),
                Parsed::Evicted(..) => None,
            })
            .collect();
        let stretches: Vec<(usize, usize)> =
            scan.damaged.iter().map(|d| (d.offset, d.len)).collect();
        assert_eq!(
            (found.as_slice(), stretches.as_slice(), scan.torn),
            (seqs, damaged, torn)
        );
    }

    fn log(records: &[Vec<u8>]) -> Vec<u8> {
        records.concat()
    }

    #[test]
    fn records_round_trip() {
        let event = Event::new("a\nb")
            .with_type(EventType::new("note").unwrap())
            .with_retry(Millis(7));
        let record = encode_event(&topic("news"), 42, &event);
        let (r, end) = record_at(&record, 0).unwrap();
        assert_eq!(end, record.len());
        let Parsed::Event(t, seq, e) = r.parsed else {
            panic!("not an event")
        };
        assert_eq!((t, seq), (topic("news"), 42));
        assert_eq!(e.id().map(EventId::as_str), Some("42"));
        assert_eq!(e.data(), "a\nb");
        assert_eq!(e.event_type().map(EventType::as_str), Some("note"));
        assert_eq!(e.retry(), Some(Millis(7)));
        let custom = encode_event(
            &topic("news"),
            43,
            &Event::new("x").with_id(EventId::new("mine").unwrap()),
        );
        let Parsed::Event(_, _, e) = record_at(&custom, 0).unwrap().0.parsed else {
            panic!("not an event")
        };
        assert_eq!(e.id().map(EventId::as_str), Some("mine"));
        let Parsed::Evicted(t, 9) = record_at(&frame(&evicted_payload(&topic("x"), 9)), 0)
            .unwrap()
            .0
            .parsed
        else {
            panic!("not a mark")
        };
        assert_eq!(t, topic("x"));
    }

    #[test]
    fn intact_logs_of_both_formats() {
        let n = event(1).len();
        check(&[], &[], &[], None);
        check(&log(&[event(1), event(2), event(3)]), &[1, 2, 3], &[], None);
        check(&log(&[old_event(1), old_event(2)]), &[1, 2], &[], None);
        // An old log appended to by this version.
        check(
            &log(&[old_event(1), event(2), event(3)]),
            &[1, 2, 3],
            &[],
            None,
        );
        assert_eq!(old_event(1).len() + 4, n);
    }

    #[test]
    fn a_torn_tail_is_not_damage() {
        let whole = log(&[event(1), event(2), event(3)]);
        let n = event(1).len();
        // Every cut inside the last record, its header included.
        for cut in 2 * n + 1..3 * n {
            check(&whole[..cut], &[1, 2], &[], Some(2 * n));
        }
        // A record's beginning appended after whole ones (an interrupted group write).
        let mut torn = whole.clone();
        torn.extend_from_slice(&event(4)[..n / 2]);
        check(&torn, &[1, 2, 3], &[], Some(3 * n));
        // Zeros where a crash left the file longer than what was written.
        let mut zeros = whole.clone();
        zeros.extend_from_slice(&[0; 100]);
        check(&zeros, &[1, 2, 3], &[], Some(3 * n));
        // The same in an old log.
        let old = log(&[old_event(1), old_event(2)]);
        check(&old[..old.len() - 1], &[1], &[], Some(old.len() / 2));
    }

    #[test]
    fn a_flipped_byte_loses_one_record() {
        let records: Vec<Vec<u8>> = (1..=5).map(event).collect();
        let whole = log(&records);
        let n = records[0].len();
        // A flip at any byte of the third record loses that record alone, whether its
        // length still says where it ends or not.
        for i in 0..n {
            let mut bytes = whole.clone();
            bytes[2 * n + i] ^= 0x10;
            check(&bytes, &[1, 2, 4, 5], &[(2 * n, n)], None);
        }
        // In the last record: damage (a whole record fails its checksum), not a torn tail.
        let mut bytes = whole.clone();
        bytes[4 * n + HEADER + 2] ^= 1;
        check(&bytes, &[1, 2, 3, 4], &[(4 * n, n)], None);
        // Two damaged records far apart.
        let mut bytes = whole.clone();
        bytes[n + 20] ^= 1;
        bytes[3 * n + 5] ^= 1;
        check(&bytes, &[1, 3, 5], &[(n, n), (3 * n, n)], None);
        // Garbage in place of two whole records.
        let mut bytes = whole.clone();
        bytes[n..3 * n].fill(b'x');
        check(&bytes, &[1, 4, 5], &[(n, 2 * n)], None);
    }

    #[test]
    fn old_logs_resynchronise_too() {
        let records: Vec<Vec<u8>> = (1..=4).map(old_event).collect();
        let whole = log(&records);
        let n = records[0].len();
        for i in 0..n {
            let mut bytes = whole.clone();
            bytes[n + i] ^= 0x04;
            check(&bytes, &[1, 3, 4], &[(n, n)], None);
        }
    }

    #[test]
    fn the_damage_mark_covers_the_lost_event() {
        let records: Vec<Vec<u8>> = [10, 20, 30].into_iter().map(event).collect();
        let n = records[0].len();
        let mut bytes = log(&records);
        bytes[n + 20] ^= 1;
        // Event 20 is lost: a resume from 10 (or anything below 29) must be a miss.
        assert_eq!(scan(&bytes).damage_mark(30), 29);
        let mut bytes = log(&records);
        bytes[2 * n + 20] ^= 1;
        // The last one: every position up to the newest left is before it.
        assert_eq!(scan(&bytes).damage_mark(20), 21);
    }

    #[test]
    fn temporaries_carry_the_pid() {
        assert_eq!(
            temporary_name(),
            format!("history.log.tmp.{}", std::process::id())
        );
    }
}
