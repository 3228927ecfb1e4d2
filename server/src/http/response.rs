//! Response heads on the wire (RFC 9112 4 and 6): the status line, the route's headers, how
//! the body is delimited, and whether the connection closes after it.

use std::io::Write as _;

use super::message::{Response, Value};

/// Appends the head of `res` to `out`: its body is delimited by `Content-Length` (none for
/// 1xx, 204 and 304), and `Connection: close` says when the connection ends after it.
pub(crate) fn write_head(out: &mut Vec<u8>, res: &Response, close: bool) {
    let status = res.status;
    let _ = write!(out, "HTTP/1.1 {} {}\r\n", status.0, status.reason());
    for (name, value) in &res.headers {
        push_field(out, name, value);
    }
    if !(matches!(status.0, 100..=199 | 204 | 304)) {
        let _ = write!(out, "Content-Length: {}\r\n", res.body.len());
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends the head of an event stream: `200 text/event-stream`, never cached or buffered
/// by a proxy, chunked (HTTP/1.1) or delimited by the connection's end (HTTP/1.0), which
/// closes afterwards (the stream reads and drops what the client sends, so no other request
/// can follow on it).
pub(crate) fn events_head(out: &mut Vec<u8>, headers: &[(&'static str, Value)], chunked: bool) {
    out.extend_from_slice(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\n",
    );
    for (name, value) in headers {
        push_field(out, name, value);
    }
    if chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
}

fn push_field(out: &mut Vec<u8>, name: &str, value: &Value) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    // Values come from the routes; a CR or LF in one would split the head, so it is dropped.
    out.extend(value.bytes().filter(|&b| b != b'\r' && b != b'\n'));
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::super::message::Status;
    use super::*;

    #[test]
    fn heads_say_how_the_body_ends() {
        let check = |res: Response, close: bool, expected: &str| {
            let mut out = Vec::new();
            write_head(&mut out, &res, close);
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        };
        check(
            Response::text(Status::OK, "ok"),
            false,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-cache\r\nContent-Length: 3\r\n\r\n",
        );
        check(
            Response::new(Status::NO_CONTENT).with_header("Allow", "GET"),
            true,
            "HTTP/1.1 204 No Content\r\nAllow: GET\r\nConnection: close\r\n\r\n",
        );
        check(
            Response::new(Status::OK).with_header("X", "a\r\nInjected: 1"),
            false,
            "HTTP/1.1 200 OK\r\nX: aInjected: 1\r\nContent-Length: 0\r\n\r\n",
        );
    }
}
