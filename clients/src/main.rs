//! `reqwest-eventsource-retry URL`: subscribes to `URL` with the `reqwest-eventsource` crate
//! and reports, on stdout, what it did with the stream's `retry:` hint:
//!
//! ```text
//! open                          the response arrived (the subscription exists)
//! message <id> <data>           each event
//! hint <ms>|none                once the stream ends: the reconnection time the library
//!                               took from the stream (`RetryPolicy::set_reconnection_time`)
//! reconnect-after <ms>          the delay it then scheduled before reconnecting
//! ```
//!
//! and exits 0 after the last line (it does not reconnect: the test that runs it has stopped
//! the server). The library keeps the hint in its retry policy, so the policy here wraps the
//! library's default one (`DEFAULT_RETRY`, which starts at 300 ms) and records both calls.

use std::io::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_lite::StreamExt as _;
use reqwest_eventsource::retry::{ExponentialBackoff, RetryPolicy, DEFAULT_RETRY};
use reqwest_eventsource::{Error, Event, EventSource};

/// What the library told its retry policy.
#[derive(Debug, Default)]
struct Seen {
    /// The reconnection time it took from the stream, if any.
    hint: Option<Duration>,
    /// The delays it asked for, in order.
    delays: Vec<Duration>,
}

/// The library's default policy, recording what goes through it.
struct Recording {
    inner: ExponentialBackoff,
    seen: Arc<Mutex<Seen>>,
}

impl RetryPolicy for Recording {
    fn retry(&self, error: &Error, last_retry: Option<(usize, Duration)>) -> Option<Duration> {
        let delay = self.inner.retry(error, last_retry);
        if let Some(delay) = delay {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            seen.delays.push(delay);
        }
        delay
    }

    fn set_reconnection_time(&mut self, duration: Duration) {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .hint = Some(duration);
        self.inner.set_reconnection_time(duration);
    }
}

fn main() -> Result<(), String> {
    let url = std::env::args()
        .nth(1)
        .ok_or("usage: reqwest-eventsource-retry URL")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    runtime.block_on(run(&url))
}

async fn run(url: &str) -> Result<(), String> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let request = reqwest::Client::new().get(url);
    let mut source = EventSource::new(request).map_err(|e| format!("{url}: {e}"))?;
    source.set_retry_policy(Box::new(Recording {
        inner: DEFAULT_RETRY,
        seen: Arc::clone(&seen),
    }));
    let mut out = std::io::stdout().lock();
    let mut say = |line: String| {
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    while let Some(next) = source.next().await {
        match next {
            Ok(Event::Open) => say("open".into()),
            Ok(Event::Message(m)) => say(format!("message {} {}", m.id, m.data)),
            Err(e) => {
                // The stream ended: the library has asked its policy for the delay before
                // reconnecting (see `EventSource::poll_next`).
                source.close();
                let seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
                let ms = |d: Duration| d.as_millis().to_string();
                say(format!("hint {}", seen.hint.map_or("none".into(), ms)));
                match seen.delays.first() {
                    Some(&delay) => say(format!("reconnect-after {}", ms(delay))),
                    None => return Err(format!("no reconnection scheduled after: {e}")),
                }
                return Ok(());
            }
        }
    }
    Err("the event source closed without an error".into())
}
