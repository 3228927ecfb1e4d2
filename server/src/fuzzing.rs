//! Entry points for the fuzz targets in `fuzz/`, not a stable API: the request path driven in
//! process over an in-memory connection, and the parser of `POST /publish` bodies.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use clap::Parser as _;
use futures_lite::io::{AsyncRead, AsyncWrite};
use ssecast::{Event, Topic};

use crate::app::App;
use crate::config::Cli;
use crate::http::ConnInfo;
use crate::routes::{self, Refused};

/// The most a served connection may write before the harness stops it.
const MAX_OUTPUT: usize = 1 << 20;

/// A server without sockets: one [`App`] (no ticker, no keep-alives, small limits, no static
/// directory) that serves connections whose bytes come from memory.
#[derive(Debug)]
pub struct Harness {
    app: Arc<App>,
}

impl Harness {
    /// A fresh server state.
    pub fn new() -> io::Result<Harness> {
        let cli = Cli::try_parse_from([
            "ssecast",
            "--tick",
            "0",
            "--keepalive",
            "0",
            "--max-body",
            "4096",
            "--history",
            "64",
            "--max-topics",
            "64",
            "--www",
            "/nonexistent/ssecast-fuzz",
        ])
        .map_err(io::Error::other)?;
        Ok(Harness {
            app: Arc::new(App::new(cli.serve)?),
        })
    }

    /// Serves one connection from a loopback peer that sends `input` in reads of at most
    /// `max_read` bytes and then closes its side; returns what the server wrote. `None` if
    /// serving took longer than `bound` (with the peer's side closed, every path must end).
    pub fn serve(&self, input: &[u8], max_read: usize, bound: Duration) -> Option<Vec<u8>> {
        let output = Arc::new(Mutex::new(Vec::new()));
        let stream = Memory {
            input: input.to_vec(),
            pos: 0,
            max_read: max_read.max(1),
            output: Arc::clone(&output),
        };
        let info = ConnInfo {
            peer: SocketAddr::from((Ipv4Addr::LOCALHOST, 40000)),
            socket: None,
        };
        let serving = crate::http::serve_connection(&self.app, stream, &info);
        let finished = async_io::block_on(futures_lite::future::or(
            async {
                serving.await;
                true
            },
            async {
                async_io::Timer::after(bound).await;
                false
            },
        ));
        let written = std::mem::take(&mut *output.lock().unwrap_or_else(|p| p.into_inner()));
        finished.then_some(written)
    }
}

/// What `POST /publish` makes of a body (JSON when `json`, else text) and its `topic` and
/// `event` query parameters: the topic and the event it would publish, or the status and
/// one-line reason of the refusal. The function the route calls.
pub fn publish_fields(
    json: bool,
    body: &[u8],
    topic: Option<&str>,
    event: Option<&str>,
) -> Result<(Topic, Event), (u16, String)> {
    routes::publish_fields(json, body, topic.map(Into::into), event.map(Into::into))
        .map_err(|Refused(status, reason)| (status.0, reason))
}

/// A client connection in memory: reads come from `input` then end; writes are kept.
struct Memory {
    input: Vec<u8>,
    pos: usize,
    max_read: usize,
    output: Arc<Mutex<Vec<u8>>>,
}

impl AsyncRead for Memory {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let n = (self.input.len() - self.pos)
            .min(buf.len())
            .min(self.max_read);
        let start = self.pos;
        buf[..n].copy_from_slice(&self.input[start..start + n]);
        self.pos += n;
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for Memory {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut output = self.output.lock().unwrap_or_else(|p| p.into_inner());
        if output.len() + buf.len() > MAX_OUTPUT {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        output.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
