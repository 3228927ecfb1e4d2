//! Cluster mode (`--redis redis://HOST:PORT`): several nodes share events through one Redis
//! Stream per topic, `ssecast:<topic>`.
//!
//! - A publish on any node is an `XADD ... MAXLEN ~ <len> *`; the stream id Redis assigns
//!   (`<ms>-<n>`) is the event's id on every node, and the reply to the publisher.
//! - Each node follows the topics it has subscribers for: when a topic gets its first local
//!   subscriber, the node seeds the hub's history from the stream's newest entries
//!   (`XREVRANGE`), then one reader task per node reads every followed stream after the last
//!   id it holds (`XREAD BLOCK`) and hands each entry to the hub with
//!   [`ssecast::Hub::publish_at`], its position derived from the stream id. So every node
//!   keeps the streams' order, a duplicate delivery is refused by the hub, and a
//!   `Last-Event-ID` from any node resumes from the same place on this one (the hub's own
//!   replay, over a history that mirrors the stream).
//! - Faults: a publish that Redis does not acknowledge answers 503 (nothing is acknowledged
//!   that is not in the stream); the reader reconnects with backoff and reads on from the
//!   last id each topic holds, so nothing published meanwhile is skipped; streams already
//!   open are untouched and keep their keep-alives. A subscription that needs a topic seeded
//!   while Redis is down answers 503 with a Retry-After.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_io::Timer;
use futures_lite::future;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use ssecast::{Event, EventId, Topic};

use super::HubAccess;
use entries::{
    as_string, list, pairs, parse_entry, publisher_key, stream_id, stream_key, CLOCK_KEY,
    KEY_PREFIX, PUBLISHER_ID_TTL, XADD_SCRIPT,
};

mod entries;

/// How long the reader's `XREAD` blocks before it looks at the followed topics again.
const BLOCK: Duration = Duration::from_secs(1);
/// Entries taken per `XREAD` and per stream; the reader loops for more.
const READ_COUNT: usize = 1_000;
/// Streams keep at least this many entries, whatever `--history` says, so that a reader
/// that falls briefly behind still finds what it has not read.
const MIN_STREAM_LEN: usize = 1_000;

/// Why Redis could not do what was asked.
#[derive(Debug)]
pub(crate) struct ClusterError(String);

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "redis unavailable: {}", self.0)
    }
}

impl std::error::Error for ClusterError {}

