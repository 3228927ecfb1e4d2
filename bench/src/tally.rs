//! What the subscribers saw: counts per subscriber and in total, and the latency histogram.
//!
//! Each event's data is `<seq> <send time in µs since the generator's base instant>`, written
//! by the publisher in this same process, so latency needs no clock agreement. Two windows
//! are counted separately: events *received* in the measuring window (throughput, fairness)
//! and events *sent* in it (latency, losses: every subscriber should get each of them).

use std::collections::BTreeMap;
use std::time::Instant;

use hdrhistogram::Histogram;

use crate::subscriber::Failure;

/// Where a subscriber stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Connecting,
    Connected,
    Failed,
    Ended,
}

#[derive(Debug, Clone)]
struct Subscriber {
    status: Status,
    /// Connected when the measuring window opened: its losses count.
    measured: bool,
    /// Highest sequence number seen.
    last_seq: Option<u64>,
    /// Events received in all.
    received: u64,
    /// Events received while the window was open.
    received_in_window: u64,
    /// Events sent while the window was open, received whenever.
    sent_in_window: u64,
}

/// The window, in µs since the base instant: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) start: u64,
    pub(crate) end: u64,
}

impl Window {
    fn contains(self, micros: u64) -> bool {
        self.start <= micros && micros < self.end
    }
}

/// The totals at the end of a run.
#[derive(Debug, Clone)]
pub(crate) struct Totals {
    pub(crate) connected: usize,
    pub(crate) failed: usize,
    pub(crate) ended: usize,
    pub(crate) failures: BTreeMap<String, usize>,
    pub(crate) received: u64,
    pub(crate) received_in_window: u64,
    /// Reads that returned body bytes (events per read shows how the server batches).
    pub(crate) reads: u64,
    /// Subscribers connected when the window opened.
    pub(crate) measured: usize,
    /// Sum over measured subscribers of events sent in the window they received.
    pub(crate) sent_in_window_received: u64,
    /// Fewest and most events a measured subscriber received in the window.
    pub(crate) min_in_window: u64,
    pub(crate) max_in_window: u64,
    pub(crate) gaps: u64,
    pub(crate) unparsed: u64,
    pub(crate) decode_errors: u64,
}

/// The shared record (one thread: the executor's).
#[derive(Debug)]
pub(crate) struct Tally {
    base: Instant,
    window: Option<Window>,
    subscribers: Vec<Subscriber>,
    settled: usize,
    last_connected: Option<Instant>,
    failures: BTreeMap<String, usize>,
    received: u64,
    received_in_window: u64,
    reads: u64,
    gaps: u64,
    unparsed: u64,
    decode_errors: u64,
    /// Publish-to-receive latency in µs of events sent in the window.
    pub(crate) latency: Histogram<u64>,
}

impl Tally {
    /// A tally for `n` subscribers, timing from `base`.
    pub(crate) fn new(n: usize, base: Instant) -> Tally {
        let subscriber = Subscriber {
            status: Status::Connecting,
            measured: false,
            last_seq: None,
            received: 0,
            received_in_window: 0,
            sent_in_window: 0,
        };
        Tally {
            base,
            window: None,
            subscribers: vec![subscriber; n],
            settled: 0,
            last_connected: None,
            failures: BTreeMap::new(),
            received: 0,
            received_in_window: 0,
            reads: 0,
            gaps: 0,
            unparsed: 0,
            decode_errors: 0,
            // 1 µs to 10 min at 3 significant digits; the bounds are constants that are valid.
            latency: Histogram::new_with_bounds(1, 600_000_000, 3)
                .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid")),
        }
    }

    /// Now, in µs since the base instant (the clock the publisher stamps events with).
    pub(crate) fn now_micros(&self) -> u64 {
        micros_since(self.base, Instant::now())
    }

    /// Sets the measuring window.
    pub(crate) fn set_window(&mut self, window: Window) {
        self.window = Some(window);
    }

    /// The window opens: subscribers connected now are the ones measured.
    pub(crate) fn open_window(&mut self) {
        for sub in &mut self.subscribers {
            sub.measured = sub.status == Status::Connected;
        }
    }

