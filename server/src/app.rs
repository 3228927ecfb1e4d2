//! The shared hub and everything that pumps it: per-subscriber wake slots, the keep-alive
//! timer task, the ticker task, and the server's own counters.
//!
//! Rule (from the core's contract): after every input to the hub, drain its outputs
//! ([`State::pump`]), under the same lock, so no wake-up is ever lost.

use std::collections::VecDeque;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{future, StreamExt as _};
use ssecast::{
    CloseReason, Event, EventId, Hub, Millis, SubscribeError, Subscribed, SubscriberId, Topic,
};

use crate::cluster::Cluster;
use crate::config::ServeArgs;
use crate::store::Store;

/// Streams [`App::run_waker`] wakes before it lets other tasks run.
const WAKE_BATCH: usize = 32;

/// Why a stream ended, for the `disconnected` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndCause {
    /// The client closed the connection or a write to it failed.
    ClientGone,
    /// Its queue overflowed under `--overflow disconnect`.
    Overflow,
    /// Its writes made no progress for `--write-timeout` (the client stopped reading).
    Stalled,
    /// The server is shutting down.
    Shutdown,
}

impl EndCause {
    pub(crate) const ALL: [EndCause; 4] = [
        EndCause::ClientGone,
        EndCause::Overflow,
        EndCause::Stalled,
        EndCause::Shutdown,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            EndCause::ClientGone => "client_gone",
            EndCause::Overflow => "overflow",
            EndCause::Stalled => "stalled",
            EndCause::Shutdown => "shutdown",
        }
    }
}

/// The server's own counters (the hub counts the rest).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) refused_full: AtomicU64,
    pub(crate) bad_requests: AtomicU64,
    pub(crate) ended: [AtomicU64; 4],
    /// Event streams whose body still exists (the shutdown waits for them).
    pub(crate) open_streams: AtomicUsize,
}

