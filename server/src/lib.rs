//! `ssecast-server`: the native Server-Sent Events broadcaster around the core's
//! [`ssecast::Hub`], on smol, and the client tools of the `ssecast` binary.
//!
//! The server is a thin pump: HTTP requests become hub inputs (subscribe, publish,
//! unsubscribe), the hub's outputs wake the event streams, and a timer task feeds it time for
//! keep-alives. Every SSE byte it writes was encoded by the core. The modules, from the wire
//! in: `http` (the only one that knows the wire), `routes` (one file per endpoint family),
//! `auth`, `app` (the hub shell), `log` (where history lives), `config`.

mod app;
mod auth;
mod config;
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod log;
mod routes;
mod tools;

pub use config::{
    parse_duration, Cli, Command, DecodeArgs, LimitArgs, ListenArgs, PublishArgs, Secret, ServeArgs,
};
pub use tools::{decode_stdin, listen, publish};

/// Runs the server until SIGINT or SIGTERM. `on_listening` gets the bound address once the
/// socket listens (the binary prints it).
pub fn run(
    args: ServeArgs,
    on_listening: impl FnOnce(std::net::SocketAddr),
) -> std::io::Result<()> {
    http::run(args, on_listening)
}