    pub(crate) fn connected(&mut self, index: usize, at: Instant) {
        self.subscribers[index].status = Status::Connected;
        self.settled += 1;
        self.last_connected = Some(at);
    }

    pub(crate) fn failed(&mut self, index: usize, failure: &Failure) {
        self.subscribers[index].status = Status::Failed;
        self.settled += 1;
        *self.failures.entry(failure.label()).or_default() += 1;
    }

    pub(crate) fn ended(&mut self, index: usize, failure: &Failure) {
        self.subscribers[index].status = Status::Ended;
        *self.failures.entry(failure.label()).or_default() += 1;
    }

    /// A read that returned body bytes.
    pub(crate) fn read(&mut self) {
        self.reads += 1;
    }

    pub(crate) fn decode_error(&mut self) {
        self.decode_errors += 1;
    }

    /// Subscribers connected or failed so far.
    pub(crate) fn settled(&self) -> usize {
        self.settled
    }

    /// The first reason (in label order) a subscriber failed or ended, or "".
    pub(crate) fn first_failure(&self) -> String {
        self.failures.keys().next().cloned().unwrap_or_default()
    }

    /// When the last subscriber connected.
    pub(crate) fn last_connected(&self) -> Option<Instant> {
        self.last_connected
    }

    /// Every measured subscriber still connected has seen `seq`.
    pub(crate) fn all_reached(&self, seq: u64) -> bool {
        self.subscribers
            .iter()
            .filter(|s| s.measured && s.status == Status::Connected)
            .all(|s| s.last_seq.is_some_and(|last| last >= seq))
    }

    /// Every measured subscriber still connected has received at least `n` events in all.
    pub(crate) fn all_received(&self, n: u64) -> bool {
        self.subscribers
            .iter()
            .filter(|s| s.measured && s.status == Status::Connected)
            .all(|s| s.received >= n)
    }

    /// The delivery check of a publish run: every measured subscriber should have received
    /// exactly the `acked` events the server acknowledged, no fewer (a loss) and no more (an
    /// event published without an acknowledgement, or twice).
    pub(crate) fn deliveries(&self, acked: u64) -> Deliveries {
        let mut d = Deliveries {
            subscribers: 0,
            expected: 0,
            received: 0,
            shortfall: 0,
            extra: 0,
            min: if self.subscribers.iter().any(|s| s.measured) {
                u64::MAX
            } else {
                0
            },
            max: 0,
        };
        for sub in self.subscribers.iter().filter(|s| s.measured) {
            d.subscribers += 1;
            d.expected += acked;
            d.received += sub.received;
            d.shortfall += acked.saturating_sub(sub.received);
            d.extra += sub.received.saturating_sub(acked);
            d.min = d.min.min(sub.received);
            d.max = d.max.max(sub.received);
        }
        d
    }

    /// Records one event with data `data` received at `now` (µs since base).
    pub(crate) fn event(&mut self, index: usize, data: &str, now: u64) {
        self.received += 1;
        let window = self.window;
        let sub = &mut self.subscribers[index];
        sub.received += 1;
        if window.is_some_and(|w| w.contains(now)) {
            self.received_in_window += 1;
            sub.received_in_window += 1;
        }
        let Some((seq, sent)) = parse_data(data) else {
            self.unparsed += 1;
            return;
        };
        match sub.last_seq {
            Some(last) if seq > last => {
                self.gaps += seq - last - 1;
                sub.last_seq = Some(seq);
            }
            Some(_) => {}
            None => sub.last_seq = Some(seq),
        }
        if window.is_some_and(|w| w.contains(sent)) {
            sub.sent_in_window += 1;
            self.latency
                .saturating_record(now.saturating_sub(sent).max(1));
        }
    }

    /// The totals so far.
    pub(crate) fn totals(&self) -> Totals {
        let count = |status| {
            self.subscribers
                .iter()
                .filter(|s| s.status == status)
                .count()
        };
        let measured = self.subscribers.iter().filter(|s| s.measured);
        let (mut min, mut max) = (u64::MAX, 0);
        for sub in measured.clone() {
            min = min.min(sub.received_in_window);
            max = max.max(sub.received_in_window);
        }
        Totals {
            connected: count(Status::Connected) + count(Status::Ended),
            failed: count(Status::Failed),
            ended: count(Status::Ended),
            failures: self.failures.clone(),
            received: self.received,
            received_in_window: self.received_in_window,
            reads: self.reads,
            measured: measured.clone().count(),
            sent_in_window_received: measured.map(|s| s.sent_in_window).sum(),
            min_in_window: if max == 0 { 0 } else { min },
            max_in_window: max,
            gaps: self.gaps,
            unparsed: self.unparsed,
            decode_errors: self.decode_errors,
        }
    }
}