impl From<redis::RedisError> for ClusterError {
    fn from(e: redis::RedisError) -> ClusterError {
        ClusterError(e.to_string())
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct ClusterCounters {
    pub(crate) appended: AtomicU64,
    /// Publishes of an id Redis still held: acknowledged, nothing appended.
    pub(crate) duplicates: AtomicU64,
    pub(crate) publish_failed: AtomicU64,
    pub(crate) read: AtomicU64,
    pub(crate) bad_entries: AtomicU64,
    pub(crate) connects: AtomicU64,
}

/// A topic this node follows.
#[derive(Debug, Default)]
struct Follow {
    /// Subscriptions being set up for it: it is not dropped while one is.
    pending: u32,
    /// Its history was seeded from the stream, so the reader may read it.
    seeded: bool,
}

/// The Redis side of one node.
#[derive(Debug)]
pub(crate) struct Cluster {
    client: redis::Client,
    config: AsyncConnectionConfig,
    /// Publishes and seeding share one multiplexed connection; `None` after an error, so the
    /// next use reconnects.
    conn: Mutex<Option<MultiplexedConnection>>,
    follows: Mutex<HashMap<Topic, Follow>>,
    /// The reader connection's `CLIENT ID` (0: none), to unblock its `XREAD` when the
    /// followed topics change.
    reader_id: AtomicI64,
    wake_tx: async_channel::Sender<()>,
    wake_rx: async_channel::Receiver<()>,
    up: AtomicBool,
    /// Entries fetched when a topic is seeded (the hub's history size).
    seed_count: usize,
    stream_len: usize,
    pub(crate) counters: ClusterCounters,
}

impl Cluster {
    /// A cluster link to `url` (`redis://HOST:PORT[/DB]`); connects on first use.
    pub(crate) fn new(url: &str, history: usize) -> Result<Cluster, ClusterError> {
        let client = redis::Client::open(url)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            // Longer than the reader's BLOCK, so only a silent server times out.
            .set_response_timeout(Some(BLOCK + Duration::from_secs(4)));
        let (wake_tx, wake_rx) = async_channel::bounded(1);
        Ok(Cluster {
            client,
            config,
            conn: Mutex::new(None),
            follows: Mutex::new(HashMap::new()),
            reader_id: AtomicI64::new(0),
            wake_tx,
            wake_rx,
            up: AtomicBool::new(false),
            seed_count: history.max(1),
            stream_len: history.max(MIN_STREAM_LEN),
            counters: ClusterCounters::default(),
        })
    }

    /// Whether the reader's link to Redis is up.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Topics followed now.
    pub(crate) fn followed(&self) -> usize {
        self.follows().len()
    }

    fn follows(&self) -> MutexGuard<'_, HashMap<Topic, Follow>> {
        // A panic elsewhere must not stop the cluster link; the map stays consistent.
        self.follows.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn conn_slot(&self) -> MutexGuard<'_, Option<MultiplexedConnection>> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn conn(&self) -> Result<MultiplexedConnection, ClusterError> {
        if let Some(conn) = self.conn_slot().clone() {
            return Ok(conn);
        }
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        *self.conn_slot() = Some(conn.clone());
        Ok(conn)
    }

    /// Runs `cmd` on the shared connection, dropping the connection if it failed.
    async fn query(&self, cmd: &redis::Cmd) -> Result<Value, ClusterError> {
        let mut conn = self.conn().await?;
        match cmd.query_async::<Value>(&mut conn).await {
            Ok(value) => Ok(value),
            Err(e) => {
                // Whatever went wrong, the next command connects afresh: cheap, and it never
                // reuses a connection left mid-reply.
                *self.conn_slot() = None;
                Err(e.into())
            }
        }
    }

    /// Appends `event` to the topic's stream with the next id of the cluster's one sequence
    /// ([`XADD_SCRIPT`]); that stream id is the event's id, unless the publisher gave one:
    /// then that is its id on the wire, and a publish of an id whose event is still in its
    /// stream adds nothing (acknowledged again, delivered once).
    pub(crate) async fn publish(
        &self,
        topic: &Topic,
        event: &Event,
    ) -> Result<EventId, ClusterError> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(XADD_SCRIPT);
        match event.id() {
            Some(id) => cmd
                .arg(3)
                .arg(stream_key(topic))
                .arg(CLOCK_KEY)
                .arg(publisher_key(id)),
            None => cmd.arg(2).arg(stream_key(topic)).arg(CLOCK_KEY),
        };
        cmd.arg(self.stream_len)
            .arg(PUBLISHER_ID_TTL)
            .arg("data")
            .arg(event.data());
        if let Some(id) = event.id() {
            cmd.arg("id").arg(id.as_str());
        }
        if let Some(t) = event.event_type() {
            cmd.arg("event").arg(t.as_str());
        }
        if let Some(retry) = event.retry() {
            cmd.arg("retry").arg(retry.0);
        }
        let reply = self.query(&cmd).await.inspect_err(|_| {
            self.counters.publish_failed.fetch_add(1, Ordering::Relaxed);
        })?;
        let mut reply = list(reply).into_iter();
        let stream_id = reply.next().and_then(as_string);
        let duplicate = matches!(reply.next(), Some(Value::Int(1)));
        let Some(stream_id) = stream_id.and_then(|s| EventId::new(s).ok()) else {
            self.counters.publish_failed.fetch_add(1, Ordering::Relaxed);
            return Err(ClusterError("XADD gave no stream id".into()));
        };
        if duplicate {
            self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counters.appended.fetch_add(1, Ordering::Relaxed);
        }
        Ok(event.id().cloned().unwrap_or(stream_id))
    }

    /// Makes sure this node follows `topics` before a subscription to them starts (seeding
    /// the history of topics it did not follow), and, for a resume, brings their history up
    /// to date with the streams so the client's last id is found even if this node's reader
    /// is a little behind. The topics stay followed at least while the returned guard lives.
    pub(crate) async fn prepare(
        self: &Arc<Self>,
        hub: &dyn HubAccess,
        topics: &[Topic],
        resume: bool,
    ) -> Result<Preparing, ClusterError> {
        let topics: Vec<Topic> = if topics.is_empty() {
            vec![Topic::default()]
        } else {
            topics.to_vec()
        };
        let mut to_seed = Vec::new();
        let mut to_catch_up = Vec::new();
        {
            let mut follows = self.follows();
            for topic in &topics {
                let follow = follows.entry(topic.clone()).or_default();
                follow.pending += 1;
                if follow.seeded {
                    to_catch_up.push(topic.clone());
                } else {
                    to_seed.push(topic.clone());
                }
            }
        }
        let guard = Preparing {
            cluster: Arc::clone(self),
            topics,
        };
        for topic in &to_seed {
            self.seed(hub, topic).await?;
            if let Some(follow) = self.follows().get_mut(topic) {
                follow.seeded = true;
            }
        }
        if !to_seed.is_empty() {
            self.wake_reader().await;
        }
        if resume {
            for topic in &to_catch_up {
                // Best effort: the reader delivers the same entries soon anyway.
                if let Err(e) = self.catch_up(hub, topic).await {
                    log::debug!("catching up {topic} for a resume: {e}");
                }
            }
        }
        Ok(guard)
    }

