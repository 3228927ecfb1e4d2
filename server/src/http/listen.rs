//! The listening socket: the executor and its threads, the accept loop (TLS handshakes
//! included, HTTP/1.1 or HTTP/2 chosen), signals (stop, restart, reload) and the shutdown.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::future::{self, FutureExt as _};

use super::conn::{refuse_raw, serve_connection, HEADER_TIMEOUT};
use super::handoff::{self, Origin};
use super::http2;
use super::message::{ConnInfo, Status};
use super::tls::{self, TlsAcceptor};
use super::Refusal;
use crate::app::App;
use crate::config::ServeArgs;

/// How long a shutdown waits for streams to end before exiting anyway (a client that stopped
/// reading never lets its stream end); well inside the promised two seconds.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// Tasks run between two looks at the sockets while tasks are waiting.
const TASKS_PER_POLL: usize = 16;

/// Runs the server until SIGINT or SIGTERM (`SIGUSR2` starts a process to take over,
/// `SIGHUP` reloads the certificate). `on_listening` gets the bound address once the socket
/// listens (the binary prints it).
pub(crate) fn run(args: ServeArgs, on_listening: impl FnOnce(SocketAddr)) -> io::Result<()> {
    // First, while this is the only thread: it takes LISTEN_FDS out of the environment.
    let inherited = handoff::inherited()?;
    args.check()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let (tls, certs) = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let (acceptor, certs) = tls::acceptor(cert, key)?;
            (Some(acceptor), Some(certs))
        }
        _ => (None, None),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let (listener, origin) = match inherited {
        Some((listener, origin)) => (Async::new(listener)?, origin),
        None => (Async::<TcpListener>::bind(args.addr)?, Origin::Bound),
    };
    let addr = listener.get_ref().local_addr()?;
    // Before `on_listening`, so a test that sees the address can already signal us.
    let mut signals = async_signal::Signals::new([
        async_signal::Signal::Term,
        async_signal::Signal::Int,
        async_signal::Signal::Usr2,
        async_signal::Signal::Hup,
    ])?;
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    // The directory is the old process's until it exits: it stops first, then this one
    // opens the directory (connections wait in the socket's backlog meanwhile).
    let handed_over = match (origin, &args.data_dir) {
        (Origin::Handoff(from), Some(dir)) => {
            handoff::take_over(from);
            handoff::wait_for_lock(dir);
            true
        }
        _ => false,
    };
    let app = Arc::new(App::new(args)?);
    let ex = Arc::new(smol::Executor::new());
    let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
    let mut workers = Vec::new();
    for i in 1..threads {
        let ex = Arc::clone(&ex);
        let stop_rx = stop_rx.clone();
        workers.push(
            std::thread::Builder::new()
                .name(format!("ssecast-{i}"))
                .spawn(move || {
                    // Runs tasks until the stop channel closes.
                    let _ = smol::block_on(ex.run(stop_rx.recv()));
                })?,
        );
    }
    on_listening(addr);
    log::info!(
        "ssecast {} listening on {scheme}://{addr} ({}, {threads} threads, pid {}{})",
        env!("CARGO_PKG_VERSION"),
        app.describe(),
        std::process::id(),
        match origin {
            Origin::Bound => String::new(),
            Origin::Systemd => ", socket from systemd".into(),
            Origin::Handoff(from) => format!(", socket from process {from}"),
        },
    );
    if let Origin::Handoff(from) = origin {
        if !handed_over {
            handoff::take_over(from);
        }
    }
    handoff::notify("READY=1");
    smol::block_on(drive(&ex, async {
        for task in Arc::clone(&app).tasks() {
            ex.spawn(task).detach();
        }
        let successor = Arc::new(AtomicBool::new(false));
        let stopped = async {
            use async_signal::Signal;
            use futures_lite::StreamExt as _;
            loop {
                match signals.next().await {
                    Some(Ok(Signal::Usr2)) => restart(listener.get_ref(), &successor),
                    Some(Ok(Signal::Hup)) => reload(certs.as_deref()),
                    Some(Ok(signal)) => {
                        log::info!("{signal:?} received: shutting down");
                        break;
                    }
                    _ => {
                        log::info!("signal stream ended: shutting down");
                        break;
                    }
                }
            }
        };
        let (stopping_tx, stopping) = async_channel::bounded::<()>(1);
        let live = Arc::new(AtomicUsize::new(0));
        let front = Front {
            app: Arc::clone(&app),
            ex: Arc::clone(&ex),
            tls,
            stopping,
            live: Arc::clone(&live),
        };
        let accepting = accept_loop(&front, &listener);
        future::or(stopped, accepting).await;
        drop(listener);
        app.shutdown_streams();
        // HTTP/2 connections send their GOAWAY.
        drop(stopping_tx);
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        // Bounded by the grace period: streams end, and requests under way are answered.
        while (app.open_streams() > 0 || live.load(Ordering::Relaxed) > 0)
            && Instant::now() < deadline
        {
            Timer::after(Duration::from_millis(10)).await;
        }
    }));
    drop(stop_tx);
    for worker in workers {
        let _ = worker.join();
    }
    log::info!(
        "stopped ({} streams still open at exit)",
        app.open_streams()
    );
    Ok(())
}

