//! The `ssecast` binary: argument parsing and dispatch only.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use ssecast_server::{Cli, Command};

fn main() -> ExitCode {
    // The environment is the user's: nothing here sets a variable (`set_var` is unsound once
    // threads run). With `RUST_BACKTRACE=1`, an `http_types::Error` captures a backtrace
    // (microseconds): the server builds none (it reads requests itself, `http/`); only the
    // tools' client does, once per failed exchange.
    let cli = Cli::parse();
    env_logger::Builder::from_env(
        env_logger::Env::new()
            .filter_or("SSECAST_LOG", "info")
            .write_style("SSECAST_LOG_STYLE"),
    )
    .target(env_logger::Target::Stderr)
    .init();
    let result = match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Decode(args)) => ssecast_server::decode_stdin(&args),
        Some(Command::Listen(args)) => ssecast_server::listen(&args),
        Some(Command::Publish(args)) => ssecast_server::publish(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ssecast_server::ServeArgs) -> std::io::Result<()> {
    let scheme = if args.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    ssecast_server::run(args, |addr| {
        // The one line on stdout: tests and scripts read the bound port from it.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {scheme}://{addr}");
        let _ = out.flush();
    })
}
