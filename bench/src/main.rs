//! `ssecast-bench`: a load generator for SSE hubs on loopback.
//!
//! Without a subcommand it is the fan-out benchmark (subscribers, a publisher at a fixed rate,
//! deliveries, drops, latency, fairness, the server's memory and CPU; `--serve-floor` makes it
//! the bare fan-out server to compare with). `ssecast-bench publish` measures the other side:
//! publishes acknowledged per second over N keep-alive connections, pipelined or not, with
//! text, JSON or NDJSON bodies, while M subscribers check that every acknowledged event
//! reaches each of them. It speaks HTTP over its own sockets and parses
//! every stream with the core's [`ssecast::Decoder`]; it depends on no server crate, so the
//! server's dependency tree carries none of this.
//!
//! Every target must be on loopback (`target.rs`), every phase has a deadline and a watchdog
//! ends the process if one is missed.

mod chunked;
mod duration;
mod fanout;
mod floor;
mod procfs;
mod publish;
mod publish_report;
mod publisher;
mod publishers;
mod report;
mod response;
mod subscriber;
mod tally;
mod target;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Load-test an SSE server on loopback: subscribers, publish rate, latency, CPU, memory.
#[derive(Debug, Parser)]
#[command(
    name = "ssecast-bench",
    version,
    long_about = None,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    /// What to measure; the subscriber fan-out when omitted.
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Flags of the fan-out mode.
    #[command(flatten)]
    fanout: fanout::FanoutArgs,
}

/// The modes besides the default fan-out.
#[derive(Debug, Subcommand)]
enum Mode {
    /// Publish throughput: N keep-alive publisher connections (pipelined or not) for a fixed
    /// duration, and M subscribers that must each receive every acknowledged event.
    Publish(publish::PublishArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.mode {
        None => fanout::run(&cli.fanout),
        Some(Mode::Publish(args)) => publish::run(&args),
    }
}
