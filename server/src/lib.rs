//! `ssecast-server`: the native Server-Sent Events broadcaster around the core's
//! [`ssecast::Hub`], on smol and async-h1, and the client tools of the `ssecast` binary.
//!
//! The server is a thin pump: HTTP requests become hub inputs (subscribe, publish,
//! unsubscribe), the hub's outputs wake the event-stream bodies, and a timer task feeds it
//! time for keep-alives. Every SSE byte it writes was encoded by the core.

mod app;
mod auth;
mod client;
mod cluster;
mod config;
mod conn;
#[doc(hidden)]
pub mod fuzzing;
mod routes;
mod store;
mod stream;
mod tls;

pub use client::{decode_stdin, listen, publish};
pub use config::{
    parse_duration, Cli, Command, DecodeArgs, LimitArgs, ListenArgs, PublishArgs, Secret, ServeArgs,
};
pub use conn::{run, HEADER_TIMEOUT};
