//! Command-line flags, their `SSECAST_*` environment variables, and duration parsing.

mod jwt;

pub(crate) use jwt::{Alg, JwtFlags, KeyText};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ssecast::{HubConfig, Limits, Millis, Overflow};

/// `ssecast`: a Server-Sent Events broadcaster, and client tools that speak the same stream.
#[derive(Debug, Parser)]
#[command(name = "ssecast", version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `serve`, accepted without the subcommand too.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
// Parsed once at start: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the SSE server (the default).
    Serve(ServeArgs),
    /// Read an SSE byte stream on stdin and print one JSON line per event.
    Decode(DecodeArgs),
    /// Subscribe to an SSE endpoint and print events as they arrive, reconnecting with
    /// Last-Event-ID.
    Listen(ListenArgs),
    /// Publish one event to a server and print its id.
    Publish(PublishArgs),
}

/// Flags of `ssecast serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (IP:PORT; port 0 picks a free port).
    #[arg(long, env = "SSECAST_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Publish `tick N` to the default topic this often, e.g. `2s`, `100ms` (`0` disables).
    #[arg(long, env = "SSECAST_TICK", default_value = "2s", value_parser = parse_duration)]
    pub tick: Duration,

    /// Send a `: ping` comment to a stream idle this long (`0` disables).
    #[arg(long, env = "SSECAST_KEEPALIVE", default_value = "20s", value_parser = parse_duration)]
    pub keepalive: Duration,

    /// Reconnection time announced to clients with their first event, a `retry:` line in its
    /// block (`0`: none).
    #[arg(long, env = "SSECAST_RETRY", default_value = "3s", value_parser = parse_duration)]
    pub retry: Duration,

    /// Close an event stream whose writes made no progress for this long: its client stopped
    /// reading; it can reconnect and resume with Last-Event-ID (`0` disables).
    #[arg(long, env = "SSECAST_WRITE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub write_timeout: Duration,

    /// Close a request whose body stops arriving: no byte of it for this long (then 408), as
    /// nginx's `client_body_timeout` does.
    #[arg(long, env = "SSECAST_BODY_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    pub body_timeout: Duration,

    /// Frames each subscriber may have queued.
    #[arg(long, env = "SSECAST_QUEUE", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub queue: u32,

    /// What a full subscriber queue does with one more event: `drop-newest` (the event is
    /// lost for that subscriber), `drop-oldest` (its oldest queued event is), or `disconnect`
    /// (the stream is closed; the client reconnects and replays from its Last-Event-ID).
    #[arg(long, env = "SSECAST_OVERFLOW", default_value = "drop-newest", value_parser = parse_overflow)]
    pub overflow: Overflow,

    /// Events kept per topic for Last-Event-ID replay (`0` disables replay).
    #[arg(long, env = "SSECAST_HISTORY", default_value_t = 1000)]
    pub history: usize,

    /// Encoded bytes kept per topic for replay.
    #[arg(long, env = "SSECAST_HISTORY_BYTES", default_value_t = 4 << 20)]
    pub history_bytes: usize,

    /// Memory of the replay history of all topics together: each event's encoded bytes
    /// (once) plus 160 B for its index; past it the oldest events of the whole hub are let
    /// go of first (a client resuming from before them gets `ssecast.missed`).
    #[arg(long, env = "SSECAST_HISTORY_TOTAL_BYTES", default_value_t = 256 << 20)]
    pub history_total_bytes: usize,

    /// Topics kept; past it the least recently published topic without subscribers is
    /// forgotten, history included.
    #[arg(long, env = "SSECAST_MAX_TOPICS", default_value_t = 10_000)]
    pub max_topics: usize,

    /// Subscribers at once; past it `GET /events` answers 503 with a Retry-After.
    #[arg(long, env = "SSECAST_MAX_SUBSCRIBERS", default_value_t = 10_000)]
    pub max_subscribers: usize,

    /// Require `Authorization: Bearer <TOKEN>` on `POST /publish`. Without it, only loopback
    /// peers may publish.
    #[arg(long, env = "SSECAST_PUBLISH_TOKEN", hide_env_values = true)]
    pub publish_token: Option<Secret>,

    /// Require a token on `GET /events`: `Authorization: Bearer <TOKEN>`, or the cookie
    /// `ssecast_token=<TOKEN>` (what a browser's EventSource can send).
    #[arg(long, env = "SSECAST_SUBSCRIBE_TOKEN", hide_env_values = true)]
    pub subscribe_token: Option<Secret>,

    /// Mercure JWT verification (`--jwt-key` and the rest), for `/.well-known/mercure` and,
    /// once a key is configured, `/events` and `/publish` too.
    #[command(flatten)]
    pub(crate) jwt: JwtFlags,

    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first).
    #[arg(long, env = "SSECAST_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of `--tls-cert` (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "SSECAST_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// An origin allowed to use the API from a browser (repeatable; `*` allows any). None by
    /// default. The environment variable takes a comma-separated list.
    #[arg(
        long = "cors-origin",
        env = "SSECAST_CORS_ORIGIN",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,

    /// Directory served at `/` [default: `./www` if it holds an `index.html`, else the demo
    /// page built into the binary].
    #[arg(long, env = "SSECAST_WWW")]
    pub www: Option<PathBuf>,

    /// Largest `POST /publish` body accepted, in bytes (larger gets 413).
    #[arg(long, env = "SSECAST_MAX_BODY", default_value_t = 1 << 20)]
    pub max_body: usize,

    /// HTTP/2: streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS;
    /// clients queue requests past it, and a stream opened anyway is refused with
    /// REFUSED_STREAM, which a client may retry).
    #[arg(long, env = "SSECAST_H2_MAX_STREAMS", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub h2_max_streams: u32,

    /// Executor threads (`0`: one per CPU).
    #[arg(long, env = "SSECAST_THREADS", default_value_t = 0)]
    pub threads: usize,

    /// Cluster mode: share events with other nodes through Redis Streams at this URL
    /// (`redis://HOST:PORT`). Event ids become stream ids, the same on every node.
    #[arg(long, env = "SSECAST_REDIS", value_parser = parse_redis_url)]
    pub redis: Option<String>,

    /// Keep the replay history in this directory, so a restarted server replays what
    /// reconnecting clients missed and its ids continue. A publish is answered once its
    /// event is on disk. (In cluster mode the history lives in Redis.)
    #[arg(long, env = "SSECAST_DATA_DIR", conflicts_with = "redis")]
    pub data_dir: Option<PathBuf>,
}