/// `SIGUSR2`: starts the process that takes over (unless one is starting already); it
/// sends this one `SIGTERM` once it is ready. If it exits first, this one goes on serving.
fn restart(listener: &TcpListener, successor: &Arc<AtomicBool>) {
    if successor.swap(true, Ordering::SeqCst) {
        log::warn!("SIGUSR2: a new process is starting already");
        return;
    }
    match handoff::spawn_successor(listener) {
        Ok(mut child) => {
            let pid = child.id();
            log::info!("SIGUSR2: started process {pid} to take over");
            let successor = Arc::clone(successor);
            // Reaps it if it fails before taking over (this process is gone otherwise).
            let reaper = std::thread::Builder::new()
                .name("ssecast-successor".into())
                .spawn(move || {
                    let status = child.wait();
                    log::warn!(
                        "process {pid} exited before taking over ({}); still serving",
                        status.map_or_else(|e| e.to_string(), |s| s.to_string())
                    );
                    successor.store(false, Ordering::SeqCst);
                });
            if let Err(e) = reaper {
                log::warn!("cannot watch process {pid}: {e}");
            }
        }
        Err(e) => {
            successor.store(false, Ordering::SeqCst);
            log::error!("SIGUSR2: cannot start a new process: {e}; still serving");
        }
    }
}

/// `SIGHUP`: reads `--tls-cert` and `--tls-key` again; new handshakes use them, open
/// connections keep theirs. A file that does not load changes nothing.
fn reload(certs: Option<&tls::Certs>) {
    let Some(certs) = certs else {
        log::info!("SIGHUP: no --tls-cert to reload");
        return;
    };
    match certs.reload() {
        Ok(()) => log::info!("SIGHUP: certificate reloaded"),
        Err(e) => log::error!("SIGHUP: {e}; keeping the certificate in use"),
    }
}

/// Runs `main` and `ex`'s tasks on this thread. Like `ex.run(main)`, but it returns to
/// `block_on` (which then polls the sockets without blocking) every [`TASKS_PER_POLL`] tasks
/// instead of every 200, so a request that arrives during a long fan-out is noticed soon.
async fn drive<T>(ex: &smol::Executor<'_>, main: impl Future<Output = T>) -> T {
    let tasks = async {
        loop {
            let mut ran = 0;
            while ran < TASKS_PER_POLL && ex.try_tick() {
                ran += 1;
            }
            if ran < TASKS_PER_POLL {
                // Nothing left to run: sleep until a task is woken.
                ex.tick().await;
            } else {
                future::yield_now().await;
            }
        }
    };
    future::or(main, tasks).await
}

/// What every connection task needs of the server.
struct Front {
    app: Arc<App>,
    ex: Arc<smol::Executor<'static>>,
    tls: Option<TlsAcceptor>,
    /// Closed when the server stops (HTTP/2 connections then send GOAWAY).
    stopping: http2::Stopping,
    /// Connection tasks running: the shutdown waits (bounded) for requests under way.
    live: Arc<AtomicUsize>,
}

