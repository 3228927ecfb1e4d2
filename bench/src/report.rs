//! The figures of a run, printed as a readable summary and as one JSON line.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::publisher::Published;
use crate::tally::Totals;

/// Everything measured, plus what the run was asked to do.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) label: Option<String>,
    pub(crate) url: String,
    pub(crate) subscribers: usize,
    pub(crate) rate: f64,
    pub(crate) window_secs: f64,
    /// From the first connect attempt to the last subscriber connected.
    pub(crate) connect_secs: f64,
    pub(crate) totals: Totals,
    pub(crate) published: Option<Published>,
    pub(crate) latency: Histogram<u64>,
    pub(crate) server: Option<ServerFigures>,
    /// Busy fraction of the server's core in the window, softirq included.
    pub(crate) server_core_busy: Option<f64>,
    /// Our own CPU in the window, in cores.
    pub(crate) client_cpu: f64,
}

/// The server process's own figures.
#[derive(Debug)]
pub(crate) struct ServerFigures {
    pub(crate) pid: u32,
    pub(crate) rss_before_kib: u64,
    pub(crate) rss_connected_kib: u64,
    pub(crate) rss_end_kib: u64,
    /// The process's CPU in the window, in cores.
    pub(crate) cpu: f64,
    /// `ksoftirqd` of the server's core in the window, in cores (0 without `--server-cpu`).
    pub(crate) ksoftirqd: f64,
}

impl Report {
    fn deliveries_per_sec(&self) -> f64 {
        self.totals.received_in_window as f64 / self.window_secs
    }

    /// Events sent in the window that measured subscribers never got.
    fn drops(&self) -> Option<u64> {
        let published = self.published.as_ref()?;
        let expected = published.in_window * self.totals.measured as u64;
        Some(expected.saturating_sub(self.totals.sent_in_window_received))
    }

    fn fairness(&self) -> Option<f64> {
        let t = &self.totals;
        (t.max_in_window > 0).then(|| t.min_in_window as f64 / t.max_in_window as f64)
    }

    /// CPU in µs per delivery for a CPU use in cores.
    fn per_delivery(&self, cores: f64) -> Option<f64> {
        let rate = self.deliveries_per_sec();
        (rate > 0.0).then(|| cores * 1e6 / rate)
    }

    fn rss_per_subscriber_kib(&self) -> Option<f64> {
        let server = self.server.as_ref()?;
        let connected = self.totals.connected;
        (connected > 0).then(|| {
            server
                .rss_connected_kib
                .saturating_sub(server.rss_before_kib) as f64
                / connected as f64
        })
    }

    /// Busy time of the server's core not spent by the server process, in cores: other
    /// processes (and softirq landing outside the server's context) disturbing the figures.
    fn core_other(&self) -> Option<f64> {
        Some(self.server_core_busy? - self.server.as_ref()?.cpu)
    }

    fn publish_rate(&self) -> Option<f64> {
        Some(self.published.as_ref()?.in_window as f64 / self.window_secs)
    }

    fn latency_ms(&self, quantile: f64) -> Option<f64> {
        (!self.latency.is_empty()).then(|| self.latency.value_at_quantile(quantile) as f64 / 1000.0)
    }

    /// The JSON line.
    pub(crate) fn json(&self) -> Value {
        let t = &self.totals;
        let latency = (!self.latency.is_empty()).then(|| {
            json!({
                "count": self.latency.len(),
                "p50_ms": self.latency_ms(0.5),
                "p90_ms": self.latency_ms(0.9),
                "p99_ms": self.latency_ms(0.99),
                "max_ms": self.latency.max() as f64 / 1000.0,
            })
        });
        let published = self.published.as_ref().map(|p| {
            json!({
                "ok": p.ok,
                "errors": p.errors,
                "first_error": p.first_error,
                "in_window": p.in_window,
                "rate": self.publish_rate(),
                "max_lag_ms": p.max_lag.as_secs_f64() * 1000.0,
                "round_trip_p99_ms": p.round_trip.value_at_quantile(0.99) as f64 / 1000.0,
            })
        });
        let server = self.server.as_ref().map(|s| {
            json!({
                "pid": s.pid,
                "rss_before_kib": s.rss_before_kib,
                "rss_connected_kib": s.rss_connected_kib,
                "rss_end_kib": s.rss_end_kib,
                "rss_per_subscriber_kib": self.rss_per_subscriber_kib(),
                "cpu_cores": s.cpu,
                "cpu_us_per_delivery": self.per_delivery(s.cpu),
                "ksoftirqd_cores": s.ksoftirqd,
                "cpu_with_ksoftirqd_us_per_delivery": self.per_delivery(s.cpu + s.ksoftirqd),
            })
        });
        json!({
            "label": self.label,
            "url": self.url,
            "subscribers": self.subscribers,
            "connected": t.connected,
            "failed": t.failed,
            "ended": t.ended,
            "failures": t.failures,
            "connect_secs": self.connect_secs,
            "rate": self.rate,
            "window_secs": self.window_secs,
            "published": published,
            "received": t.received,
            "reads": t.reads,
            "events_per_read": (t.reads > 0).then(|| t.received as f64 / t.reads as f64),
            "deliveries_per_sec": self.deliveries_per_sec(),
            "measured_subscribers": t.measured,
            "delivered_of_window": t.sent_in_window_received,
            "drops": self.drops(),
            "gaps": t.gaps,
            "unparsed": t.unparsed,
            "decode_errors": t.decode_errors,
            "latency": latency,
            "min_events": t.min_in_window,
            "max_events": t.max_in_window,
            "fairness": self.fairness(),
            "server": server,
            "server_core_busy": self.server_core_busy,
            "server_core_us_per_delivery": self.server_core_busy.and_then(|b| self.per_delivery(b)),
            "server_core_other": self.core_other(),
            "client_cpu_cores": self.client_cpu,
        })
    }