/// Where static files come from.
#[derive(Debug, Clone)]
pub(crate) enum Www {
    /// A directory (its files as they are on disk, `pkg/` with the wasm package included).
    Dir(PathBuf),
    /// The demo page compiled into the binary, without the wasm package.
    Embedded,
}

impl std::fmt::Display for Www {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Www::Dir(dir) => write!(f, "{}", dir.display()),
            Www::Embedded => {
                f.write_str("the page built into the binary (no wasm package: pass --www DIR)")
            }
        }
    }
}

/// A token. Its `Debug` hides it, so no log line or error message can carry it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The token itself, for comparing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    /// Never fails: a bad token is refused by [`ServeArgs::check`], whose message does not
    /// repeat it (clap's would).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl ServeArgs {
    /// Refuses flag values clap cannot check: tokens that could never match (they travel in a
    /// header and a cookie). The message names the flag, never the value.
    pub fn check(&self) -> Result<(), String> {
        for (flag, token) in [
            ("--publish-token", &self.publish_token),
            ("--subscribe-token", &self.subscribe_token),
        ] {
            let Some(token) = token else { continue };
            // Visible ASCII but the cookie separators `"` `,` `;` `\`.
            let fits = |b: u8| b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\');
            if token.0.is_empty() || !token.0.bytes().all(fits) {
                return Err(format!(
                    "{flag}: use visible ASCII without spaces, quotes, commas, semicolons or backslashes"
                ));
            }
        }
        Ok(())
    }

    /// The hub configuration these flags describe.
    pub fn hub_config(&self) -> HubConfig {
        // `HubConfig` is non-exhaustive: start from the defaults and set what flags decide.
        let mut config = HubConfig::default();
        config.queue_capacity = self.queue as usize;
        config.overflow = self.overflow;
        config.keepalive = nonzero_millis(self.keepalive);
        config.retry = nonzero_millis(self.retry);
        config.history_events = self.history;
        config.history_bytes = self.history_bytes;
        config.history_total_bytes = self.history_total_bytes;
        config.max_subscribers = self.max_subscribers;
        config.max_topics = self.max_topics;
        // Ids keep increasing across restarts, and a client's id from an earlier run is
        // never taken for one of this run's (see `HubConfig::first_seq`).
        config.first_seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2));
        config
    }

    /// Where static files come from: `--www`, else `./www` if it holds an `index.html`
    /// (the server runs in the repository), else the page built into the binary.
    pub(crate) fn www_source(&self) -> Www {
        match &self.www {
            Some(dir) => Www::Dir(dir.clone()),
            None if std::path::Path::new("www/index.html").is_file() => {
                Www::Dir(PathBuf::from("www"))
            }
            None => Www::Embedded,
        }
    }
}

