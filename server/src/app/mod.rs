//! The hub shell: the core [`Hub`] behind one lock with each subscriber's I/O state, where
//! its history lives ([`Log`]: memory, `--data-dir` or `--redis`), the server's counters, and
//! the tasks that pump it (keep-alive timer, batched wakes, ticker, the Redis reader).
//!
//! Rule (from the core's contract): after every input to the hub, drain its outputs under
//! the same lock ([`State::pump`]), and wake streams only after releasing it.

mod feed;
mod state;
mod tasks;

use std::fmt;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_io::Async;
use ssecast::{
    EventId, Hub, Millis, PublishOutcome, Rights, Selector, Subscribed, SubscriberId, Topic, Update,
};

use crate::auth::jwt::{JwtVerifier, Role};
use crate::config::{ServeArgs, Www};
use crate::log::{ClusterError, HubAccess, Log, Store, StoreError};
pub(crate) use feed::{EndCause, Feed, Polled};
use state::{Slot, State};

/// The server's own counters (the hub counts the rest).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) refused_full: AtomicU64,
    pub(crate) bad_requests: AtomicU64,
    /// Connections whose task panicked (each ended alone).
    pub(crate) panics: AtomicU64,
    pub(crate) ended: [AtomicU64; 5],
    /// Event streams whose feed still exists (the shutdown waits for them).
    open_streams: AtomicUsize,
}

impl Counters {
    fn count_end(&self, cause: EndCause) {
        let i = EndCause::ALL.iter().position(|c| *c == cause).unwrap_or(0);
        self.ended[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// Why a publish was not acknowledged: nothing was (durably) published.
#[derive(Debug)]
pub(crate) enum PublishError {
    /// The `--data-dir` log could not take it.
    Store(StoreError),
    /// Redis could not take it.
    Cluster(ClusterError),
    /// The update is of a kind this log cannot keep.
    Unsupported(&'static str),
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::Store(e) => e.fmt(f),
            PublishError::Cluster(e) => e.fmt(f),
            PublishError::Unsupported(reason) => f.write_str(reason),
        }
    }
}

/// The one topic of an update Redis can carry: cluster mode has no multi-topic or private
/// updates yet.
fn cluster_topic(update: &Update) -> Result<&Topic, PublishError> {
    match update.topics() {
        [topic] if !update.is_private() => Ok(topic),
        _ => Err(PublishError::Unsupported(
            "private and multi-topic updates are not supported with --redis yet",
        )),
    }
}

/// What a subscriber asks for and may see.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subscription<'a> {
    /// What it selects (none: keep-alives only).
    pub(crate) selectors: &'a [Selector],
    /// The private updates it may receive.
    pub(crate) rights: &'a Rights,
    /// Where it resumes.
    pub(crate) last_event_id: Option<&'a str>,
    /// When its stream ends (its token's `exp`, Unix seconds).
    pub(crate) expires_unix: Option<u64>,
}

/// Why a subscription was refused.
#[derive(Debug)]
pub(crate) enum SubscribeRefused {
    /// `--max-subscribers` are subscribed, or the server is shutting down.
    Unavailable(String),
    /// The topics could not be followed (Redis is unreachable).
    Cluster(ClusterError),
    /// A selector other than an exact topic, with `--redis`.
    NotInCluster,
}

impl fmt::Display for SubscribeRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscribeRefused::Unavailable(reason) => f.write_str(reason),
            SubscribeRefused::Cluster(e) => e.fmt(f),
            SubscribeRefused::NotInCluster => f.write_str(
                "only exact topics can be selected with --redis yet, not * or templates",
            ),
        }
    }
}

/// The shared server state.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) args: ServeArgs,
    state: Mutex<State>,
    start: Instant,
    timer_wake: async_channel::Sender<()>,
    timer_rx: async_channel::Receiver<()>,
    ready_wake: async_channel::Sender<()>,
    ready_rx: async_channel::Receiver<()>,
    pub(crate) counters: Counters,
    shutting_down: AtomicBool,
    /// Where the history lives.
    pub(crate) log: Log,
    /// Where static files come from, decided once at start.
    pub(crate) www: Www,
    /// The JWT keys and checks, when `--jwt-key` (or a role's key) is configured.
    pub(crate) jwt: Option<JwtVerifier>,
}

