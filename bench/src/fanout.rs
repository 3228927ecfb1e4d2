//! The fan-out mode (`ssecast-bench` without a subcommand): subscribers and a publisher at a
//! fixed rate.
//!
//! It opens N subscribers at a bounded connect rate from source addresses 127.0.0.2,
//! 127.0.0.3, ... (so one destination port is not limited by one source's ephemeral ports),
//! publishes `<seq> <send µs>` at a fixed rate through `POST`, and after a warm-up measures
//! for a fixed window: deliveries per second, losses, publish-to-receive latency, fairness
//! between subscribers, the server's memory and CPU (given its pid and core), and its own CPU,
//! so a saturated client is visible. Every phase has a deadline; a watchdog ends the process
//! if one is missed.
//!
//! The subscribers are served by one readiness loop on one thread (the client gets one core
//! to itself); the publisher runs on a second thread so that a busy subscriber loop does not
//! delay it.

use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;

use crate::duration::parse as parse_duration;
use crate::floor;
use crate::procfs::{self, Pid, Snapshot};
use crate::publisher::{self, Schedule};
use crate::report::{Report, ServerFigures};
use crate::subscriber::{self, Plan, Run, Subscribers};
use crate::tally::{micros_since, Tally, Window};
use crate::target::Target;

/// Open files kept for everything but subscribers (stdio, the poller, the publisher).
const SPARE_FILES: u64 = 64;

/// Flags of the fan-out mode.
#[derive(Debug, Clone, Args)]
pub(crate) struct FanoutArgs {
    /// The SSE stream to subscribe to, on loopback, e.g. `http://127.0.0.1:8080/events`.
    #[arg(long, required_unless_present = "serve_floor")]
    pub(crate) url: Option<String>,

    /// Where to POST events [default: `/publish` on the host of `--url`].
    #[arg(long)]
    pub(crate) publish_url: Option<String>,

    /// Add `topic=<TOPIC>` to the query of both URLs.
    #[arg(long)]
    pub(crate) topic: Option<String>,

    /// Subscribers to open.
    #[arg(long, default_value_t = 100)]
    pub(crate) subscribers: usize,

    /// New connections per second.
    #[arg(long, default_value_t = 2000.0)]
    pub(crate) connect_rate: f64,

    /// Limit on one subscriber's connect and response head.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) connect_timeout: Duration,

    /// Events published per second (`0`: publish nothing, e.g. to rely on the server's tick).
    #[arg(long, default_value_t = 10.0)]
    pub(crate) rate: f64,

    /// Bytes of padding added to each event's data.
    #[arg(long, default_value_t = 0)]
    pub(crate) pad: usize,

    /// Publishing before the measuring window opens.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub(crate) warmup: Duration,

    /// The measuring window.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub(crate) duration: Duration,

    /// Longest wait after the window for the last events to arrive.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub(crate) drain: Duration,

    /// The server's pid, to report its memory per subscriber and CPU per delivery.
    #[arg(long)]
    pub(crate) server_pid: Option<u32>,

    /// The core the server is pinned to, to report its busy fraction (softirq included).
    #[arg(long)]
    pub(crate) server_cpu: Option<usize>,

    /// Pause after each round of reads, so that events gather in the sockets and one read
    /// takes several (less client CPU per event; adds up to this much latency).
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub(crate) pause: Duration,

    /// Source addresses to spread subscribers over: 127.0.0.2 and up.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u8).range(1..=250))]
    pub(crate) sources: u8,

    /// A name for this run, copied into the JSON line.
    #[arg(long)]
    pub(crate) label: Option<String>,

    /// Time events from this wall-clock instant (µs since the Unix epoch) instead of this
    /// process's start, so several generators on one machine (one per cluster node, each
    /// under its own open-file limit) can time the same publisher's events. Give every
    /// generator the same value; one publishes, the others run with `--rate 0`.
    #[arg(long, value_name = "MICROS")]
    pub(crate) clock_base_unix_us: Option<u64>,

    /// Print only the JSON line.
    #[arg(long)]
    pub(crate) json: bool,

    /// Instead of loading a server, be the floor to compare servers with: a bare fan-out
    /// server on this loopback address (one `write()` per subscriber per event, no HTTP
    /// library, no queue). Prints `listening on http://IP:PORT`.
    #[arg(long, value_name = "ADDR")]
    pub(crate) serve_floor: Option<std::net::SocketAddr>,

    /// How long `--serve-floor` serves before exiting.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub(crate) floor_lifetime: Duration,
}