/// The decoder's limits, flags of `ssecast decode` and `ssecast listen`. A line or an event
/// over its limit is skipped (with a warning on stderr), the rest of the stream is decoded.
#[derive(Debug, Clone, Copy, Args)]
pub struct LimitArgs {
    /// The longest line accepted, in bytes, its field name included.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_line,
          value_parser = parse_byte_count)]
    pub max_line: usize,
    /// The most data one event may hold, in bytes (its lines joined by LF).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_event,
          value_parser = parse_byte_count)]
    pub max_event: usize,
}

impl LimitArgs {
    /// The limits these flags describe.
    pub fn limits(&self) -> Limits {
        Limits {
            max_line: self.max_line,
            max_event: self.max_event,
        }
    }
}

/// Flags of `ssecast decode`.
#[derive(Debug, Clone, Args)]
pub struct DecodeArgs {
    /// The decoder's limits.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Flags of `ssecast listen`.
#[derive(Debug, Clone, Args)]
pub struct ListenArgs {
    /// The stream to subscribe to, e.g. `http://127.0.0.1:8080/events?topic=news`.
    pub url: String,
    /// The decoder's limits.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Print one JSON object per event (as `ssecast decode` does) instead of a readable form.
    #[arg(long)]
    pub json: bool,
    /// Give up after this many consecutive failed connection attempts (`0`: never).
    #[arg(long, default_value_t = 0)]
    pub max_retries: u32,
    /// Bearer token for a server started with `--subscribe-token`.
    #[arg(long, env = "SSECAST_SUBSCRIBE_TOKEN", hide_env_values = true)]
    pub token: Option<Secret>,
    /// Certificate authorities (PEM) to trust for `https://` [default: `SSL_CERT_FILE`, or
    /// the system bundle `/etc/ssl/certs/ca-certificates.crt`].
    #[arg(long)]
    pub ca: Option<PathBuf>,
}

/// Flags of `ssecast publish`.
#[derive(Debug, Clone, Args)]
pub struct PublishArgs {
    /// The server, e.g. `http://127.0.0.1:8080` (`/publish` is added when no path is given).
    pub url: String,
    /// The event's data.
    pub data: String,
    /// The event type.
    #[arg(long)]
    pub event: Option<String>,
    /// The topic (the default topic when omitted).
    #[arg(long)]
    pub topic: Option<String>,
    /// Bearer token for a server started with `--publish-token`.
    #[arg(long, env = "SSECAST_PUBLISH_TOKEN", hide_env_values = true)]
    pub token: Option<Secret>,
    /// Certificate authorities (PEM) to trust for `https://` [default: `SSL_CERT_FILE`, or
    /// the system bundle `/etc/ssl/certs/ca-certificates.crt`].
    #[arg(long)]
    pub ca: Option<PathBuf>,
}

fn nonzero_millis(d: Duration) -> Option<Millis> {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    (ms > 0).then_some(Millis(ms))
}

fn parse_redis_url(s: &str) -> Result<String, String> {
    if !s.starts_with("redis://") {
        return Err(format!("{s:?}: expected redis://HOST:PORT"));
    }
    redis::Client::open(s)
        .map(|_| s.to_owned())
        .map_err(|e| format!("{s:?}: {e}"))
}

/// A number of bytes, at least 1.
fn parse_byte_count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?}: expected a number of bytes")),
    }
}

fn parse_overflow(s: &str) -> Result<Overflow, String> {
    s.parse::<Overflow>().map_err(|e| e.to_string())
}

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!("{s:?}: must be more than 0")),
        d => Ok(d),
    }
}

/// `d` as the flags write it: `10s`, `1500ms`.
pub(crate) fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Parses `0`, or a whole number followed by `ms`, `s`, `m` or `h`.
///
/// ```
/// use std::time::Duration;
/// use ssecast_server::parse_duration;
/// assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
/// assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
/// assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
/// assert!(parse_duration("2").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit, like 2s or 100ms"))?;
    let ms = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "" => return Err(format!("{s:?}: missing unit (ms, s, m or h)")),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m or h)")),
    };
    ms.map(Duration::from_millis)
        .ok_or_else(|| format!("{s:?}: too long"))
}