    /// The readable summary.
    pub(crate) fn summary(&self) -> String {
        let t = &self.totals;
        let mut s = String::new();
        let opt = |v: Option<f64>, digits: usize| match v {
            Some(v) => format!("{v:.digits$}"),
            None => String::from("-"),
        };
        let _ = writeln!(s, "target        {}", self.url);
        let _ = writeln!(
            s,
            "subscribers   {} connected, {} failed of {} in {:.2} s; {} ended during the run",
            t.connected, t.failed, self.subscribers, self.connect_secs, t.ended
        );
        for (failure, count) in &t.failures {
            let _ = writeln!(s, "  {count} x {failure}");
        }
        if let Some(p) = &self.published {
            let _ = writeln!(
                s,
                "published     {} ok, {} errors; {} in the window = {}/s (target {}/s); max lag {:.1} ms; POST p99 {:.2} ms",
                p.ok,
                p.errors,
                p.in_window,
                opt(self.publish_rate(), 1),
                self.rate,
                p.max_lag.as_secs_f64() * 1000.0,
                p.round_trip.value_at_quantile(0.99) as f64 / 1000.0
            );
            if let Some(e) = &p.first_error {
                let _ = writeln!(s, "  first error: {e}");
            }
        }
        let _ = writeln!(
            s,
            "delivered     {:.0}/s over {:.1} s ({:.1} events per read); drops {}; seq gaps {}; unparsed {}",
            self.deliveries_per_sec(),
            self.window_secs,
            t.received as f64 / t.reads.max(1) as f64,
            self.drops().map_or(String::from("-"), |d| d.to_string()),
            t.gaps,
            t.unparsed
        );
        let _ = writeln!(
            s,
            "latency       p50 {} ms, p90 {} ms, p99 {} ms, max {} ms ({} samples)",
            opt(self.latency_ms(0.5), 2),
            opt(self.latency_ms(0.9), 2),
            opt(self.latency_ms(0.99), 2),
            opt(self.latency_ms(1.0), 2),
            self.latency.len()
        );
        let _ = writeln!(
            s,
            "fairness      min {} / max {} events per subscriber = {}",
            t.min_in_window,
            t.max_in_window,
            opt(self.fairness(), 3)
        );
        if let Some(server) = &self.server {
            let _ = writeln!(
                s,
                "server        pid {}: RSS {} -> {} KiB connected ({} KiB per subscriber), {} KiB at the end; CPU {:.2} cores = {} us per delivery ({} with ksoftirqd)",
                server.pid,
                server.rss_before_kib,
                server.rss_connected_kib,
                opt(self.rss_per_subscriber_kib(), 2),
                server.rss_end_kib,
                server.cpu,
                opt(self.per_delivery(server.cpu), 2),
                opt(self.per_delivery(server.cpu + server.ksoftirqd), 2)
            );
        }
        if let Some(busy) = self.server_core_busy {
            let _ = writeln!(
                s,
                "server core   {:.1}% busy (softirq included) = {} us per delivery; {} cores of it not the server process",
                busy * 100.0,
                opt(self.per_delivery(busy), 2),
                opt(self.core_other(), 2)
            );
        }
        let _ = writeln!(
            s,
            "client        {:.2} cores{}",
            self.client_cpu,
            if self.client_cpu > 0.9 {
                " -- SATURATED: the load generator may be the bottleneck"
            } else {
                ""
            }
        );
        s
    }
}
