//! HTTP/1.1 responses read off the front of a buffer: the answers to the publishers' POSTs,
//! one after another on a keep-alive connection (several at once when pipelined).

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use crate::chunked::Chunked;

/// The longest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// The value of the response header `name` (any case), lowercased, if present.
pub(crate) fn header_value(headers: &[httparse::Header<'_>], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
}

/// A complete response at the front of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// Bytes of the buffer it takes, head and body: the next response starts there.
    pub(crate) len: usize,
    body: Framed,
}

/// Where the body is in the buffer, and how it is framed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Framed {
    Plain(Range<usize>),
    Chunked(Range<usize>),
}

impl Response {
    /// The body, given the buffer the response was parsed from (de-chunked if need be).
    pub(crate) fn body<'a>(&self, buf: &'a [u8]) -> Cow<'a, [u8]> {
        match &self.body {
            Framed::Plain(range) => Cow::Borrowed(&buf[range.clone()]),
            Framed::Chunked(range) => {
                let mut body = Vec::new();
                // Parsed once already, so it cannot fail now.
                let _ = Chunked::default().feed(&buf[range.clone()], |p| body.extend_from_slice(p));
                Cow::Owned(body)
            }
        }
    }
}

/// Why the bytes are not a response this client can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResponseError {
    /// Not an HTTP/1.x response head.
    Head(String),
    /// The head is longer than 64 KiB.
    HeadTooLong,
    /// A `Content-Length` that is not a number.
    Length,
    /// Neither a length nor chunked framing: the body ends when the connection does, so the
    /// connection cannot carry another request.
    NoLength,
    /// Broken chunked framing.
    Framing,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Head(e) => write!(f, "bad response head: {e}"),
            ResponseError::HeadTooLong => f.write_str("response head too long"),
            ResponseError::Length => f.write_str("bad Content-Length"),
            ResponseError::NoLength => f.write_str("response without length"),
            ResponseError::Framing => f.write_str("bad chunked framing"),
        }
    }
}

impl std::error::Error for ResponseError {}

/// The response at the front of `buf`: `None` until all of it has arrived.
pub(crate) fn parse(buf: &[u8]) -> Result<Option<Response>, ResponseError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => return Ok(None),
        Ok(httparse::Status::Partial) => return Err(ResponseError::HeadTooLong),
        Err(e) => return Err(ResponseError::Head(e.to_string())),
    };
    let status = response.code.unwrap_or(0);
    let header = |name: &str| header_value(response.headers, name);
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut chunked = Chunked::default();
        let used = chunked
            .feed(&buf[head_len..], |_| {})
            .map_err(|_| ResponseError::Framing)?;
        if !chunked.is_done() {
            return Ok(None);
        }
        let end = head_len + used;
        return Ok(Some(Response {
            status,
            len: end,
            body: Framed::Chunked(head_len..end),
        }));
    }
    let length = match header("content-length") {
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            v.parse::<usize>().map_err(|_| ResponseError::Length)?
        }
        Some(_) => return Err(ResponseError::Length),
        None if status == 204 || status == 304 => 0,
        None => return Err(ResponseError::NoLength),
    };
    let end = head_len.checked_add(length).ok_or(ResponseError::Length)?;
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some(Response {
        status,
        len: end,
        body: Framed::Plain(head_len..end),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(status, length, body)` of a complete first response, or why there is none.
    type Expected<'a> = Result<Option<(u16, usize, &'a [u8])>, ResponseError>;

    /// The first response in `input`, fed whole and then every prefix (which must be
    /// incomplete, or the same response).
    fn check(input: &[u8], expected: Expected<'_>) {
        let got =
            |buf: &[u8]| parse(buf).map(|r| r.map(|r| (r.status, r.len, r.body(buf).into_owned())));
        let expected = expected.map(|r| r.map(|(s, l, b)| (s, l, b.to_vec())));
        assert_eq!(got(input), expected, "{:?}", String::from_utf8_lossy(input));
        if let Ok(Some((_, len, _))) = &expected {
            for cut in 0..*len {
                assert_eq!(got(&input[..cut]), Ok(None), "cut at {cut}");
            }
        }
    }

    #[test]
    fn responses() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{\"id\":\"1\"}";
        check(ok, Ok(Some((200, ok.len(), b"{\"id\":\"1\"}"))));
        // Pipelined: the first response ends where the second starts.
        let two = b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nabHTTP/1.1 200 OK\r\n";
        check(two, Ok(Some((201, two.len() - 17, b"ab"))));
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nnext";
        check(chunked, Ok(Some((200, chunked.len() - 4, b"abc"))));
        let empty = b"HTTP/1.1 204 No Content\r\n\r\n";
        check(empty, Ok(Some((204, empty.len(), b""))));
        check(
            b"HTTP/1.1 200 OK\r\n\r\nuntil close",
            Err(ResponseError::NoLength),
        );
        check(
            b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
            Err(ResponseError::Length),
        );
        check(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            Err(ResponseError::Framing),
        );
        assert!(matches!(
            parse(b"SSH-2.0\r\n\r\n"),
            Err(ResponseError::Head(_))
        ));
        let long = [b"HTTP/1.1 200 OK\r\nX: ".as_slice(), &[b'a'; MAX_HEAD]].concat();
        check(&long, Err(ResponseError::HeadTooLong));
    }
}
