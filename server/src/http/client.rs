//! The client side, for the `listen` and `publish` tools: one request over a fresh
//! connection (TLS for `https://`), through async-h1.

use std::io;
use std::net::TcpStream;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::future::FutureExt as _;
use futures_lite::io::{AsyncRead, AsyncReadExt as _, AsyncWrite};
use url::Url;

use super::tls::{self, TlsConnector};

/// How long connecting and receiving the response head may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn other(reason: impl Into<String>) -> io::Error {
    io::Error::other(reason.into())
}

/// A server to talk to: its URL, and for `https://` the TLS client that trusts `ca`, or
/// else `SSL_CERT_FILE` or the system bundle.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) url: Url,
    tls: Option<TlsConnector>,
}

impl Target {
    pub(crate) fn parse(url: &str, ca: Option<&Path>) -> io::Result<Target> {
        let url = Url::parse(url).map_err(|e| other(format!("{url:?}: {e}")))?;
        match url.scheme() {
            "http" => Ok(Target { url, tls: None }),
            "https" => Ok(Target {
                url,
                tls: Some(tls::connector(ca)?),
            }),
            _ => Err(other(format!("{url}: expected an http:// or https:// URL"))),
        }
    }
}

/// An answer: its status, headers, and the body to read.
pub(crate) struct Answer {
    res: http_types::Response,
}

impl Answer {
    pub(crate) fn status(&self) -> u16 {
        self.res.status().into()
    }

    /// The last value of header `name`.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.res.header(name).map(|v| v.last().as_str().to_owned())
    }

    /// The body as a reader.
    pub(crate) fn body(&mut self) -> impl AsyncRead + Unpin + Send + 'static {
        self.res.take_body()
    }

    pub(crate) async fn text(&mut self) -> io::Result<String> {
        let mut text = String::new();
        self.body().read_to_string(&mut text).await?;
        Ok(text)
    }
}

/// Sends `method` to `url` with `headers` and `body` over a new connection, within
/// [`CONNECT_TIMEOUT`] for connecting and the answer's head.
pub(crate) async fn send(
    target: &Target,
    url: &Url,
    method: &str,
    headers: &[(&str, String)],
    body: Option<Vec<u8>>,
) -> io::Result<Answer> {
    let method: http_types::Method = method
        .parse()
        .map_err(|_| other(format!("unknown method {method}")))?;
    let mut req = http_types::Request::new(method, url.clone());
    for (name, value) in headers {
        req.insert_header(*name, value.as_str());
    }
    if let Some(body) = body {
        req.set_body(body);
    }
    let addrs = url.socket_addrs(|| None)?;
    let exchange = async {
        let mut last = other(format!("{url}: no address"));
        for addr in addrs {
            match Async::<TcpStream>::connect(addr).await {
                Ok(stream) => {
                    let _ = stream.get_ref().set_nodelay(true);
                    let answer = match &target.tls {
                        None => async_h1::connect(stream, req).await,
                        Some(tls) => {
                            let name = tls::server_name(url.host_str().unwrap_or_default())?;
                            let stream = tls.connect(name, stream).await?;
                            async_h1::connect(Shared::new(stream), req).await
                        }
                    };
                    return answer
                        .map(|res| Answer { res })
                        .map_err(|e| other(e.to_string()));
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    };
    let timeout = async {
        Timer::after(CONNECT_TIMEOUT).await;
        Err(other(format!(
            "{url}: no response within {CONNECT_TIMEOUT:?}"
        )))
    };
    exchange.or(timeout).await
}

/// A stream async-h1 can clone (it wants a `Clone` connection): the clones share it. They
/// all live in one task, and the lock is held only inside a poll, so it is never contended.
struct Shared<S>(Arc<Mutex<S>>);

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Shared(Arc::clone(&self.0))
    }
}

impl<S> Shared<S> {
    fn new(stream: S) -> Shared<S> {
        Shared(Arc::new(Mutex::new(stream)))
    }

    fn with<T>(&self, f: impl FnOnce(&mut S) -> T) -> T {
        // Poisoned only by a panic inside a poll, which ends this tool's request anyway.
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Shared<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.with(|s| Pin::new(s).poll_read(cx, buf))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Shared<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.with(|s| Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|s| Pin::new(s).poll_flush(cx))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|s| Pin::new(s).poll_close(cx))
    }
}
