//! The figures of a publish run, printed as a readable summary and as one JSON line (the
//! fan-out's style: `report.rs`).

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::publish::TargetKind;
use crate::publishers::{BodyKind, Outcome};
use crate::tally::{Deliveries, Totals};

/// Everything measured, plus what the run was asked to do.
#[derive(Debug)]
pub(crate) struct PublishReport {
    pub(crate) label: Option<String>,
    pub(crate) url: String,
    pub(crate) subscribe_url: String,
    pub(crate) target_kind: TargetKind,
    pub(crate) body: BodyKind,
    pub(crate) batch: usize,
    pub(crate) connections: usize,
    pub(crate) pipeline: usize,
    pub(crate) window_secs: f64,
    pub(crate) subscribers: usize,
    pub(crate) connect_secs: f64,
    pub(crate) totals: Totals,
    pub(crate) deliveries: Deliveries,
    /// Publish-to-receive latency of events sent in the window, all subscribers.
    pub(crate) delivery_latency: Histogram<u64>,
    pub(crate) outcome: Outcome,
    pub(crate) server: Option<Server>,
    /// Busy fraction of the server's core in the window, softirq included.
    pub(crate) server_core_busy: Option<f64>,
    /// Our own CPU in the window, in cores.
    pub(crate) client_cpu: f64,
}

/// The server process's CPU in the window, in cores.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) pid: u32,
    pub(crate) cpu: f64,
    /// `ksoftirqd` of the server's core (0 without `--server-cpu`).
    pub(crate) ksoftirqd: f64,
}

/// `None` for an empty histogram, else its quantile in ms.
fn ms(h: &Histogram<u64>, quantile: f64) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(quantile) as f64 / 1000.0)
}

fn latency_json(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return Value::Null;
    }
    json!({
        "count": h.len(),
        "p50_ms": ms(h, 0.5),
        "p90_ms": ms(h, 0.9),
        "p99_ms": ms(h, 0.99),
        "max_ms": h.max() as f64 / 1000.0,
    })
}

impl PublishReport {
    /// Acknowledged events per second in the window.
    fn publishes_per_sec(&self) -> f64 {
        self.outcome.acked_in_window as f64 / self.window_secs
    }

    /// 2xx answers per second in the window.
    fn requests_per_sec(&self) -> f64 {
        self.outcome.ok_in_window as f64 / self.window_secs
    }

    /// CPU in µs per acknowledged publish for a CPU use in cores.
    fn per_publish(&self, cores: f64) -> Option<f64> {
        let rate = self.publishes_per_sec();
        (rate > 0.0).then(|| cores * 1e6 / rate)
    }

    /// Busy time of the server's core not spent by the server process, in cores.
    fn core_other(&self) -> Option<f64> {
        Some(self.server_core_busy? - self.server.as_ref()?.cpu)
    }

    /// Why the run does not count: empty when every subscriber connected and stayed, every
    /// request was answered 2xx, and every acknowledged event reached every subscriber once.
    pub(crate) fn invalid_because(&self) -> Vec<String> {
        let o = &self.outcome;
        let t = &self.totals;
        let d = &self.deliveries;
        let mut why = Vec::new();
        if t.connected < self.subscribers {
            why.push(format!(
                "{} of {} subscribers connected",
                t.connected, self.subscribers
            ));
        }
        if t.ended > 0 {
            why.push(format!("{} subscribers ended during the run", t.ended));
        }
        if o.non_2xx() > 0 {
            why.push(format!("{} answers were not 2xx", o.non_2xx()));
        }
        let errors: u64 = o.errors.values().sum();
        if errors > 0 {
            why.push(format!("{errors} publisher connection errors"));
        }
        if o.unanswered > 0 {
            why.push(format!("{} requests unanswered", o.unanswered));
        }
        if o.id_mismatches > 0 {
            why.push(format!(
                "{} batch answers without one id per event",
                o.id_mismatches
            ));
        }
        if d.shortfall > 0 {
            why.push(format!("{} deliveries missing", d.shortfall));
        }
        if d.extra > 0 {
            why.push(format!("{} deliveries beyond the acknowledged", d.extra));
        }
        if t.decode_errors > 0 || t.unparsed > 0 {
            why.push(format!(
                "{} decode errors, {} events not ours",
                t.decode_errors, t.unparsed
            ));
        }
        if o.acked_in_window == 0 {
            why.push(String::from("nothing acknowledged in the window"));
        }
        why
    }