    /// Fills the hub's history of `topic` with the stream's newest entries.
    async fn seed(&self, hub: &dyn HubAccess, topic: &Topic) -> Result<(), ClusterError> {
        let mut cmd = redis::cmd("XREVRANGE");
        cmd.arg(stream_key(topic))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(self.seed_count);
        let reply = self.query(&cmd).await?;
        let mut entries = self.entries(reply);
        entries.reverse();
        let full = entries.len() >= self.seed_count;
        let oldest = entries.first().map(|(seq, _)| *seq);
        let previous = last_seq(hub, topic);
        self.deliver(hub, topic, entries);
        if let Some(oldest) = oldest {
            if full && oldest > previous {
                // The fetch does not reach back to what the hub already had: the stream
                // may hold (or have let go of) entries before it, which the hub lacks, so a
                // resume from before them is a miss.
                hub.with_hub(&mut |h, _| h.mark_evicted(topic, oldest - 1));
            }
        }
        Ok(())
    }

    /// Delivers what the stream holds after the hub's newest event of `topic`.
    async fn catch_up(&self, hub: &dyn HubAccess, topic: &Topic) -> Result<(), ClusterError> {
        let after = last_seq(hub, topic);
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(stream_key(topic))
            .arg(format!("({}", stream_id(after)))
            .arg("+")
            .arg("COUNT")
            .arg(READ_COUNT);
        let reply = self.query(&cmd).await?;
        let entries = self.entries(reply);
        self.deliver(hub, topic, entries);
        Ok(())
    }

    /// Hands entries of `topic`, oldest first, to the hub; those it has already are refused
    /// there.
    fn deliver(&self, hub: &dyn HubAccess, topic: &Topic, entries: Vec<(u64, Event)>) {
        if !entries.is_empty() {
            let events = entries.into_iter().map(|(seq, e)| (seq, topic.clone(), e));
            publish_at(hub, events.collect());
        }
    }

    /// Lets the reader see a change of the followed topics now rather than after its BLOCK.
    async fn wake_reader(&self) {
        // Full means a wake-up is already pending.
        let _ = self.wake_tx.try_send(());
        let id = self.reader_id.load(Ordering::Relaxed);
        if id != 0 {
            let mut cmd = redis::cmd("CLIENT");
            cmd.arg("UNBLOCK").arg(id);
            if let Err(e) = self.query(&cmd).await {
                log::debug!("could not unblock the reader: {e}");
            }
        }
    }

    /// Entries of an `XRANGE`-shaped reply as (position, event); malformed ones are counted
    /// and logged, never delivered.
    fn entries(&self, reply: Value) -> Vec<(u64, Event)> {
        let mut out = Vec::new();
        for entry in list(reply) {
            match parse_entry(entry) {
                Ok(parsed) => out.push(parsed),
                Err(reason) => {
                    self.counters.bad_entries.fetch_add(1, Ordering::Relaxed);
                    log::warn!("skipping a stream entry: {reason}");
                }
            }
        }
        out
    }