/// Runs the fan-out mode (or the floor server): prints the summary and the JSON line, or why
/// it could not run.
pub(crate) fn run(args: &FanoutArgs) -> ExitCode {
    if let Some(addr) = args.serve_floor {
        return match floor::serve(addr, args.floor_lifetime) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ssecast-bench --serve-floor: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match bench(args) {
        Ok(report) => {
            if !args.json {
                print!("{}", report.summary());
            }
            println!("{}", report.json());
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("ssecast-bench: {why}");
            ExitCode::FAILURE
        }
    }
}

fn bench(args: &FanoutArgs) -> Result<Report, String> {
    let url = args.url.as_deref().ok_or("--url is required")?;
    let mut target = Target::parse(url).map_err(|e| e.to_string())?;
    let mut publish = match &args.publish_url {
        Some(url) => Target::parse(url).map_err(|e| e.to_string())?,
        None => target.with_path("/publish"),
    };
    if let Some(topic) = &args.topic {
        target = target.with_query("topic", topic);
        publish = publish.with_query("topic", topic);
    }
    let n = args.subscribers;
    if n == 0 {
        return Err(String::from("--subscribers must be at least 1"));
    }
    if !(args.connect_rate.is_finite() && args.connect_rate > 0.0) {
        return Err(String::from("--connect-rate must be a positive number"));
    }
    if !(args.rate.is_finite() && args.rate >= 0.0 && args.rate <= 1e6) {
        return Err(String::from("--rate must be between 0 and 1000000"));
    }
    if args.duration.is_zero() {
        return Err(String::from("--duration must not be 0"));
    }
    let limit = rlimit::increase_nofile_limit(u64::MAX)
        .map_err(|e| format!("cannot raise the open-file limit: {e}"))?;
    if n as u64 + SPARE_FILES > limit {
        return Err(format!(
            "cannot hold {n} subscribers: the open-file limit is {limit} (hard limit), and \
             {SPARE_FILES} files are kept for the rest"
        ));
    }

    // The connect phase ends by its deadline, the rest by fixed durations; the watchdog is
    // the backstop if something blocks anyway.
    let connect_budget =
        Duration::from_secs_f64(n as f64 / args.connect_rate) + args.connect_timeout;
    let publish_timeout = Duration::from_secs(5);
    let hard = connect_budget
        + args.warmup
        + args.duration
        + args.drain
        + publish_timeout * 2
        + Duration::from_secs(10);
    thread::spawn(move || {
        thread::sleep(hard);
        eprintln!("ssecast-bench: still running after {hard:?}; giving up");
        std::process::exit(3);
    });

    let server_pid = args.server_pid.map(Pid::Other);
    let rss = |pid: Option<Pid>| -> Result<Option<u64>, String> {
        pid.map(procfs::rss_kib)
            .transpose()
            .map_err(|e| format!("cannot read the server's memory: {e}"))
    };
    let rss_before = rss(server_pid)?;

    let base = shared_base(args.clock_base_unix_us)?;
    let plan = Plan {
        target: target.addr,
        request: subscriber::request(&target),
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
    if run.tally.totals().connected == 0 {
        return Err(format!(
            "no subscriber connected to {target} ({})",
            run.tally.first_failure()
        ));
    }
    let rss_connected = rss(server_pid)?;

    let start = Instant::now();
    let window_start = start + args.warmup;
    let window_end = window_start + args.duration;
    run.tally.set_window(Window {
        start: micros_since(base, window_start),
        end: micros_since(base, window_end),
    });
    let publisher = (args.rate > 0.0).then(|| {
        let schedule = Schedule {
            target: publish.clone(),
            rate: args.rate,
            base,
            start,
            stop: window_end,
            window_start,
            pad: args.pad,
            timeout: publish_timeout,
        };
        thread::spawn(move || publisher::run(&schedule))
    });

    run.until(window_start, |_| false)?;
    run.tally.open_window();
    let before = Snapshot::take(server_pid, args.server_cpu)?;
    run.until(window_end, |_| false)?;
    let after = Snapshot::take(server_pid, args.server_cpu)?;

    let published = match publisher {
        Some(handle) => {
            // The publisher stops at the window's end, give or take one POST's timeout.
            run.until(window_end + publish_timeout * 2, |_| handle.is_finished())?;
            Some(
                handle
                    .join()
                    .map_err(|_| String::from("the publisher thread panicked"))?,
            )
        }
        None => None,
    };
    if let Some(last) = published.as_ref().and_then(|p| p.last_seq) {
        run.until(Instant::now() + args.drain, |tally| tally.all_reached(last))?;
    }
    let rss_end = rss(server_pid)?;

    let window_secs = after.at.duration_since(before.at).as_secs_f64();
    let cores = |from, to| procfs::cores(from, to, window_secs);
    let server = match (args.server_pid, rss_before, rss_connected, rss_end) {
        (Some(pid), Some(rss_before_kib), Some(rss_connected_kib), Some(rss_end_kib)) => {
            Some(ServerFigures {
                pid,
                rss_before_kib,
                rss_connected_kib,
                rss_end_kib,
                cpu: cores(before.server_ticks, after.server_ticks),
                ksoftirqd: cores(before.ksoftirqd_ticks, after.ksoftirqd_ticks),
            })
        }
        _ => None,
    };
    let report = Report {
        label: args.label.clone(),
        url: target.to_string(),
        subscribers: n,
        rate: args.rate,
        window_secs,
        connect_secs,
        totals: tally.totals(),
        published,
        latency: tally.latency.clone(),
        server,
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

/// The base instant: now, or the wall-clock instant `unix_us` (which must be in the past).
fn shared_base(unix_us: Option<u64>) -> Result<Instant, String> {
    let now = Instant::now();
    let Some(unix_us) = unix_us else {
        return Ok(now);
    };
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| format!("the clock is before 1970: {e}"))?;
    let ago = wall
        .checked_sub(Duration::from_micros(unix_us))
        .ok_or("--clock-base-unix-us is in the future")?;
    now.checked_sub(ago)
        .ok_or_else(|| String::from("--clock-base-unix-us is too far in the past"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_base_is_the_wall_clock_instant_given() {
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        let base = shared_base(Some(now_us - 2_000_000)).unwrap();
        let ago = base.elapsed();
        assert!(
            ago >= Duration::from_secs(2) && ago < Duration::from_secs(3),
            "{ago:?}"
        );
        assert!(shared_base(Some(now_us + 60_000_000)).is_err());
        assert!(shared_base(None).unwrap().elapsed() < Duration::from_secs(1));
    }
}
