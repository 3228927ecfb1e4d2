//! `--data-dir DIR`: the replay history on disk, so a restarted server replays to reconnecting
//! clients what they missed, with ids that continue where they stopped.
//!
//! The store is one append-only log, `DIR/history.log`, of length-prefixed, checksummed
//! records: an event (its `seq`, topic, id if the publisher chose it, type, retry, data) or a
//! topic's eviction mark. A thread writes what was appended and `fdatasync`s it, many
//! publishes per sync (group commit); `POST /publish` answers only after its event is
//! synced. Kept records mirror the hub's history bounds, and when the file grows past twice
//! what is kept it is rewritten with only that (to a temporary file, synced, renamed).
//!
//! Guarantee: an event acknowledged by `POST /publish` (200) is on disk before the answer,
//! so a crash (`kill -9`, power loss) loses none of them. Subscribers may receive an event
//! up to one sync before it is on disk; a crash in that window can lose it (its publisher
//! got no 200), and ids after a restart skip past it, so a client that saw it resumes as
//! `ssecast.missed`, never on a reused id. Ticks (`--tick`) are logged without waiting. A
//! torn record at the end of the log (a crash mid-write) is detected by its checksum and
//! cut off at startup.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use ssecast::{Event, EventId, EventType, Hub, HubConfig, Millis, Topic};

const LOG: &str = "history.log";
const KIND_EVENT: u8 = 1;
const KIND_EVICTED: u8 = 2;
/// Records longer than this are corrupt (bodies are bounded far below it).
const MAX_RECORD: usize = 1 << 30;

/// Why an event is not on disk.
#[derive(Debug, Clone)]
pub(crate) enum StoreError {
    /// A write or sync failed: the store refuses every publish from then on, rather than
    /// acknowledge events it cannot keep.
    Failed(Arc<io::Error>),
    /// The writer thread stopped.
    Stopped,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Failed(e) => write!(f, "could not write the history to disk: {e}"),
            StoreError::Stopped => f.write_str("the history writer stopped"),
        }
    }
}

impl std::error::Error for StoreError {}

/// What a store keeps: the hub's history bounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) events: usize,
    pub(crate) bytes: usize,
    pub(crate) topics: usize,
}

/// What the log held at startup, in log order.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    pub(crate) events: Vec<(Topic, u64, Event)>,
    pub(crate) evicted: Vec<(Topic, u64)>,
    /// The newest `seq` in the log (0: none).
    pub(crate) last_seq: u64,
}

#[derive(Debug, Default)]
struct Kept {
    records: VecDeque<(u64, Arc<[u8]>)>,
    bytes: usize,
    evicted: u64,
    last: u64,
}

#[derive(Debug)]
struct Inner {
    /// Appended records not yet handed to the writer.
    buffer: Vec<u8>,
    /// Records appended so far; a record's ticket is this count once it is in.
    appended: u64,
    /// Records on disk (synced).
    synced: u64,
    waiters: Vec<(u64, async_channel::Sender<Result<(), StoreError>>)>,
    /// Set when a write or sync failed: later publishes are refused, not silently undurable.
    failed: Option<StoreError>,
    topics: HashMap<Topic, Kept>,
    kept_bytes: u64,
    file_len: u64,
}

/// The on-disk history. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
    bounds: Bounds,
    inner: Mutex<Inner>,
    wake: Condvar,
}