/// Acknowledged publishes against what the subscribers received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deliveries {
    /// Subscribers measured: connected when publishing started.
    pub(crate) subscribers: usize,
    /// Acknowledged events times measured subscribers.
    pub(crate) expected: u64,
    /// Events the measured subscribers received.
    pub(crate) received: u64,
    /// Events a subscriber did not get, summed over subscribers.
    pub(crate) shortfall: u64,
    /// Events a subscriber got beyond the acknowledged ones, summed over subscribers.
    pub(crate) extra: u64,
    /// Fewest and most events one measured subscriber received.
    pub(crate) min: u64,
    pub(crate) max: u64,
}

/// µs from `base` to `at`.
pub(crate) fn micros_since(base: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(base).as_micros()).unwrap_or(u64::MAX)
}

/// `<seq> <sent µs>[ padding]`.
fn parse_data(data: &str) -> Option<(u64, u64)> {
    let mut parts = data.splitn(3, ' ');
    let seq = parts.next()?.parse().ok()?;
    let sent = parts.next()?.parse().ok()?;
    Some((seq, sent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data() {
        assert_eq!(parse_data("7 1234"), Some((7, 1234)));
        assert_eq!(parse_data("7 1234 xxxx"), Some((7, 1234)));
        assert_eq!(parse_data("tick 7"), None);
        assert_eq!(parse_data("7"), None);
    }

    #[test]
    fn counts() {
        let mut tally = Tally::new(2, Instant::now());
        tally.set_window(Window {
            start: 100,
            end: 200,
        });
        tally.connected(0, Instant::now());
        tally.connected(1, Instant::now());
        tally.open_window();
        tally.event(0, "0 50", 120); // sent before, received in the window
        tally.event(0, "1 150", 160);
        tally.event(0, "3 190", 250); // a gap; sent in, received after the window
        tally.event(1, "1 150", 170);
        tally.event(1, "junk", 180);
        let t = tally.totals();
        assert_eq!((t.received, t.received_in_window), (5, 4));
        assert_eq!((t.gaps, t.unparsed), (1, 1));
        assert_eq!(t.sent_in_window_received, 3);
        assert_eq!((t.min_in_window, t.max_in_window), (2, 2));
        assert_eq!(tally.latency.len(), 3);
        assert_eq!(tally.latency.max(), 60);
        assert!(tally.all_reached(1));
        assert!(!tally.all_reached(3));
        assert!(tally.all_received(2));
        assert!(!tally.all_received(3));
    }

    #[test]
    fn deliveries() {
        let mut tally = Tally::new(3, Instant::now());
        assert_eq!(tally.deliveries(5).subscribers, 0);
        assert_eq!((tally.deliveries(5).min, tally.deliveries(5).max), (0, 0));
        tally.connected(0, Instant::now());
        tally.connected(1, Instant::now());
        tally.open_window(); // subscriber 2 never connected: not measured
        for seq in 0..3 {
            tally.event(0, &format!("{seq} 0"), 1);
            tally.event(1, &format!("{seq} 0"), 1);
        }
        tally.event(1, "3 0", 1);
        let check = |acked, expected: (u64, u64, u64, u64, u64, u64)| {
            let d = tally.deliveries(acked);
            assert_eq!(d.subscribers, 2);
            let got = (d.expected, d.received, d.shortfall, d.extra, d.min, d.max);
            assert_eq!(got, expected, "acked {acked}");
        };
        check(3, (6, 7, 0, 1, 3, 4));
        check(4, (8, 7, 1, 0, 3, 4));
        check(0, (0, 7, 0, 7, 3, 4));
        assert!(tally.all_received(3));
        assert!(!tally.all_received(4));
    }
}
