//! The publish mode (`ssecast-bench publish`): how many publishes a server acknowledges per
//! second, and whether every acknowledged event reaches every subscriber.
//!
//! M subscribers (the fan-out's machinery, on this thread) connect first; then N publisher
//! connections ([`publishers`], a thread of their own) keep K requests each in flight for a
//! warm-up and a measuring window. Afterwards the subscribers are read until each has
//! received every acknowledged event (bounded by `--drain`), and the delivery check compares:
//! events acknowledged with a 2xx times subscribers = deliveries received. A run is valid
//! when every subscriber connected and stayed, every request was answered 2xx, and the check
//! holds exactly.

use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;

use crate::duration::parse as parse_duration;
use crate::procfs::{self, Pid, Snapshot};
use crate::publish_report::{PublishReport, Server};
use crate::publishers::{self, BodyKind};
use crate::subscriber::{self, Plan, Run, Subscribers};
use crate::tally::{micros_since, Tally, Window};
use crate::target::Target;

/// Open files kept for everything but subscribers and publishers (stdio, the pollers).
const SPARE_FILES: u64 = 64;

/// Which server the target is: what its publish endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TargetKind {
    /// ssecast's `POST /publish`: text (`?topic=`), JSON or NDJSON bodies; subscribers at
    /// `/events`.
    Ssecast,
    /// nginx + nchan's publisher location (`bench/nchan.conf.in`: `POST /pub`): the body is
    /// the message, so text only; subscribers at `/sub`.
    Nchan,
}

impl TargetKind {
    /// Its flag value.
    pub(crate) fn name(self) -> &'static str {
        match self {
            TargetKind::Ssecast => "ssecast",
            TargetKind::Nchan => "nchan",
        }
    }

    fn subscribe_path(self) -> &'static str {
        match self {
            TargetKind::Ssecast => "/events",
            TargetKind::Nchan => "/sub",
        }
    }
}

/// Flags of `ssecast-bench publish`.
#[derive(Debug, Clone, Args)]
pub(crate) struct PublishArgs {
    /// Where to POST events, on loopback: e.g. `http://127.0.0.1:8080/publish` (ssecast) or
    /// `http://127.0.0.1:8081/pub` (nchan).
    #[arg(long)]
    pub(crate) url: String,

    /// What serves `--url`: the same code drives both, only the body and the default
    /// subscriber path differ.
    #[arg(long, value_enum, default_value_t = TargetKind::Ssecast)]
    pub(crate) target_kind: TargetKind,

    /// The SSE stream the subscribers open [default: `/events` on the host of `--url`, `/sub`
    /// for nchan].
    #[arg(long)]
    pub(crate) subscribe_url: Option<String>,

    /// The topic: added as `topic=<TOPIC>` to the subscribers' query, and to the publish
    /// query (text) or to every event's `topic` field (JSON, NDJSON).
    #[arg(long)]
    pub(crate) topic: Option<String>,

    /// Publisher connections, each kept alive for the whole run.
    #[arg(long, default_value_t = 16)]
    pub(crate) connections: usize,

    /// Requests in flight per connection (1: each request waits for the previous answer).
    #[arg(long, default_value_t = 1)]
    pub(crate) pipeline: usize,

    /// The body: `text` (the data itself), `json` (`{"data":...}`), `ndjson` (`--batch` JSON
    /// events, one a line, `Content-Type: application/x-ndjson`).
    #[arg(long, value_enum, default_value_t = BodyKind::Text)]
    pub(crate) body: BodyKind,

    /// Events per request with `--body ndjson` [default: 10].
    #[arg(long)]
    pub(crate) batch: Option<usize>,

    /// Bytes of padding added to each event's data.
    #[arg(long, default_value_t = 0)]
    pub(crate) pad: usize,

    /// Subscribers listening on the topic; each must receive every acknowledged event.
    #[arg(long, default_value_t = 20)]
    pub(crate) subscribers: usize,

    /// New subscriber connections per second.
    #[arg(long, default_value_t = 2000.0)]
    pub(crate) connect_rate: f64,

    /// Limit on one subscriber's connect and response head.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) connect_timeout: Duration,

    /// Publishing before the measuring window opens (counted in the delivery check, not in
    /// the rates).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub(crate) warmup: Duration,

    /// The measuring window; no request is sent after it.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub(crate) duration: Duration,

    /// Limit on connecting a publisher and on waiting for one answer.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub(crate) request_timeout: Duration,

    /// Longest wait after the last answer for the subscribers to receive every event.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub(crate) drain: Duration,

    /// The server's pid, to report its CPU per publish.
    #[arg(long)]
    pub(crate) server_pid: Option<u32>,

    /// The core the server is pinned to, to report its busy fraction (softirq included).
    #[arg(long)]
    pub(crate) server_cpu: Option<usize>,

    /// Pause after each round of subscriber reads, so that events gather in the sockets.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub(crate) pause: Duration,

