//! The tasks that pump the hub: the keep-alive timer, the batched waking of ready streams,
//! the ticker, and in cluster mode the Redis reader.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_io::Timer;
use futures_lite::{future, StreamExt as _};
use ssecast::{Event, Topic, Update};

use super::App;
use crate::log::Log;

/// Streams [`App::run_waker`] wakes before it lets other tasks run.
const WAKE_BATCH: usize = 32;

/// A task for the executor.
pub(crate) type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

impl App {
    /// The tasks to spawn before the first connection is accepted.
    pub(crate) fn tasks(self: Arc<Self>) -> Vec<Task> {
        let mut tasks: Vec<Task> = vec![
            Box::pin(Arc::clone(&self).run_timer()),
            Box::pin(Arc::clone(&self).run_waker()),
        ];
        if !self.args.tick.is_zero() {
            let tick = self.args.tick;
            tasks.push(Box::pin(Arc::clone(&self).run_ticker(tick)));
        }
        if let Log::Redis(cluster) = &self.log {
            let cluster = Arc::clone(cluster);
            let app = Arc::clone(&self);
            tasks.push(Box::pin(async move { cluster.run_reader(&*app).await }));
        }
        tasks
    }

    /// Runs keep-alives and token expiries: sleeps until the next deadline (or a nudge), lets
    /// time pass.
    async fn run_timer(self: Arc<App>) {
        while !self.is_shutting_down() {
            let deadline = {
                let mut state = self.lock();
                let deadline = state.next_deadline();
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
            state.end_expired(now);
            self.finish(state);
        }
    }

    /// Wakes the streams that have new frames, [`WAKE_BATCH`] at a time, yielding between
    /// batches. Waking all of a publish's subscribers at once would queue them all ahead of
    /// the next request (the executor is FIFO), so a publisher would wait for the whole
    /// fan-out; in batches, requests get in between, and a stream that waits longer finds
    /// more frames queued and writes them in one go.
    async fn run_waker(self: Arc<App>) {
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
    async fn run_ticker(self: Arc<App>, period: Duration) {
        let topic = Topic::default();
        let mut ticks = Timer::interval(period);
        let mut n: u64 = 0;
        while !self.is_shutting_down() {
            ticks.next().await;
            n += 1;
            let event = Event::new(format!("tick {n}"));
            match &self.log {
                Log::Redis(cluster) => {
                    if let Err(e) = cluster.publish(&topic, &event).await {
                        log::warn!("tick {n} not published: {e}");
                    }
                }
                _ => {
                    self.publish_now(Update::new(topic.clone(), event));
                }
            }
        }
    }
}
