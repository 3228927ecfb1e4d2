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
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use ssecast::{Hub, HubConfig, Millis, Topic, Update};

use files::{
    in_dir, keep_aside, lock_dir, remove_stale_temporaries, replace_log, sync_dir, Replace,
};
use record::{encode_event, evicted_payload, frame, scan, Parsed};

mod files;
mod record;

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

/// Why an event is not (known to be) on disk.
#[derive(Debug, Clone)]
pub(crate) enum StoreError {
    /// A write or sync failed: the store refuses every publish from then on.
    Write(Arc<io::Error>),
    /// Rewriting the log failed after its rename.
    Compact(Arc<io::Error>),
    /// A panic happened while the store's state was locked.
    Poisoned,
    /// The writer thread stopped.
    Stopped,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Write(e) => write!(f, "could not write the history to disk: {e}"),
            StoreError::Compact(e) => write!(f, "could not compact the history: {e}"),
            StoreError::Poisoned => {
                f.write_str("the history store failed (a panic); restart the server")
            }
            StoreError::Stopped => f.write_str("the history writer stopped"),
        }
    }
}

impl std::error::Error for StoreError {}

/// What the log held at startup, in log order.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    pub(crate) events: Vec<(Update, u64)>,
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
    /// `fdatasync`s done by the writer (each makes every record appended before it durable).
    syncs: u64,
    waiters: Vec<(u64, async_channel::Sender<Result<(), StoreError>>)>,
    /// Set when a write or sync failed: later publishes are refused, not silently undurable.
    failed: Option<StoreError>,
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
                Parsed::Event(_, seq) => Some(seq),
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
                .flat_map(|r| match &r.parsed {
                    Parsed::Event(update, _) => update.topics(),
                    Parsed::Evicted(..) => &[],
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
                Parsed::Event(update, seq) => restored.events.push((update, seq)),
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
                syncs: 0,
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

    /// The store's state. After a panic while it was held, the log's bookkeeping cannot
    /// be trusted: the store then refuses every publish (503) instead of acknowledging
    /// events it may not keep.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| {
            let mut inner = poisoned.into_inner();
            inner.failed.get_or_insert(StoreError::Poisoned);
            inner
        })
    }

    /// The directory of the log.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends event `seq` of `topic` (call under the hub lock, so the log is in `seq`
    /// order).
    pub(crate) fn append(&self, update: &Update, seq: u64) -> Appended {
        self.append_all(&[(update, seq)])
    }

    /// Appends `events` (in `seq` order) at once, so they are written and synced together:
    /// a batch costs one `fdatasync` at most. The ticket is the last event's.
    pub(crate) fn append_all(&self, events: &[(&Update, u64)]) -> Appended {
        let records = match events {
            [(update, seq)] => encode_event(update, *seq),
            _ => events
                .iter()
                .flat_map(|(update, seq)| encode_event(update, *seq))
                .collect(),
        };
        let mut inner = self.lock();
        if inner.failed.is_none() {
            // After a failure the writer has stopped: nothing would drain the buffer.
            inner.buffer.extend_from_slice(&records);
        }
        inner.appended += events.len() as u64;
        let ticket = inner.appended;
        let size = inner.file_len + inner.buffer.len() as u64;
        let compact =
            !inner.compacting && inner.failed.is_none() && size > 2 * inner.base_len + MIN_GROWTH;
        inner.compacting |= compact;
        drop(inner);
        self.wake.notify_one();
        Appended { ticket, compact }
    }

    /// `fdatasync`s made so far, and the records they made durable.
    pub(crate) fn sync_counts(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.syncs, inner.synced)
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
    pub(crate) async fn durable(&self, ticket: u64) -> Result<(), StoreError> {
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
        rx.recv().await.unwrap_or(Err(StoreError::Stopped))
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
                    return self.fail(inner, StoreError::Write(Arc::new(e)));
                }
                inner.file_len += chunk.len() as u64;
                inner.synced = target;
                inner.syncs += 1;
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
                    Err(e) => return self.fail(inner, StoreError::Compact(Arc::new(e))),
                }
            }
        }
    }

    /// Records a failure and answers every waiting publish with it; the writer then stops.
    fn fail(&self, mut inner: MutexGuard<'_, Inner>, failure: StoreError) {
        log::error!("{}: {failure}", self.dir.display());
        inner.failed = Some(failure.clone());
        for (_, tx) in inner.waiters.drain(..) {
            let _ = tx.try_send(Err(failure.clone()));
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
                Parsed::Event(update, seq) => {
                    let kept =
                        *seq > compaction.upto || compaction.retained.binary_search(seq).is_ok();
                    if kept {
                        out.extend_from_slice(&frame(&bytes[record.payload.clone()]));
                    }
                    for topic in update.topics() {
                        if kept {
                            keeps.insert(topic);
                        } else {
                            let mark = marks.entry(topic).or_default();
                            *mark = (*mark).max(*seq);
                        }
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
pub(crate) fn restore(dir: &Path, mut config: HubConfig) -> io::Result<(Hub, Arc<Store>)> {
    let (store, restored) = Store::open(dir).map_err(|e| in_dir(dir, e))?;
    config.first_seq = config.first_seq.max(restored.last_seq.saturating_add(1));
    let mut hub = Hub::new(config);
    let count = restored.events.len();
    for (update, seq) in restored.events {
        let topic = update.topics()[0].clone();
        // Refused only for a log not in seq order, which this store never writes.
        if let Err(e) = hub.publish_update_at(update, seq, Millis(0)) {
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
