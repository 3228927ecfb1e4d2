//! The request and response types every route sees, whatever the connection speaks: a
//! request parsed once (method, target, headers, the whole body), and a reply that is either
//! a response or an event stream.

use std::borrow::Cow;
use std::fmt;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use async_io::Async;

use crate::app::Feed;

/// A request method. Methods are case-sensitive (RFC 9110 9.1): `get` is not `GET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    Trace,
    Connect,
}

impl Method {
    const ALL: [(&'static str, Method); 9] = [
        ("GET", Method::Get),
        ("HEAD", Method::Head),
        ("POST", Method::Post),
        ("PUT", Method::Put),
        ("DELETE", Method::Delete),
        ("OPTIONS", Method::Options),
        ("PATCH", Method::Patch),
        ("TRACE", Method::Trace),
        ("CONNECT", Method::Connect),
    ];

    /// The method named exactly `name`; `Err(true)` if it names one only when upper-cased.
    pub(crate) fn parse(name: &str) -> Result<Method, bool> {
        match Method::ALL.iter().find(|(n, _)| *n == name) {
            Some((_, m)) => Ok(*m),
            None => Err(Method::ALL
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))),
        }
    }
}

/// The protocol a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    Http10,
    Http11,
}

/// A response status: the code and its reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status(pub(crate) u16);

impl Status {
    pub(crate) const OK: Status = Status(200);
    pub(crate) const NO_CONTENT: Status = Status(204);
    pub(crate) const BAD_REQUEST: Status = Status(400);
    pub(crate) const UNAUTHORIZED: Status = Status(401);
    pub(crate) const FORBIDDEN: Status = Status(403);
    pub(crate) const NOT_FOUND: Status = Status(404);
    pub(crate) const METHOD_NOT_ALLOWED: Status = Status(405);
    pub(crate) const REQUEST_TIMEOUT: Status = Status(408);
    pub(crate) const PAYLOAD_TOO_LARGE: Status = Status(413);
    pub(crate) const UNSUPPORTED_MEDIA_TYPE: Status = Status(415);
    pub(crate) const HEADERS_TOO_LARGE: Status = Status(431);
    pub(crate) const NOT_IMPLEMENTED: Status = Status(501);
    pub(crate) const SERVICE_UNAVAILABLE: Status = Status(503);

    /// The reason phrase of the status line.
    pub(crate) fn reason(self) -> &'static str {
        http_types::StatusCode::try_from(self.0).map_or("Unknown", |s| s.canonical_reason())
    }

    pub(crate) fn is_client_error(self) -> bool {
        (400..500).contains(&self.0)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.reason())
    }
}

/// Where a request's header fields are: name and value ranges into the bytes of its head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub(crate) name: (u32, u32),
    pub(crate) value: (u32, u32),
}

/// What the routes know about the connection a request came on.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    pub(crate) peer: SocketAddr,
    /// The TCP socket under the connection (none for an in-memory one): shutting it down
    /// makes a write blocked on a subscriber that stopped reading fail.
    /// Always none on HTTP/2, whose streams share the socket.
    pub(crate) socket: Option<Arc<Async<TcpStream>>>,
}

/// Where a request's header fields are, whichever protocol brought them.
#[derive(Debug, Clone, Copy)]
enum Fields<'a> {
    /// An HTTP/1.1 head: name and value ranges into its bytes (checked to be ASCII).
    Http1 { head: &'a [u8], fields: &'a [Field] },
    /// An HTTP/2 header list, decoded and checked by h2 (its values checked to be ASCII by
    /// [`super::http2`] before any route runs).
    Http2(&'a ::http::HeaderMap),
}

/// One request, parsed once, borrowed from the connection's buffers while a route runs.
/// Routes never learn which protocol it came in on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    pub(crate) method: Method,
    /// The path as sent (percent-encoded), without the query.
    pub(crate) path: &'a str,
    /// The query string without its `?` (empty when there is none).
    pub(crate) query: &'a str,
    fields: Fields<'a>,
    /// The whole body (de-chunked), within `--max-body`.
    pub(crate) body: &'a [u8],
    pub(crate) conn: &'a ConnInfo,
}

