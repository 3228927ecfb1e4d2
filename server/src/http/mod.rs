//! The only module that knows the wire: HTTP/1.1 request heads read and checked once, bodies
//! framed and bounded, responses and event streams written, the connection loop; HTTP/2
//! (`http2/`) behind the same request and reply types; the listening socket (and its
//! handoff to a new process), TLS, and the client side of the tools. Routes see a parsed
//! [`Request`] and answer a [`Reply`]; nothing outside this module names async-h1 or
//! http-types.

mod body;
pub(crate) mod client;
mod conn;
pub(crate) mod form;
mod handoff;
mod head;
mod http2;
mod listen;
mod message;
mod response;
mod stream;
mod tls;

use std::fmt;

pub(crate) use conn::serve_connection;
pub(crate) use listen::run;
pub(crate) use message::{one_line, Body, ConnInfo, Method, Reply, Request, Response, Status};

/// A request refused before any route saw it: the status and the one-line reason sent.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) status: Status,
    pub(crate) reason: String,
}

impl Refusal {
    pub(crate) fn new(status: Status, reason: impl Into<String>) -> Refusal {
        Refusal {
            status,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}