    /// The reader task: reconnects with backoff for as long as the server runs.
    pub(crate) async fn run_reader(&self, hub: &dyn HubAccess) {
        let mut backoff = Duration::from_millis(100);
        while !hub.is_shutting_down() {
            match self.read(hub).await {
                Ok(()) => return,
                Err(e) => {
                    if self.up.swap(false, Ordering::Relaxed) {
                        log::warn!("redis link down: {e}");
                        backoff = Duration::from_millis(100);
                    } else {
                        log::debug!("redis still unreachable: {e}");
                    }
                    self.reader_id.store(0, Ordering::Relaxed);
                    // The shared connection most likely broke too: the next publish
                    // connects afresh instead of failing on it once Redis is back.
                    *self.conn_slot() = None;
                }
            }
            Timer::after(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// Reads the followed streams until an error, or until the server shuts down (`Ok`).
    async fn read(&self, hub: &dyn HubAccess) -> Result<(), ClusterError> {
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        let id: i64 = redis::cmd("CLIENT")
            .arg("ID")
            .query_async(&mut conn)
            .await?;
        self.reader_id.store(id, Ordering::Relaxed);
        self.counters.connects.fetch_add(1, Ordering::Relaxed);
        if !self.up.swap(true, Ordering::Relaxed) {
            log::info!("redis link up");
        }
        while !hub.is_shutting_down() {
            // Drained before the topics are read, so a change after this point leaves a
            // wake-up behind.
            let _ = self.wake_rx.try_recv();
            let cursors = self.cursors(hub);
            if cursors.is_empty() {
                let wake = async {
                    let _ = self.wake_rx.recv().await;
                };
                future::or(wake, async {
                    Timer::after(BLOCK).await;
                })
                .await;
                continue;
            }
            if !self.wake_rx.is_empty() {
                // The followed topics changed since they were read.
                continue;
            }
            // A change from here until Redis blocks this read unblocks nothing: it is seen
            // when the read ends, within BLOCK.
            let mut cmd = redis::cmd("XREAD");
            cmd.arg("COUNT")
                .arg(READ_COUNT)
                .arg("BLOCK")
                .arg(BLOCK.as_millis() as u64)
                .arg("STREAMS");
            for (topic, _) in &cursors {
                cmd.arg(stream_key(topic));
            }
            for (_, after) in &cursors {
                cmd.arg(stream_id(*after));
            }
            let reply: Value = cmd.query_async(&mut conn).await?;
            self.deliver_read(hub, reply);
        }
        Ok(())
    }

    /// The seeded topics to read, with the position each is at; drops topics that have no
    /// subscriber and none on the way.
    fn cursors(&self, hub: &dyn HubAccess) -> Vec<(Topic, u64)> {
        let mut follows = self.follows();
        let mut cursors = Vec::new();
        hub.with_hub(&mut |h, _| {
            follows.retain(|topic, f| f.pending > 0 || h.topic_subscribers(topic) > 0);
            cursors = follows
                .iter()
                .filter(|(_, f)| f.seeded)
                .map(|(topic, _)| (topic.clone(), h.topic_last_seq(topic).unwrap_or(0)))
                .collect();
        });
        cursors
    }

    /// Delivers an `XREAD` reply in id order across its streams.
    fn deliver_read(&self, hub: &dyn HubAccess, reply: Value) {
        let mut all: Vec<(u64, Topic, Event)> = Vec::new();
        for (key, entries) in pairs(reply) {
            let Some(topic) = as_string(key)
                .as_deref()
                .and_then(|k| k.strip_prefix(KEY_PREFIX))
                .and_then(|name| Topic::new(name).ok())
            else {
                self.counters.bad_entries.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let entries = self.entries(entries);
            self.counters
                .read
                .fetch_add(entries.len() as u64, Ordering::Relaxed);
            all.extend(entries.into_iter().map(|(seq, e)| (seq, topic.clone(), e)));
        }
        all.sort_by_key(|(seq, _, _)| *seq);
        if !all.is_empty() {
            publish_at(hub, all);
        }
    }
}

/// Keeps topics followed while a subscription to them is set up; drop it once the hub has
/// the subscriber.
#[derive(Debug)]
pub(crate) struct Preparing {
    cluster: Arc<Cluster>,
    topics: Vec<Topic>,
}

impl Drop for Preparing {
    fn drop(&mut self) {
        let mut follows = self.cluster.follows();
        for topic in &self.topics {
            if let Some(follow) = follows.get_mut(topic) {
                follow.pending = follow.pending.saturating_sub(1);
                if follow.pending == 0 && !follow.seeded {
                    // Seeding failed (Redis down): forget it now, so refused subscriptions
                    // to many topics cannot grow the map while the reader is away.
                    follows.remove(topic);
                }
            }
        }
    }
}

/// The hub's newest position in `topic` (0: none).
fn last_seq(hub: &dyn HubAccess, topic: &Topic) -> u64 {
    let mut last = 0;
    hub.with_hub(&mut |h, _| last = h.topic_last_seq(topic).unwrap_or(0));
    last
}

/// Publishes events ordered by Redis, oldest first; those the hub already has are skipped
/// (seeding and reading overlap, so an entry can come twice).
fn publish_at(hub: &dyn HubAccess, events: Vec<(u64, Topic, Event)>) {
    let mut events = Some(events);
    hub.with_hub(&mut |h, now| {
        for (seq, topic, event) in events.take().unwrap_or_default() {
            let _ = h.publish_at(&topic, event, seq, now);
        }
    });
}