    /// The JSON line.
    pub(crate) fn json(&self) -> Value {
        let o = &self.outcome;
        let t = &self.totals;
        let d = &self.deliveries;
        let invalid = self.invalid_because();
        let by_status: serde_json::Map<String, Value> = o
            .by_status
            .iter()
            .map(|(status, n)| (status.to_string(), Value::from(*n)))
            .collect();
        let server = self.server.as_ref().map(|s| {
            json!({
                "pid": s.pid,
                "cpu_cores": s.cpu,
                "cpu_us_per_publish": self.per_publish(s.cpu),
                "ksoftirqd_cores": s.ksoftirqd,
                "cpu_with_ksoftirqd_us_per_publish": self.per_publish(s.cpu + s.ksoftirqd),
            })
        });
        json!({
            "mode": "publish",
            "label": self.label,
            "url": self.url,
            "subscribe_url": self.subscribe_url,
            "target_kind": self.target_kind.name(),
            "body": self.body.name(),
            "batch": self.batch,
            "connections": self.connections,
            "pipeline": self.pipeline,
            "window_secs": self.window_secs,
            "publishes_per_sec": self.publishes_per_sec(),
            "requests_per_sec": self.requests_per_sec(),
            "requests": {
                "sent": o.requests,
                "by_status": by_status,
                "non_2xx": o.non_2xx(),
                "first_refusal": o.first_refusal,
                "unanswered": o.unanswered,
                "errors": o.errors,
                "connects": o.connects,
                "id_mismatches": o.id_mismatches,
                "ok_in_window": o.ok_in_window,
            },
            "acked": o.acked,
            "acked_in_window": o.acked_in_window,
            "ack_latency": latency_json(&o.latency),
            "subscribers": self.subscribers,
            "connected": t.connected,
            "failed": t.failed,
            "ended": t.ended,
            "failures": t.failures,
            "connect_secs": self.connect_secs,
            "deliveries": {
                "subscribers": d.subscribers,
                "expected": d.expected,
                "received": d.received,
                "shortfall": d.shortfall,
                "extra": d.extra,
                "min_per_subscriber": d.min,
                "max_per_subscriber": d.max,
                "complete": d.shortfall == 0 && d.extra == 0,
            },
            "delivery_latency": latency_json(&self.delivery_latency),
            "decode_errors": t.decode_errors,
            "unparsed": t.unparsed,
            "server": server,
            "server_core_busy": self.server_core_busy,
            "server_core_us_per_publish": self.server_core_busy.and_then(|b| self.per_publish(b)),
            "server_core_other": self.core_other(),
            "client_cpu_cores": self.client_cpu,
            "valid": invalid.is_empty(),
            "invalid_because": invalid,
        })
    }

    /// The readable summary.
    pub(crate) fn summary(&self) -> String {
        let o = &self.outcome;
        let t = &self.totals;
        let d = &self.deliveries;
        let mut s = String::new();
        let opt = |v: Option<f64>, digits: usize| match v {
            Some(v) => format!("{v:.digits$}"),
            None => String::from("-"),
        };
        let _ = writeln!(
            s,
            "target        {} ({}, {} bodies{}), {} connections x {} in flight",
            self.url,
            self.target_kind.name(),
            self.body.name(),
            if self.batch > 1 {
                format!(" of {} events", self.batch)
            } else {
                String::new()
            },
            self.connections,
            self.pipeline
        );
        let _ = writeln!(
            s,
            "published     {:.0} events/s acknowledged ({:.0} requests/s) over {:.1} s",
            self.publishes_per_sec(),
            self.requests_per_sec(),
            self.window_secs
        );
        let statuses: Vec<String> = o
            .by_status
            .iter()
            .map(|(status, n)| format!("{n} x {status}"))
            .collect();
        let _ = writeln!(
            s,
            "answers       {}; {} not 2xx; {} unanswered; {} connects",
            if statuses.is_empty() {
                String::from("none")
            } else {
                statuses.join(", ")
            },
            o.non_2xx(),
            o.unanswered,
            o.connects
        );
        if let Some(refusal) = &o.first_refusal {
            let _ = writeln!(s, "  first refusal: {refusal}");
        }
        for (error, count) in &o.errors {
            let _ = writeln!(s, "  {count} x {error}");
        }
        let _ = writeln!(
            s,
            "ack latency   p50 {} ms, p99 {} ms, max {} ms ({} answers)",
            opt(ms(&o.latency, 0.5), 2),
            opt(ms(&o.latency, 0.99), 2),
            opt(ms(&o.latency, 1.0), 2),
            o.latency.len()
        );
        let _ = writeln!(
            s,
            "subscribers   {} connected, {} failed of {} in {:.2} s; {} ended during the run",
            t.connected, t.failed, self.subscribers, self.connect_secs, t.ended
        );
        for (failure, count) in &t.failures {
            let _ = writeln!(s, "  {count} x {failure}");
        }
        let _ = writeln!(
            s,
            "deliveries    {} acknowledged x {} subscribers = {} expected, {} received: {} missing, {} extra (per subscriber {}..{})",
            o.acked, d.subscribers, d.expected, d.received, d.shortfall, d.extra, d.min, d.max
        );
        let _ = writeln!(
            s,
            "delivery      p50 {} ms, p99 {} ms, max {} ms after the request was sent",
            opt(ms(&self.delivery_latency, 0.5), 2),
            opt(ms(&self.delivery_latency, 0.99), 2),
            opt(ms(&self.delivery_latency, 1.0), 2)
        );
        if let Some(server) = &self.server {
            let _ = writeln!(
                s,
                "server        pid {}: CPU {:.2} cores = {} us per publish ({} with ksoftirqd)",
                server.pid,
                server.cpu,
                opt(self.per_publish(server.cpu), 2),
                opt(self.per_publish(server.cpu + server.ksoftirqd), 2)
            );
        }
        if let Some(busy) = self.server_core_busy {
            let _ = writeln!(
                s,
                "server core   {:.1}% busy (softirq included) = {} us per publish; {} cores of it not the server process",
                busy * 100.0,
                opt(self.per_publish(busy), 2),
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
        let invalid = self.invalid_because();
        if invalid.is_empty() {
            let _ = writeln!(s, "valid         yes");
        } else {
            let _ = writeln!(s, "valid         NO: {}", invalid.join("; "));
        }
        s
    }
}