    /// Source addresses to spread subscribers over: 127.0.0.2 and up.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u8).range(1..=250))]
    pub(crate) sources: u8,

    /// A name for this run, copied into the JSON line.
    #[arg(long)]
    pub(crate) label: Option<String>,

    /// Print only the JSON line.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Runs the publish mode: prints the summary and the JSON line, or why it could not run.
pub(crate) fn run(args: &PublishArgs) -> ExitCode {
    match publish(args) {
        Ok(report) => {
            if !args.json {
                print!("{}", report.summary());
            }
            println!("{}", report.json());
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("ssecast-bench publish: {why}");
            ExitCode::FAILURE
        }
    }
}

/// The publish target and the subscribers' stream, checked.
fn targets(args: &PublishArgs) -> Result<(Target, Target), String> {
    let mut publish = Target::parse(&args.url).map_err(|e| e.to_string())?;
    let mut stream = match &args.subscribe_url {
        Some(url) => Target::parse(url).map_err(|e| e.to_string())?,
        None => publish.with_path(args.target_kind.subscribe_path()),
    };
    if let Some(topic) = &args.topic {
        stream = stream.with_query("topic", topic);
        if args.body == BodyKind::Text {
            publish = publish.with_query("topic", topic);
        }
    }
    Ok((publish, stream))
}

/// Events per request, checked against the body kind and the target.
fn batch(args: &PublishArgs) -> Result<usize, String> {
    if args.target_kind == TargetKind::Nchan && args.body != BodyKind::Text {
        return Err(String::from(
            "nchan publishes the body as the message: use --body text",
        ));
    }
    match (args.body, args.batch) {
        (BodyKind::Ndjson, None) => Ok(10),
        (BodyKind::Ndjson, Some(b)) if (1..=100_000).contains(&b) => Ok(b),
        (BodyKind::Ndjson, Some(_)) => Err(String::from("--batch must be between 1 and 100000")),
        (_, Some(_)) => Err(String::from("--batch goes with --body ndjson")),
        (_, None) => Ok(1),
    }
}

fn publish(args: &PublishArgs) -> Result<PublishReport, String> {
    let (target, stream) = targets(args)?;
    let batch = batch(args)?;
    if !(1..=10_000).contains(&args.connections) {
        return Err(String::from("--connections must be between 1 and 10000"));
    }
    if !(1..=10_000).contains(&args.pipeline) {
        return Err(String::from("--pipeline must be between 1 and 10000"));
    }
    if !(args.connect_rate.is_finite() && args.connect_rate > 0.0) {
        return Err(String::from("--connect-rate must be a positive number"));
    }
    if args.duration.is_zero() {
        return Err(String::from("--duration must not be 0"));
    }
    if args.request_timeout.is_zero() {
        return Err(String::from("--request-timeout must not be 0"));
    }
    let n = args.subscribers;
    let limit = rlimit::increase_nofile_limit(u64::MAX)
        .map_err(|e| format!("cannot raise the open-file limit: {e}"))?;
    let files = n as u64 + args.connections as u64 + SPARE_FILES;
    if files > limit {
        return Err(format!(
            "cannot hold {n} subscribers and {} publishers: the open-file limit is {limit} \
             (hard limit), and {SPARE_FILES} files are kept for the rest",
            args.connections
        ));
    }

    // Every phase ends by a deadline; the watchdog is the backstop if something blocks.
    let connect_budget =
        Duration::from_secs_f64(n as f64 / args.connect_rate) + args.connect_timeout;
    let hard = connect_budget
        + args.warmup
        + args.duration
        + args.request_timeout * 2
        + args.drain
        + Duration::from_secs(10);
    thread::spawn(move || {
        thread::sleep(hard);
        eprintln!("ssecast-bench publish: still running after {hard:?}; giving up");
        std::process::exit(3);
    });

    let base = Instant::now();
    let plan = Plan {
        target: stream.addr,
        request: subscriber::request(&stream),
        connect_timeout: args.connect_timeout,
        sources: args.sources,
        pause: args.pause,
    };
    let mut subs = Subscribers::new(plan, n).map_err(|e| format!("cannot poll: {e}"))?;
    let mut tally = Tally::new(n, base);
    let mut run = Run {
        subs: &mut subs,
        tally: &mut tally,
    };
    let connect_secs = run.connect_all(n, args.connect_rate, connect_budget)?;
    if n > 0 && run.tally.totals().connected == 0 {
        return Err(format!(
            "no subscriber connected to {stream} ({})",
            run.tally.first_failure()
        ));
    }

    // Subscribers connected now are the measured ones: each must get every acknowledged
    // event, from the first.
    run.tally.open_window();
    let start = Instant::now();
    let window_start = start + args.warmup;
    let window_end = window_start + args.duration;
    run.tally.set_window(Window {
        start: micros_since(base, window_start),
        end: micros_since(base, window_end),
    });
    let plan = publishers::Plan {
        target: target.clone(),
        body: args.body,
        batch,
        topic: args.topic.clone(),
        pad: args.pad,
        connections: args.connections,
        pipeline: args.pipeline,
        base,
        window_start,
        stop: window_end,
        timeout: args.request_timeout,
    };
    let publishers = thread::spawn(move || publishers::run(&plan));

    let server_pid = args.server_pid.map(Pid::Other);
    run.until(window_start, |_| false)?;
    let before = Snapshot::take(server_pid, args.server_cpu)?;
    run.until(window_end, |_| false)?;
    let after = Snapshot::take(server_pid, args.server_cpu)?;
    // The publishers wait for the answers still owed, within the request timeout.
    run.until(window_end + args.request_timeout * 2, |_| {
        publishers.is_finished()
    })?;
    if !publishers.is_finished() {
        return Err(String::from("the publishers did not stop"));
    }
    let outcome = publishers
        .join()
        .map_err(|_| String::from("the publisher thread panicked"))?;
    let acked = outcome.acked;
    run.until(Instant::now() + args.drain, |tally| {
        tally.all_received(acked)
    })?;

    let cpu_secs = after.at.duration_since(before.at).as_secs_f64();
    let cores = |from, to| procfs::cores(from, to, cpu_secs);
    let report = PublishReport {
        label: args.label.clone(),
        url: target.to_string(),
        subscribe_url: stream.to_string(),
        target_kind: args.target_kind,
        body: args.body,
        batch,
        connections: args.connections,
        pipeline: args.pipeline,
        window_secs: args.duration.as_secs_f64(),
        subscribers: n,
        connect_secs,
        totals: tally.totals(),
        deliveries: tally.deliveries(acked),
        delivery_latency: tally.latency.clone(),
        outcome,
        server: args.server_pid.map(|pid| Server {
            pid,
            cpu: cores(before.server_ticks, after.server_ticks),
            ksoftirqd: cores(before.ksoftirqd_ticks, after.ksoftirqd_ticks),
        }),
        server_core_busy: match (before.core, after.core) {
            (Some(from), Some(to)) => Some(to.busy_since(from)),
            _ => None,
        },
        client_cpu: cores(Some(before.own_ticks), Some(after.own_ticks)),
    };
    // Dropping the subscribers closes every socket.
    drop(subs);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: PublishArgs,
    }

