//! `GET /metrics`: the hub's and the server's counters in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::app::{App, EndCause};
use crate::http::{Response, Status};
use crate::log::Log;

/// One metric: name (after `ssecast_`), type, help, and its samples (labels, value).
type Metric<'a> = (&'a str, &'a str, &'a str, Vec<(String, u64)>);

fn one(value: u64) -> Vec<(String, u64)> {
    vec![(String::new(), value)]
}

pub(super) fn metrics(app: &App) -> Response {
    let s = app.stats();
    let c = &app.counters;
    let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
    let ended = EndCause::ALL
        .iter()
        .zip(&c.ended)
        .map(|(cause, n)| (format!("{{reason=\"{}\"}}", cause.label()), load(n)))
        .collect();
    #[rustfmt::skip]
    let mut all: Vec<Metric<'_>> = vec![
        ("subscribers", "gauge", "Subscribers connected now.", one(s.subscribers)),
        ("connections_accepted_total", "counter", "TCP connections accepted.", one(load(&c.accepted))),
        ("subscriptions_total", "counter", "Subscriptions accepted.", one(s.subscribed)),
        ("subscriptions_refused_total", "counter", "Subscriptions refused at --max-subscribers.", one(s.refused)),
        ("published_total", "counter", "Events published.", one(s.published)),
        ("duplicates_total", "counter", "Publishes acknowledged without publishing: their id is a retained event's.", one(s.duplicates)),
        ("encoded_total", "counter", "Event frames encoded: one per event published and per missed marker, never per subscriber.", one(s.encoded)),
        ("delivered_total", "counter", "Event frames handed to subscriber connections.", one(s.delivered)),
        ("dropped_total", "counter", "Event frames dropped by the overflow policy.", one(s.dropped)),
        ("disconnected_total", "counter", "Event streams ended, by reason.", ended),
        ("replayed_total", "counter", "Event frames replayed from history after a Last-Event-ID.", one(s.replayed)),
        ("keepalives_total", "counter", "Keep-alive comments queued.", one(s.keepalives)),
        ("history_bytes", "gauge", "Memory of the replay history: each kept event's encoded bytes (once) plus 160 B for its index (at most --history-total-bytes).", one(s.history_bytes)),
        ("history_evicted_total", "counter", "Events let go of from the replay history (by --history, --history-bytes, --history-total-bytes or a forgotten topic).", one(s.history_evicted)),
        ("bytes_written_total", "counter", "Bytes of event streams handed to connections.", one(load(&c.bytes_written))),
        ("bad_requests_total", "counter", "Requests answered with a 4xx status.", one(load(&c.bad_requests))),
        ("panics_total", "counter", "Connections ended by a panic in their task (a bug: see the log).", one(load(&c.panics))),
    ];
    if let Log::Disk(store) = &app.log {
        let (syncs, synced) = store.sync_counts();
        all.extend([
            (
                "store_syncs_total",
                "counter",
                "fdatasyncs of the --data-dir log (each makes every event written before it durable).",
                one(syncs),
            ),
            (
                "store_synced_total",
                "counter",
                "Events made durable in the --data-dir log (over store_syncs_total: events per sync, the group-commit factor).",
                one(synced),
            ),
        ]);
    }
    if let Log::Redis(cluster) = &app.log {
        let r = &cluster.counters;
        all.extend([
            (
                "redis_up",
                "gauge",
                "1 while the node's reader is connected to Redis.",
                one(u64::from(cluster.is_up())),
            ),
            (
                "redis_followed_topics",
                "gauge",
                "Topics this node reads from Redis.",
                one(cluster.followed() as u64),
            ),
            (
                "redis_appended_total",
                "counter",
                "Events appended to Redis streams by this node.",
                one(load(&r.appended)),
            ),
            (
                "redis_duplicates_total",
                "counter",
                "Publishes of an id whose event Redis still holds: acknowledged, not appended.",
                one(load(&r.duplicates)),
            ),
            (
                "redis_publish_failures_total",
                "counter",
                "Publishes answered 503 because Redis did not take them.",
                one(load(&r.publish_failed)),
            ),
            (
                "redis_read_total",
                "counter",
                "Stream entries read from Redis.",
                one(load(&r.read)),
            ),
            (
                "redis_bad_entries_total",
                "counter",
                "Stream entries skipped as malformed.",
                one(load(&r.bad_entries)),
            ),
            (
                "redis_connects_total",
                "counter",
                "Reader connections made to Redis.",
                one(load(&r.connects)),
            ),
        ]);
    }
    let mut out = String::with_capacity(4096);
    for (name, kind, help, samples) in all {
        let _ = writeln!(out, "# HELP ssecast_{name} {help}");
        let _ = writeln!(out, "# TYPE ssecast_{name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "ssecast_{name}{labels} {value}");
        }
    }
    Response::new(Status::OK)
        .with_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        .with_header("Cache-Control", "no-cache")
        .with_body(out.into_bytes())
}