impl Counters {
    pub(crate) fn count_end(&self, cause: EndCause) {
        let i = EndCause::ALL.iter().position(|c| *c == cause).unwrap_or(0);
        self.ended[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// I/O state of one subscriber, indexed by `SubscriberId::index()`.
#[derive(Debug, Default)]
struct Slot {
    id: Option<SubscriberId>,
    waker: Option<Waker>,
    ended: Option<EndCause>,
    socket: Option<Arc<Async<TcpStream>>>,
}

/// Everything behind the one lock.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) hub: Hub,
    slots: Vec<Slot>,
    /// The deadline the timer task sleeps until, so an earlier one can wake it.
    timer_deadline: Option<Millis>,
    timer_nudge: bool,
    /// Bodies to wake once the lock is released (so they do not wake into a held lock).
    to_wake: Vec<Waker>,
    /// Streams with new frames, woken a batch at a time by [`App::run_waker`].
    ready: VecDeque<Waker>,
}

impl State {
    /// Drains the hub's outputs: wakes bodies with frames, ends subscribers the hub closed.
    fn pump(&mut self) {
        while let Some(id) = self.hub.poll_ready() {
            if let Some(waker) = self.slot_mut(id).and_then(|slot| slot.waker.take()) {
                self.ready.push_back(waker);
            }
        }
        let mut to_wake = Vec::new();
        while let Some((id, reason)) = self.hub.poll_close() {
            // `CloseReason` is non-exhaustive; overflow is its only reason so far.
            let cause = match reason {
                CloseReason::Overflow => EndCause::Overflow,
                _ => EndCause::Overflow,
            };
            if let Some(slot) = self.slot_mut(id) {
                slot.ended.get_or_insert(cause);
                // The subscriber stopped reading, so its response is likely stuck in a write:
                // shutting the socket down makes that write fail and the connection end.
                if let Some(socket) = &slot.socket {
                    let _ = socket.get_ref().shutdown(Shutdown::Both);
                }
                if let Some(waker) = slot.waker.take() {
                    to_wake.push(waker);
                }
            }
        }
        self.to_wake.append(&mut to_wake);
        if let Some(next) = self.hub.poll_timeout() {
            if self.timer_deadline.is_none_or(|current| next < current) {
                self.timer_nudge = true;
            }
        }
    }

    fn slot_mut(&mut self, id: SubscriberId) -> Option<&mut Slot> {
        self.slots
            .get_mut(id.index())
            .filter(|slot| slot.id == Some(id))
    }

    /// Whether `id` has ended (a stale id has).
    pub(crate) fn ended(&mut self, id: SubscriberId) -> bool {
        self.slot_mut(id).is_none_or(|slot| slot.ended.is_some())
    }

    /// Registers the waker of `id`'s body, to be woken when frames are queued or it ends.
    pub(crate) fn set_waker(&mut self, id: SubscriberId, waker: &Waker) {
        if let Some(slot) = self.slot_mut(id) {
            match &mut slot.waker {
                Some(w) if w.will_wake(waker) => {}
                w => *w = Some(waker.clone()),
            }
        }
    }

    /// Ends `id` for `cause` (unless it already ended) and wakes its body, which then
    /// returns end-of-stream. The body unsubscribes when it drops: it owns the subscription,
    /// so the slot (and its cause) cannot be reused by a newer subscriber before that.
    fn end(&mut self, id: SubscriberId, cause: EndCause) {
        if let Some(slot) = self.slot_mut(id) {
            slot.ended.get_or_insert(cause);
            if let Some(waker) = slot.waker.take() {
                self.to_wake.push(waker);
            }
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
    /// The Redis link in cluster mode (`--redis`).
    pub(crate) cluster: Option<Arc<Cluster>>,
    /// The on-disk history (`--data-dir`).
    store: Option<Arc<Store>>,
}

impl App {
    pub(crate) fn new(args: ServeArgs) -> std::io::Result<App> {
        let cluster = match &args.redis {
            Some(url) => Some(Arc::new(
                Cluster::new(url, args.history).map_err(std::io::Error::other)?,
            )),
            None => None,
        };
        let (hub, store) = match &args.data_dir {
            Some(dir) => {
                let (hub, store) = crate::store::restore(dir, &args)?;
                (hub, Some(store))
            }
            None => (Hub::new(args.hub_config()), None),
        };
        let (timer_wake, timer_rx) = async_channel::bounded(1);
        let (ready_wake, ready_rx) = async_channel::bounded(1);
        Ok(App {
            args,
            state: Mutex::new(State {
                hub,
                slots: Vec::new(),
                timer_deadline: None,
                timer_nudge: false,
                to_wake: Vec::new(),
                ready: VecDeque::new(),
            }),
            start: Instant::now(),
            timer_wake,
            timer_rx,
            ready_wake,
            ready_rx,
            counters: Counters::default(),
            shutting_down: AtomicBool::new(false),
            cluster,
            store,
        })
    }

    /// Milliseconds since the server started: the hub's clock.
    pub(crate) fn now(&self) -> Millis {
        Millis(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn instant(&self, at: Millis) -> Instant {
        self.start + Duration::from_millis(at.0)
    }

    /// Locks the state. A panic elsewhere while holding the lock must not take every other
    /// stream down with it, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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

    pub(crate) fn publish(&self, topic: &Topic, event: Event) -> EventId {
        self.publish_logged(topic, event).0
    }

    /// Publishes and, with `--data-dir`, appends the event to the on-disk log under the hub
    /// lock (so the log is in id order); returns the ticket to wait for.
    fn publish_logged(&self, topic: &Topic, event: Event) -> (EventId, Option<u64>) {
        let logged = self.store.as_ref().map(|store| (store, event.clone()));
        let now = self.now();
        let mut state = self.lock();
        let published = state
            .hub
            .publish_update(ssecast::Update::new(topic.clone(), event), now);
        let id = published.id;
        // A duplicate of a retained id published nothing: there is nothing new to log.
        let ticket = logged
            .filter(|_| published.outcome == ssecast::PublishOutcome::Published)
            .map(|(store, event)| store.append(topic, published.seq, &event));
        self.finish(state);
        (id, ticket)
    }

    /// Publishes and answers once the event is on disk (with `--data-dir`; at once without).
    pub(crate) async fn publish_durable(
        &self,
        topic: &Topic,
        event: Event,
    ) -> Result<EventId, String> {
        let (id, ticket) = self.publish_logged(topic, event);
        if let (Some(store), Some(ticket)) = (&self.store, ticket) {
            store.durable(ticket).await?;
        }
        Ok(id)
    }

    /// Publishes events ordered elsewhere (see [`Hub::publish_at`]), oldest first; those the
    /// hub already has are skipped.
    pub(crate) fn publish_at(&self, events: Vec<(u64, Topic, Event)>) {
        let now = self.now();
        let mut state = self.lock();
        for (seq, topic, event) in events {
            // A refusal is an entry delivered twice (seeding and reading overlap): skip it.
            let _ = state.hub.publish_at(&topic, event, seq, now);
        }
        self.finish(state);
    }

    pub(crate) fn subscribe(
        &self,
        topics: &[Topic],
        last_event_id: Option<&str>,
        socket: Option<Arc<Async<TcpStream>>>,
    ) -> Result<Subscribed, SubscribeError> {
        let now = self.now();
        let mut state = self.lock();
        let subscribed = state.hub.subscribe(topics, last_event_id, now)?;
        let index = subscribed.id.index();
        if state.slots.len() <= index {
            state.slots.resize_with(index + 1, Slot::default);
        }
        state.slots[index] = Slot {
            id: Some(subscribed.id),
            waker: None,
            ended: None,
            socket,
        };
        self.counters.open_streams.fetch_add(1, Ordering::Relaxed);
        self.finish(state);
        Ok(subscribed)
    }

    /// Ends a stream whose client left or stopped reading.
    pub(crate) fn end_stream(&self, id: SubscriberId, cause: EndCause) {
        let mut state = self.lock();
        if let Some(socket) = state.slot_mut(id).and_then(|slot| slot.socket.as_ref()) {
            // Makes a write still pending on the connection fail at once.
            let _ = socket.get_ref().shutdown(Shutdown::Both);
        }
        state.end(id, cause);
        self.finish(state);
    }

    /// Called when a stream's body is dropped: forgets the subscriber and counts why it ended.
    pub(crate) fn stream_dropped(&self, id: SubscriberId) {
        let mut state = self.lock();
        let cause = match state.slot_mut(id) {
            Some(slot) => {
                let cause = slot.ended.unwrap_or(EndCause::ClientGone);
                *slot = Slot::default();
                cause
            }
            // Only the hub removes a subscriber before its body drops (an overflow under
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

    /// Ends every stream (bodies return end-of-stream) and refuses new ones.
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

    /// Runs keep-alives: sleeps until the hub's next deadline (or a nudge), lets time pass.
    pub(crate) async fn run_timer(self: Arc<App>) {
        while !self.is_shutting_down() {
            let deadline = {
                let mut state = self.lock();
                let deadline = state.hub.poll_timeout();
                state.timer_deadline = deadline;
                deadline
            };
            let nudged = async {
                // An error means the channel closed at shutdown; the loop condition ends it.
                let _ = self.timer_rx.recv().await;
            };
            match deadline {
                Some(at) => {
                    let sleep = async {
                        Timer::at(self.instant(at)).await;
                    };
                    future::or(sleep, nudged).await;
                }
                None => nudged.await,
            }
            let now = self.now();
            let mut state = self.lock();
            state.hub.handle_timeout(now);
            self.finish(state);
        }
    }

    /// Wakes the streams that have new frames, [`WAKE_BATCH`] at a time, yielding between
    /// batches. Waking all of a publish's subscribers at once would queue them all ahead of
    /// the next request (the executor is FIFO), so a publisher would wait for the whole
    /// fan-out; in batches, requests get in between, and a stream that waits longer finds
    /// more frames queued and writes them in one go.
    pub(crate) async fn run_waker(self: Arc<App>) {
        let mut batch = Vec::with_capacity(WAKE_BATCH);
        loop {
            {
                let mut state = self.lock();
                let n = state.ready.len().min(WAKE_BATCH);
                batch.extend(state.ready.drain(..n));
            }
            if batch.is_empty() {
                if self.ready_rx.recv().await.is_err() {
                    return;
                }
                continue;
            }
            for waker in batch.drain(..) {
                waker.wake();
            }
            future::yield_now().await;
        }
    }

    /// Publishes `tick N` to the default topic every `period`, as the Go program does.
    pub(crate) async fn run_ticker(self: Arc<App>, period: Duration) {
        let topic = Topic::default();
        let mut ticks = Timer::interval(period);
        let mut n: u64 = 0;
        while !self.is_shutting_down() {
            ticks.next().await;
            n += 1;
            let event = Event::new(format!("tick {n}"));
            match &self.cluster {
                Some(cluster) => {
                    if let Err(e) = cluster.publish(&topic, &event).await {
                        log::warn!("tick {n} not published: {e}");
                    }
                }
                None => {
                    self.publish(&topic, event);
                }
            }
        }
    }

    /// A snapshot of the hub's counters.
    pub(crate) fn stats(&self) -> ssecast::Stats {
        self.lock().hub.stats()
    }
}