/// Counts a connection task while it lives.
struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn accept_loop(front: &Front, listener: &Async<TcpListener>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                front.app.counters.accepted.fetch_add(1, Ordering::Relaxed);
                // Small frames must leave at once, not wait for Nagle.
                let _ = stream.get_ref().set_nodelay(true);
                let socket = Arc::new(stream);
                let info = ConnInfo {
                    peer,
                    socket: Some(Arc::clone(&socket)),
                };
                let app = Arc::clone(&front.app);
                let ex = Arc::clone(&front.ex);
                let tls = front.tls.clone();
                let stopping = front.stopping.clone();
                front.live.fetch_add(1, Ordering::Relaxed);
                let live = Live(Arc::clone(&front.live));
                front
                    .ex
                    .spawn(async move {
                        let _live = live;
                        let serving = async {
                            match tls {
                                // Boxed: a plain connection's task stays as small as it was.
                                Some(tls) => {
                                    Box::pin(serve_tls(
                                        &app,
                                        &ex,
                                        tls,
                                        socket,
                                        info.clone(),
                                        stopping,
                                    ))
                                    .await
                                }
                                None => serve_plain(&app, &ex, socket, &info, stopping).await,
                            }
                        };
                        // A panic while serving one connection ends that connection only: its
                        // stream (if any) unsubscribes as it unwinds, the others go on.
                        let served = std::panic::AssertUnwindSafe(serving).catch_unwind().await;
                        if let Err(panic) = served {
                            app.counters.panics.fetch_add(1, Ordering::Relaxed);
                            log::error!(
                                "panic while serving {}: {}; connection closed",
                                info.peer,
                                panic_message(&*panic)
                            );
                        }
                    })
                    .detach();
            }
            Err(e) => {
                // Usually out of file descriptors: wait instead of spinning.
                log::error!("accept failed: {e}");
                Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A plain connection: HTTP/2 if it opens with the prior-knowledge preface, else HTTP/1.1.
async fn serve_plain(
    app: &Arc<App>,
    ex: &Arc<smol::Executor<'static>>,
    socket: Arc<Async<TcpStream>>,
    info: &ConnInfo,
    stopping: http2::Stopping,
) {
    match opens_with_preface(&socket).await {
        Some(true) => {
            let info = ConnInfo {
                peer: info.peer,
                // Its streams share the socket: ending one must not shut it down.
                socket: None,
            };
            Box::pin(http2::serve(app, ex, TcpIo(socket), info, stopping)).await
        }
        Some(false) => serve_connection(app, TcpIo(socket), info).await,
        None => {}
    }
}

/// Whether the client's first bytes are the HTTP/2 preface, looked at without taking them
/// (`peek`); `None` if it sent nothing within the header timeout or closed.
async fn opens_with_preface(socket: &Async<TcpStream>) -> Option<bool> {
    let look = async {
        let mut first = [0u8; http2::PREFACE.len()];
        loop {
            let n = socket.peek(&mut first).await.ok().filter(|&n| n > 0)?;
            if first[..n] != http2::PREFACE[..n] {
                return Some(false);
            }
            if n == first.len() {
                return Some(true);
            }
            // Part of the preface came: the rest is on its way (peek would return at once).
            Timer::after(Duration::from_millis(5)).await;
        }
    };
    look.or(async {
        Timer::after(HEADER_TIMEOUT).await;
        None
    })
    .await
}

/// What a panic said, when it said it with a string (as `panic!` and `expect` do).
pub(super) fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Serves a connection over TLS once its handshake is done, within [`HEADER_TIMEOUT`]. A
/// client that speaks plain HTTP to the port is told so in plain HTTP.
async fn serve_tls(
    app: &Arc<App>,
    ex: &Arc<smol::Executor<'static>>,
    tls: TlsAcceptor,
    socket: Arc<Async<TcpStream>>,
    info: ConnInfo,
    stopping: http2::Stopping,
) {
    let info = &info;
    let handshake = async {
        let mut first = [0u8; 1];
        if !matches!(socket.peek(&mut first).await, Ok(1)) {
            return Err(false);
        }
        if first[0] != tls::HANDSHAKE_RECORD {
            return Err(true);
        }
        tls.accept(TcpIo(Arc::clone(&socket))).await.map_err(|e| {
            app.count_bad_request();
            log::debug!("{}: TLS handshake failed: {e}", info.peer);
            false
        })
    };
    let timeout = async {
        Timer::after(HEADER_TIMEOUT).await;
        Err(false)
    };
    match handshake.or(timeout).await {
        Ok(stream) if stream.get_ref().1.alpn_protocol() == Some(b"h2") => {
            let info = ConnInfo {
                peer: info.peer,
                socket: None,
            };
            http2::serve(app, ex, stream, info, stopping).await
        }
        Ok(stream) => serve_connection(app, stream, info).await,
        Err(true) => {
            let refusal = Refusal::new(
                Status::BAD_REQUEST,
                "this port speaks HTTPS: use an https:// URL",
            );
            refuse_raw(TcpIo(socket), app, info, refusal).await;
        }
        Err(false) => {}
    }
}

/// A TCP socket shared with the subscriber's slot in the hub (which shuts it down to end a
/// blocked write).
#[derive(Debug, Clone)]
pub(crate) struct TcpIo(pub(crate) Arc<Async<TcpStream>>);

impl futures_lite::io::AsyncRead for TcpIo {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut &*self.0).poll_read(cx, buf)
    }
}

impl futures_lite::io::AsyncWrite for TcpIo {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut &*self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut &*self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut &*self.0).poll_flush(cx)
    }

    /// Ends the sending side (a FIN), so the client sees the end of a close-delimited
    /// answer at once (async-io's own `poll_close` only flushes).
    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(self.0.get_ref().shutdown(std::net::Shutdown::Write))
    }
}