impl Store {
    /// Opens (or creates) the log in `dir`, reads it back, and starts the writer thread.
    pub(crate) fn open(dir: &Path, bounds: Bounds) -> io::Result<(Arc<Store>, Restored)> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(LOG);
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(mut f) => {
                f.read_to_end(&mut bytes)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut inner = Inner {
            buffer: Vec::new(),
            appended: 0,
            synced: 0,
            waiters: Vec::new(),
            failed: None,
            topics: HashMap::new(),
            kept_bytes: 0,
            file_len: 0,
        };
        let mut restored = Restored::default();
        let mut offset = 0;
        while let Some((record, len)) = next_record(&bytes[offset..]) {
            match parse(record) {
                Some(Parsed::Event(topic, seq, event)) => {
                    keep(
                        &mut inner,
                        bounds,
                        &topic,
                        seq,
                        Arc::from(&bytes[offset..offset + len]),
                    );
                    restored.last_seq = restored.last_seq.max(seq);
                    restored.events.push((topic, seq, event));
                }
                Some(Parsed::Evicted(topic, seq)) => {
                    let kept = inner.topics.entry(topic.clone()).or_default();
                    kept.evicted = kept.evicted.max(seq);
                    restored.evicted.push((topic, seq));
                }
                None => break,
            }
            offset += len;
        }
        if offset < bytes.len() {
            log::warn!(
                "{}: cut {} bytes of an incomplete or corrupt record at the end (a crash mid-write)",
                path.display(),
                bytes.len() - offset
            );
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        file.set_len(offset as u64)?;
        file.sync_all()?;
        sync_dir(dir)?;
        inner.file_len = offset as u64;
        let store = Arc::new(Store {
            dir: dir.to_path_buf(),
            bounds,
            inner: Mutex::new(inner),
            wake: Condvar::new(),
        });
        let writer = Arc::clone(&store);
        std::thread::Builder::new()
            .name("ssecast-store".into())
            .spawn(move || writer.run_writer(file))?;
        Ok((store, restored))
    }

    /// The directory of the log.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not stop the log; its state stays consistent per record.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends event `seq` of `topic` (call under the hub lock, so the log is in `seq`
    /// order); returns the ticket to wait for with [`Store::durable`].
    pub(crate) fn append(&self, topic: &Topic, seq: u64, event: &Event) -> u64 {
        let record: Arc<[u8]> = Arc::from(encode_event(topic, seq, event));
        let mut inner = self.lock();
        if inner.failed.is_none() {
            // After a failure the writer has stopped: nothing would drain the buffer.
            inner.buffer.extend_from_slice(&record);
        }
        keep(&mut inner, self.bounds, topic, seq, record);
        inner.appended += 1;
        let ticket = inner.appended;
        drop(inner);
        self.wake.notify_one();
        ticket
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

    /// The writer thread: writes and syncs what was appended, compacts when the log has
    /// grown past twice what is kept.
    fn run_writer(&self, mut file: File) {
        loop {
            let (chunk, target, compact) = {
                let mut inner = self.lock();
                while inner.buffer.is_empty() {
                    inner = self.wake.wait(inner).unwrap_or_else(|p| p.into_inner());
                }
                let compact = inner.file_len > 2 * inner.kept_bytes + (1 << 20);
                let target = inner.appended;
                if compact {
                    // The kept records already include everything buffered.
                    inner.buffer.clear();
                    (snapshot(&inner), target, true)
                } else {
                    (std::mem::take(&mut inner.buffer), target, false)
                }
            };
            let written = if compact {
                self.rewrite(&chunk).map(|f| {
                    file = f;
                })
            } else {
                file.write_all(&chunk).and_then(|()| file.sync_data())
            };
            let mut inner = self.lock();
            match written {
                Ok(()) => {
                    inner.file_len = if compact {
                        chunk.len() as u64
                    } else {
                        inner.file_len + chunk.len() as u64
                    };
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
                Err(e) => {
                    let failed = StoreError::Failed(Arc::new(e));
                    log::error!("{failed}");
                    inner.failed = Some(failed.clone());
                    for (_, tx) in inner.waiters.drain(..) {
                        let _ = tx.try_send(Err(failed.clone()));
                    }
                    return;
                }
            }
        }
    }

    /// Replaces the log with `content` (write, sync, rename, sync the directory); returns the
    /// new log opened for appending.
    fn rewrite(&self, content: &[u8]) -> io::Result<File> {
        let tmp = self.dir.join(format!("{LOG}.tmp"));
        let mut f = File::create(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        drop(f);
        let path = self.dir.join(LOG);
        std::fs::rename(&tmp, &path)?;
        sync_dir(&self.dir)?;
        OpenOptions::new().append(true).open(&path)
    }
}

/// Opens the store in `dir` and builds the hub from what it holds: every kept event back in
/// its history under its old id, and ids that continue after the newest (or from the start
/// time in microseconds if that is later, so an id handed out but never made durable before
/// a crash is never given again).
pub(crate) fn restore(dir: &Path, mut config: HubConfig) -> io::Result<(Hub, Arc<Store>)> {
    let bounds = Bounds {
        events: config.history_events,
        bytes: config.history_bytes,
        topics: config.max_topics,
    };
    let (store, restored) = Store::open(dir, bounds)?;
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
    log::info!("{}: {count} events of history restored", dir.display());
    Ok((hub, store))
}

/// Keeps `record` as `topic`'s newest, then lets the oldest go until the bounds hold.
fn keep(inner: &mut Inner, bounds: Bounds, topic: &Topic, seq: u64, record: Arc<[u8]>) {
    if !inner.topics.contains_key(topic) && inner.topics.len() >= bounds.topics.max(1) {
        // As the hub does: forget the topic published to longest ago.
        let oldest = inner
            .topics
            .iter()
            .min_by_key(|(_, k)| k.last)
            .map(|(t, _)| t.clone());
        if let Some(oldest) = oldest.and_then(|t| inner.topics.remove(&t)) {
            inner.kept_bytes -= oldest.bytes as u64;
        }
    }
    let kept = inner.topics.entry(topic.clone()).or_default();
    kept.bytes += record.len();
    inner.kept_bytes += record.len() as u64;
    kept.last = seq;
    kept.records.push_back((seq, record));
    while kept.records.len() > bounds.events || kept.bytes > bounds.bytes {
        let Some((old_seq, old)) = kept.records.pop_front() else {
            break;
        };
        kept.bytes -= old.len();
        inner.kept_bytes -= old.len() as u64;
        kept.evicted = old_seq;
    }
}

/// Everything kept, as a log: eviction marks first, then events in `seq` order.
fn snapshot(inner: &Inner) -> Vec<u8> {
    let mut out = Vec::with_capacity(inner.kept_bytes as usize);
    let mut events: Vec<&(u64, Arc<[u8]>)> = Vec::new();
    for (topic, kept) in &inner.topics {
        if kept.evicted > 0 {
            out.extend_from_slice(&frame(&evicted_payload(topic, kept.evicted)));
        }
        events.extend(kept.records.iter());
    }
    events.sort_by_key(|(seq, _)| *seq);
    for (_, record) in events {
        out.extend_from_slice(record);
    }
    out
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `[len u32][crc32 u32][payload]`, little-endian.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The payload of the first whole, intact record of `bytes`, and the record's length.
fn next_record(bytes: &[u8]) -> Option<(&[u8], usize)> {
    let len = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    if len > MAX_RECORD {
        return None;
    }
    let payload = bytes.get(8..8 + len)?;
    (crc32fast::hash(payload) == crc).then_some((payload, 8 + len))
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

/// A record's payload; `None` if it does not make sense (treated as the end of the log).
fn parse(payload: &[u8]) -> Option<Parsed> {
    let mut c = Cursor(payload);
    let kind = c.u8()?;
    let seq = c.u64()?;
    let topic = Topic::new(c.str()?).ok()?;
    match kind {
        KIND_EVICTED => Some(Parsed::Evicted(topic, seq)),
        KIND_EVENT => {
            let flags = c.u8()?;
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
            Some(Parsed::Event(topic, seq, event))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_torn_ones_are_refused() {
        let topic = Topic::new("news").unwrap();
        let event = Event::new("a\nb")
            .with_type(EventType::new("note").unwrap())
            .with_retry(Millis(7));
        let record = encode_event(&topic, 42, &event);
        let (payload, len) = next_record(&record).unwrap();
        assert_eq!(len, record.len());
        let Some(Parsed::Event(t, seq, e)) = parse(payload) else {
            panic!("not an event")
        };
        assert_eq!((t, seq), (topic.clone(), 42));
        assert_eq!(e.id().map(EventId::as_str), Some("42"));
        assert_eq!(e.data(), "a\nb");
        assert_eq!(e.event_type().map(EventType::as_str), Some("note"));
        assert_eq!(e.retry(), Some(Millis(7)));
        for cut in 0..record.len() {
            assert!(next_record(&record[..cut]).is_none(), "cut at {cut}");
        }
        let mut flipped = record.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(next_record(&flipped).is_none());
        let custom = encode_event(
            &topic,
            43,
            &Event::new("x").with_id(EventId::new("mine").unwrap()),
        );
        let Some(Parsed::Event(_, _, e)) = parse(next_record(&custom).unwrap().0) else {
            panic!("not an event")
        };
        assert_eq!(e.id().map(EventId::as_str), Some("mine"));
    }
}