impl<'a> Request<'a> {
    pub(crate) fn new(
        method: Method,
        path: &'a str,
        query: &'a str,
        head: &'a [u8],
        fields: &'a [Field],
        body: &'a [u8],
        conn: &'a ConnInfo,
    ) -> Request<'a> {
        Request {
            method,
            path,
            query,
            fields: Fields::Http1 { head, fields },
            body,
            conn,
        }
    }

    /// A request that came on an HTTP/2 stream, its headers as h2 decoded them.
    pub(crate) fn http2(
        method: Method,
        path: &'a str,
        query: &'a str,
        headers: &'a ::http::HeaderMap,
        body: &'a [u8],
        conn: &'a ConnInfo,
    ) -> Request<'a> {
        Request {
            method,
            path,
            query,
            fields: Fields::Http2(headers),
            body,
            conn,
        }
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub(crate) fn headers(&self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let (http1, http2) = match self.fields {
            Fields::Http1 { head, fields } => (Some((head, fields)), None),
            Fields::Http2(map) => (None, Some(map)),
        };
        let http1 = http1.into_iter().flat_map(move |(head, fields)| {
            fields
                .iter()
                .filter(move |f| slice(head, f.name).eq_ignore_ascii_case(name))
                .map(move |f| slice(head, f.value))
        });
        // `get_all` lower-cases the name; a name no header can have finds nothing.
        let http2 = http2
            .into_iter()
            .flat_map(move |map| map.get_all(name).iter().map(|v| v.to_str().unwrap_or("")));
        http1.chain(http2)
    }

    /// The last value of header `name`, if any.
    pub(crate) fn header(&self, name: &'a str) -> Option<&'a str> {
        self.headers(name).last()
    }

    pub(crate) fn peer(&self) -> SocketAddr {
        self.conn.peer
    }
}

/// The text at `range` of a head whose fields were checked to be ASCII.
fn slice(head: &[u8], (start, end): (u32, u32)) -> &str {
    head.get(start as usize..end as usize)
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or("")
}

/// A response body.
#[derive(Debug)]
pub(crate) enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// A file, streamed from a blocking thread; its length was read when it was opened.
    File(std::fs::File, u64),
}

impl Body {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::File(_, len) => *len,
        }
    }
}

/// A header value: most are constants.
pub(crate) type Value = Cow<'static, str>;

/// A complete response: status, headers and body (its length is known).
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: Status,
    pub(crate) headers: Vec<(&'static str, Value)>,
    pub(crate) body: Body,
}

impl Response {
    pub(crate) fn new(status: Status) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    /// A plain-text response whose body is `reason` on one line (control characters from a
    /// peer escaped, so no reason can span lines).
    pub(crate) fn text(status: Status, reason: impl fmt::Display) -> Response {
        let mut body = one_line(&reason.to_string());
        body.push('\n');
        Response::new(status)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_header("Cache-Control", "no-cache")
            .with_body(body.into_bytes())
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<Value>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn with_body(mut self, body: Vec<u8>) -> Response {
        self.body = Body::Bytes(body);
        self
    }
}

/// `reason` with its control characters escaped: parser errors quote the peer's input (an
/// unknown JSON field may hold a CR or LF), and a reason is one line.
pub(crate) fn one_line(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    for c in reason.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// What a route answers.
#[derive(Debug)]
pub(crate) enum Reply {
    Response(Response),
    /// `200 text/event-stream` with these extra headers, then the subscriber's frames.
    Events(Vec<(&'static str, Value)>, Feed),
}

impl From<Response> for Reply {
    fn from(res: Response) -> Reply {
        Reply::Response(res)
    }
}