    fn args(flags: &[&str]) -> PublishArgs {
        Cli::try_parse_from([&["publish"], flags].concat())
            .unwrap()
            .args
    }

    /// The publish and subscribe URLs and the batch size the flags give, or the error.
    fn check(flags: &[&str], expected: Result<(&str, &str, usize), &str>) {
        let a = args(flags);
        let got = targets(&a).and_then(|(p, s)| Ok((p.to_string(), s.to_string(), batch(&a)?)));
        let expected = expected
            .map(|(p, s, b)| (p.to_owned(), s.to_owned(), b))
            .map_err(str::to_owned);
        match (&got, &expected) {
            (Err(got), Err(want)) => assert!(got.contains(want.as_str()), "{flags:?}: {got}"),
            _ => assert_eq!(got, expected, "{flags:?}"),
        }
    }

    #[test]
    fn flags() {
        let url = "http://127.0.0.1:1/publish";
        check(&["--url", url], Ok((url, "http://127.0.0.1:1/events", 1)));
        check(
            &["--url", url, "--topic", "t"],
            Ok((
                "http://127.0.0.1:1/publish?topic=t",
                "http://127.0.0.1:1/events?topic=t",
                1,
            )),
        );
        // JSON events carry the topic themselves.
        check(
            &["--url", url, "--topic", "t", "--body", "ndjson"],
            Ok((url, "http://127.0.0.1:1/events?topic=t", 10)),
        );
        check(
            &["--url", url, "--body", "ndjson", "--batch", "3"],
            Ok((url, "http://127.0.0.1:1/events", 3)),
        );
        check(
            &["--url", "http://127.0.0.1:2/pub", "--target-kind", "nchan"],
            Ok(("http://127.0.0.1:2/pub", "http://127.0.0.1:2/sub", 1)),
        );
        check(
            &["--url", url, "--subscribe-url", "http://127.0.0.1:3/s"],
            Ok((url, "http://127.0.0.1:3/s", 1)),
        );
        check(
            &[
                "--url",
                "http://127.0.0.1:2/pub",
                "--target-kind",
                "nchan",
                "--body",
                "json",
            ],
            Err("use --body text"),
        );
        check(&["--url", url, "--batch", "3"], Err("--batch goes with"));
        check(
            &["--url", url, "--body", "ndjson", "--batch", "0"],
            Err("--batch must be"),
        );
        check(&["--url", "http://192.0.2.1:80/publish"], Err("loopback"));
        check(
            &[
                "--url",
                url,
                "--subscribe-url",
                "http://192.0.2.1:80/events",
            ],
            Err("loopback"),
        );
    }
}