impl App {
    pub(crate) fn new(args: ServeArgs) -> std::io::Result<App> {
        let jwt = JwtVerifier::from_flags(&args.jwt)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        // One way in per role: a static token beside a key that checks the same role's JWTs.
        for (role, token_flag, set, who) in [
            (
                Role::Publisher,
                "--publish-token",
                args.publish_token.is_some(),
                "publishers",
            ),
            (
                Role::Subscriber,
                "--subscribe-token",
                args.subscribe_token.is_some(),
                "subscribers",
            ),
        ] {
            if let Some(key_flag) = jwt.as_ref().and_then(|v| v.key_flag(role)).filter(|_| set) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{token_flag} and {key_flag} are two ways to let {who} in: use one"),
                ));
            }
        }
        for warning in jwt.iter().flat_map(JwtVerifier::warnings) {
            log::warn!("{warning}");
        }
        let (hub, log) = Log::open(&args)?;
        let (timer_wake, timer_rx) = async_channel::bounded(1);
        let (ready_wake, ready_rx) = async_channel::bounded(1);
        let www = args.www_source();
        if let Www::Dir(dir) = &www {
            if !dir.is_dir() {
                log::warn!(
                    "{} is not a directory: static files will be 404",
                    dir.display()
                );
            }
        }
        Ok(App {
            www,
            args,
            state: Mutex::new(State::new(hub)),
            start: Instant::now(),
            timer_wake,
            timer_rx,
            ready_wake,
            ready_rx,
            counters: Counters::default(),
            shutting_down: AtomicBool::new(false),
            log,
            jwt,
        })
    }

    /// One line on how the server runs, for the start-up log.
    pub(crate) fn describe(&self) -> String {
        let every = |d: Duration| {
            if d.is_zero() {
                "off".to_owned()
            } else {
                format!("{d:?}")
            }
        };
        let a = &self.args;
        format!(
            "tick {}, keepalive {}, queue {}, overflow {:?}, history in {}, www {}",
            every(a.tick),
            every(a.keepalive),
            a.queue,
            a.overflow,
            self.log.describe(),
            self.www,
        )
    }

    /// Milliseconds since the server started: the hub's clock.
    pub(crate) fn now(&self) -> Millis {
        Millis(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn instant(&self, at: Millis) -> Instant {
        self.start + Duration::from_millis(at.0)
    }

    /// Locks the state. A panic while it was held (a bug in the hub or here) leaves the hub
    /// in a state nothing can vouch for: delivering from it could send a subscriber what it
    /// should not see, so the process stops (status 70) instead of going on; acknowledged
    /// events are in `--data-dir` or Redis, and clients resume on the restarted server.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(state) => state,
            Err(_) => {
                log::error!("a panic happened while the hub was locked: its state cannot be trusted; exiting");
                std::process::exit(70)
            }
        }
    }

    /// Pumps the outputs and nudges the timer task if the next deadline moved earlier.
    fn finish(&self, mut state: MutexGuard<'_, State>) {
        state.pump();
        let nudge = std::mem::take(&mut state.timer_nudge);
        let to_wake = std::mem::take(&mut state.to_wake);
        let ready = !state.ready.is_empty();
        drop(state);
        for waker in to_wake {
            waker.wake();
        }
        if ready {
            // Full means the waker task is already due: nothing lost.
            let _ = self.ready_wake.try_send(());
        }
        if nudge {
            // Full means a nudge is already pending: nothing lost.
            let _ = self.timer_wake.try_send(());
        }
    }

    /// Publishes `update` and answers once it is acknowledged: in the hub (in memory), on
    /// disk (`--data-dir`) or in Redis (`--redis`, whose reader then delivers it here).
    pub(crate) async fn publish(&self, update: Update) -> Result<EventId, PublishError> {
        match &self.log {
            Log::Redis(cluster) => {
                let topic = cluster_topic(&update)?;
                cluster
                    .publish(topic, update.event())
                    .await
                    .map_err(PublishError::Cluster)
            }
            Log::Memory => Ok(self.publish_now(update)),
            Log::Disk(store) => {
                let record = update.clone();
                // Under the hub lock, so the log is in id order.
                let (id, ticket) =
                    self.publish_now_logged(update, |hub, seq| append(store, hub, &record, seq));
                if let Some(ticket) = ticket {
                    store.durable(ticket).await.map_err(PublishError::Store)?;
                }
                Ok(id)
            }
        }
    }

    /// Publishes `updates` in order, as one: under one hub lock (no other publish comes
    /// between them) and, with `--data-dir`, in one append (one sync); answers once all are
    /// acknowledged. In Redis every event is its own append, one after the other: a failure
    /// stops the batch there (the events before it stay published).
    pub(crate) async fn publish_batch(
        &self,
        updates: Vec<Update>,
    ) -> Result<Vec<EventId>, PublishError> {
        let store = match &self.log {
            Log::Redis(cluster) => {
                let mut ids = Vec::with_capacity(updates.len());
                for update in &updates {
                    let id = cluster
                        .publish(cluster_topic(update)?, update.event())
                        .await
                        .map_err(PublishError::Cluster)?;
                    ids.push(id);
                }
                return Ok(ids);
            }
            Log::Memory => None,
            Log::Disk(store) => Some(store),
        };
        let (ids, ticket) = self.publish_batch_now(updates, store);
        if let (Some(store), Some(ticket)) = (store, ticket) {
            store.durable(ticket).await.map_err(PublishError::Store)?;
        }
        Ok(ids)
    }

    /// The hub's part of [`App::publish_batch`]: the ids, and the ticket to wait for if
    /// `store` logged any event.
    fn publish_batch_now(
        &self,
        updates: Vec<Update>,
        store: Option<&Arc<Store>>,
    ) -> (Vec<EventId>, Option<u64>) {
        let now = self.now();
        let mut ids = Vec::with_capacity(updates.len());
        // With `--data-dir`, each update is kept to be logged once the hub gave it its `seq`.
        let mut logged = Vec::new();
        let mut state = self.lock();
        for update in updates {
            let record = store.map(|_| update.clone());
            let published = state.hub.publish_update(update, now);
            if let Some(record) = record {
                if published.outcome == PublishOutcome::Published {
                    logged.push((record, published.seq));
                }
            }
            ids.push(published.id);
        }
        let ticket = match (store, logged.last()) {
            (Some(store), Some(&(_, last))) => {
                let records: Vec<_> = logged.iter().map(|(u, seq)| (u, *seq)).collect();
                let appended = store.append_all(&records);
                if appended.compact {
                    store.compact(state.hub.retained_seqs(), last);
                }
                Some(appended.ticket)
            }
            _ => None,
        };
        self.finish(state);
        (ids, ticket)
    }

    /// Publishes into the hub at once (a tick: logged, not waited for on disk).
    fn publish_now(&self, update: Update) -> EventId {
        match &self.log {
            Log::Disk(store) => {
                let record = update.clone();
                self.publish_now_logged(update, |hub, seq| append(store, hub, &record, seq))
                    .0
            }
            _ => self.publish_now_logged(update, |_, _| ()).0,
        }
    }

    /// Publishes, then calls `log` with the hub and the event's `seq` under the same lock,
    /// unless the event was a duplicate of a retained id (it published nothing new).
    fn publish_now_logged<T>(
        &self,
        update: Update,
        log: impl FnOnce(&Hub, u64) -> T,
    ) -> (EventId, Option<T>) {
        let now = self.now();
        let mut state = self.lock();
        let published = state.hub.publish_update(update, now);
        let logged = (published.outcome == PublishOutcome::Published)
            .then(|| log(&state.hub, published.seq));
        self.finish(state);
        (published.id, logged)
    }

    /// Subscribes as `subscription` says; the returned feed is the subscriber's stream
    /// (dropping it unsubscribes), which ends when its token expires.
    pub(crate) async fn subscribe(
        self: &Arc<Self>,
        subscription: Subscription<'_>,
        socket: Option<Arc<Async<TcpStream>>>,
    ) -> Result<(Subscribed, Feed), SubscribeRefused> {
        let Subscription {
            selectors,
            rights,
            last_event_id,
            expires_unix,
        } = subscription;
        if self.is_shutting_down() {
            return Err(SubscribeRefused::Unavailable("shutting down".into()));
        }
        // Cluster mode: the node follows these topics (their history seeded from Redis)
        // before the hub replays to this subscriber; the guard keeps them followed until the
        // hub has it.
        let _preparing = match &self.log {
            Log::Redis(cluster) => {
                let topics = selectors
                    .iter()
                    .map(|s| {
                        s.exact_topic()
                            .cloned()
                            .ok_or(SubscribeRefused::NotInCluster)
                    })
                    .collect::<Result<Vec<Topic>, _>>()?;
                Some(
                    cluster
                        .prepare(&**self, &topics, last_event_id.is_some())
                        .await
                        .map_err(SubscribeRefused::Cluster)?,
                )
            }
            _ => None,
        };
        let now = self.now();
        let expires = expires_unix.map(|exp| self.at_unix(exp));
        let mut state = self.lock();
        let subscribed = match state
            .hub
            .subscribe_with(selectors, rights, last_event_id, now)
        {
            Ok(subscribed) => subscribed,
            // `SubscribeError` is non-exhaustive; the limit is its only reason so far.
            Err(e) => {
                drop(state);
                self.counters.refused_full.fetch_add(1, Ordering::Relaxed);
                return Err(SubscribeRefused::Unavailable(e.to_string()));
            }
        };
        let index = subscribed.id.index();
        if state.slots.len() <= index {
            state.slots.resize_with(index + 1, Slot::default);
        }
        state.slots[index] = Slot {
            id: Some(subscribed.id),
            waker: None,
            ended: None,
            socket,
            expires: None,
        };
        if let Some(at) = expires {
            state.expire_at(subscribed.id, at);
        }
        self.counters.open_streams.fetch_add(1, Ordering::Relaxed);
        self.finish(state);
        let feed = Feed::new(Arc::clone(self), subscribed.id);
        Ok((subscribed, feed))
    }

    /// The hub time of `unix` (seconds since the epoch), by the system clock now.
    fn at_unix(&self, unix: u64) -> Millis {
        let now_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let left = Duration::from_secs(unix).saturating_sub(now_unix);
        self.now()
            .saturating_add(Millis(u64::try_from(left.as_millis()).unwrap_or(u64::MAX)))
    }

    /// Ends a stream whose client left or stopped reading.
    fn end_stream(&self, id: SubscriberId, cause: EndCause) {
        let mut state = self.lock();
        if let Some(socket) = state.slot_mut(id).and_then(|slot| slot.socket.as_ref()) {
            // Makes a write still pending on the connection fail at once.
            let _ = socket.get_ref().shutdown(Shutdown::Both);
        }
        state.end(id, cause);
        self.finish(state);
    }

    /// Called when a stream's feed is dropped: forgets the subscriber and counts why it ended.
    fn stream_dropped(&self, id: SubscriberId) {
        let mut state = self.lock();
        let cause = match state.slot_mut(id) {
            Some(slot) => {
                let cause = slot.ended.unwrap_or(EndCause::ClientGone);
                let expires = slot.expires;
                *slot = Slot::default();
                if let Some(at) = expires {
                    state.forget_expiry(id, at);
                }
                cause
            }
            // Only the hub removes a subscriber before its feed drops (an overflow under
            // `disconnect`), and only then can a newer subscriber reuse the slot.
            None => EndCause::Overflow,
        };
        state.hub.unsubscribe(id);
        self.finish(state);
        self.counters.count_end(cause);
        self.counters.open_streams.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// Event streams still open.
    pub(crate) fn open_streams(&self) -> usize {
        self.counters.open_streams.load(Ordering::Relaxed)
    }

    pub(crate) fn count_bad_request(&self) {
        self.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// `--write-timeout`, `None` when disabled.
    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        Some(self.args.write_timeout).filter(|t| !t.is_zero())
    }

    /// Ends every stream (their bodies end) and refuses new ones.
    pub(crate) fn shutdown_streams(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
        let mut state = self.lock();
        let ids: Vec<SubscriberId> = state
            .slots
            .iter()
            .filter(|s| s.ended.is_none())
            .filter_map(|s| s.id)
            .collect();
        for id in ids {
            state.end(id, EndCause::Shutdown);
        }
        self.finish(state);
        self.timer_wake.close();
        self.ready_wake.close();
    }

    /// A snapshot of the hub's counters.
    pub(crate) fn stats(&self) -> ssecast::Stats {
        self.lock().hub.stats()
    }
}

/// Appends event `seq` to the on-disk log (under the hub lock); when the log has grown
/// enough, hands the store what the hub retains, to compact to. Returns the ticket to wait
/// for.
fn append(store: &Store, hub: &Hub, update: &Update, seq: u64) -> u64 {
    let appended = store.append(update, seq);
    if appended.compact {
        store.compact(hub.retained_seqs(), seq);
    }
    appended.ticket
}

impl HubAccess for App {
    fn with_hub(&self, f: &mut dyn FnMut(&mut Hub, Millis)) {
        let now = self.now();
        let mut state = self.lock();
        f(&mut state.hub, now);
        self.finish(state);
    }

    fn is_shutting_down(&self) -> bool {
        App::is_shutting_down(self)
    }
}
