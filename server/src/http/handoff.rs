//! The listening socket across processes: taken from systemd (socket activation,
//! `LISTEN_FDS`) or from the ssecast process being replaced, and handed on to a new process
//! of the same binary on `SIGUSR2` (a zero-downtime restart); and `sd_notify` for systemd.
//!
//! The handoff, in order: the old process starts the new one with the listening socket
//! (a duplicate without `FD_CLOEXEC`, named by `LISTEN_FDS=1` and `LISTEN_FDS_FIRST_FD`)
//! and keeps accepting. The new one takes the socket and builds its state; then it tells
//! systemd its pid (`MAINPID=`), and the old one (`SIGTERM`) that it takes over. The old one
//! stops accepting, ends its streams and exits; its clients reconnect with `Last-Event-ID`
//! into the same socket, now served by the new process. The socket never closes, so no
//! connection attempt is refused: one made while neither accepts waits in its backlog.
//! With `--data-dir` the new process tells the old one before opening the directory, then
//! waits (at most [`LOCK_WAIT`]) for the old one to release `DIR/lock` by exiting.

use std::io;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Names the process a new one replaces (its pid); set by the old process, for the new.
const FROM: &str = "SSECAST_HANDOFF_FROM";
/// How long a new process waits for the old one to release `--data-dir`.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(30);

/// Where the listening socket came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Bound by this process.
    Bound,
    /// Passed by systemd (socket activation).
    Systemd,
    /// Handed over by the ssecast process with this pid, which this one replaces.
    Handoff(u32),
}

/// The socket passed in `LISTEN_FDS` (systemd, or an old ssecast), if any, and where it came
/// from. Reads and removes `LISTEN_FDS` and `LISTEN_PID` (so nothing this process starts
/// takes them for its own): it must run before any other thread starts, as it does, first
/// thing in [`super::listen::run`].
pub(crate) fn inherited() -> io::Result<Option<(TcpListener, Origin)>> {
    let from = std::env::var(FROM).ok().and_then(|pid| pid.parse().ok());
    let mut fds = listenfd::ListenFd::from_env();
    let Some(listener) = fds.take_tcp_listener(0)? else {
        return Ok(None);
    };
    listener.set_nonblocking(true)?;
    let origin = match from {
        // Only the parent that started us can hand over (a stale variable cannot).
        Some(pid) if parent_pid() == Some(pid) => Origin::Handoff(pid),
        _ => Origin::Systemd,
    };
    Ok(Some((listener, origin)))
}

fn parent_pid() -> Option<u32> {
    rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32)
}

/// Starts a new process of this binary with this process's arguments, handing it
/// `listener`. The binary is the one at the path this process was started from (after an
/// upgrade, the new one).
pub(crate) fn spawn_successor(listener: &TcpListener) -> io::Result<Child> {
    let mut exe = std::env::current_exe()?;
    // The running binary was replaced on disk (an upgrade): start the new file.
    if let Some(path) = exe.to_str().and_then(|p| p.strip_suffix(" (deleted)")) {
        exe = path.into();
    }
    // `dup` leaves the copy without FD_CLOEXEC, so the new process inherits it; this
    // process's own descriptor stays close-on-exec.
    let fd = rustix::io::dup(listener)?;
    let child = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("LISTEN_FDS", "1")
        .env(
            "LISTEN_FDS_FIRST_FD",
            std::os::fd::AsRawFd::as_raw_fd(&fd).to_string(),
        )
        .env_remove("LISTEN_PID")
        .env(FROM, std::process::id().to_string())
        .spawn();
    // The copy is the child's now; ours closes.
    drop(fd);
    child
}

/// Tells the process this one replaces that it takes over: systemd first learns the new
/// main pid (so the old one's exit is not the service's), then the old one gets `SIGTERM`.
pub(crate) fn take_over(from: u32) {
    notify(&format!("MAINPID={}", std::process::id()));
    let signalled = rustix::process::Pid::from_raw(from as i32)
        .ok_or(rustix::io::Errno::SRCH)
        .and_then(|pid| rustix::process::kill_process(pid, rustix::process::Signal::TERM));
    match signalled {
        Ok(()) => log::info!("taking over from process {from}"),
        Err(e) => log::warn!("could not tell process {from} to stop: {e}"),
    }
}

/// Waits until `dir`'s lock is free (the process this one replaces has exited), at most
/// [`LOCK_WAIT`]; the store then takes it.
pub(crate) fn wait_for_lock(dir: &Path) {
    let path = dir.join("lock");
    let deadline = Instant::now() + LOCK_WAIT;
    let mut said = false;
    while Instant::now() < deadline {
        let Ok(file) = std::fs::OpenOptions::new().write(true).open(&path) else {
            return;
        };
        match file.try_lock() {
            // Released at once (the file closes): the store locks it for good.
            Ok(()) => return,
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(_)) => return,
        }
        if !said {
            log::info!(
                "waiting for {} (the old process is stopping)",
                path.display()
            );
            said = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `state` to systemd's notification socket (`sd_notify`), if there is one.
pub(crate) fn notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = (|| {
        let datagram = std::os::unix::net::UnixDatagram::unbound()?;
        let bytes = socket.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            // An abstract socket name (Linux).
            use std::os::linux::net::SocketAddrExt as _;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            datagram.send_to_addr(state.as_bytes(), &addr)
        } else {
            datagram.send_to(state.as_bytes(), &socket)
        }
    })();
    if let Err(e) = sent {
        log::warn!("NOTIFY_SOCKET: cannot notify systemd: {e}");
    }
}
