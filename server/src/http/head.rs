//! Request heads: where one ends in the bytes read so far, and everything checked about it
//! before any route sees it (RFC 9110 and 9112): the request line, the method (case-sensitive),
//! the target, one `Host`, header values in ASCII, how the body is framed.

use super::message::{Field, Method, Status, Version};
use super::Refusal;

/// The longest request head accepted.
pub(crate) const MAX_HEAD: usize = 8 * 1024;
/// Most header fields in one head.
const MAX_FIELDS: usize = 128;

/// How a request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    None,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A request head that passed the checks. Ranges are offsets into the head's bytes.
#[derive(Debug)]
pub(crate) struct Head {
    /// Length of the head, its blank line included.
    pub(crate) len: usize,
    pub(crate) method: Method,
    pub(crate) version: Version,
    pub(crate) path: (u32, u32),
    pub(crate) query: (u32, u32),
    pub(crate) framing: Framing,
    /// `Expect: 100-continue`.
    pub(crate) expect_continue: bool,
    /// The connection closes after this request (`Connection: close`, or HTTP/1.0).
    pub(crate) close: bool,
}

/// Where the head that starts `bytes` ends (its length), if it is all there; refuses a head
/// over [`MAX_HEAD`] and lines that end in a bare LF. `scanned` is how much was searched
/// before, so a head trickling in is not searched again from its start.
pub(crate) fn find_end(bytes: &[u8], scanned: usize) -> Result<Option<usize>, Refusal> {
    let from = scanned.saturating_sub(3);
    let window = &bytes[from.min(bytes.len())..bytes.len().min(MAX_HEAD + 4)];
    if let Some(i) = memchr::memmem::find(window, b"\r\n\r\n") {
        return Ok(Some(from + i + 4));
    }
    let searched = &bytes[..bytes.len().min(MAX_HEAD + 4)];
    if memchr::memmem::find(searched, b"\n\n").is_some() {
        return Err(Refusal::new(
            Status::BAD_REQUEST,
            "request lines must end with CRLF",
        ));
    }
    if bytes.len() > MAX_HEAD {
        return Err(too_large());
    }
    Ok(None)
}

fn too_large() -> Refusal {
    Refusal::new(
        Status::HEADERS_TOO_LARGE,
        format!("request head larger than {MAX_HEAD} bytes"),
    )
}

/// Parses and checks the head `bytes` (exactly the head, as [`find_end`] delimited it),
/// recording its header fields in `fields`. `max_body` is `--max-body`.
pub(crate) fn parse(
    bytes: &[u8],
    max_body: usize,
    fields: &mut Vec<Field>,
) -> Result<Head, Refusal> {
    let bad = |reason: String| Refusal::new(Status::BAD_REQUEST, reason);
    if bytes.len() > MAX_HEAD {
        return Err(too_large());
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(bad("incomplete request head".into())),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal::new(
                Status::HEADERS_TOO_LARGE,
                format!("more than {MAX_FIELDS} header fields"),
            ))
        }
        Err(e) => return Err(bad(format!("malformed request: {e}"))),
    }
    let version = match req.version {
        Some(1) => Version::Http11,
        Some(0) => Version::Http10,
        _ => {
            return Err(Refusal::new(
                Status(505),
                "only HTTP/1.1 and HTTP/1.0 are supported",
            ))
        }
    };
    let name = req.method.unwrap_or_default();
    let method = Method::parse(name).map_err(|case| match case {
        true => bad(format!(
            "method {name:?} is not {:?}: methods are case-sensitive",
            name.to_ascii_uppercase()
        )),
        false => Refusal::new(Status::NOT_IMPLEMENTED, format!("unknown method {name:?}")),
    })?;
    let target = req.path.unwrap_or_default();
    let offset = |s: &str| (s.as_ptr() as usize - bytes.as_ptr() as usize) as u32;
    let (path, query) = split_target(target)
        .ok_or_else(|| bad("the request target must be a path or an absolute URL".into()))?;
    let path = (offset(path), offset(path) + path.len() as u32);
    let query = match query {
        Some(q) => (offset(q), offset(q) + q.len() as u32),
        None => (path.1, path.1),
    };

    fields.clear();
    let mut hosts = 0;
    let mut content_length = None;
    let mut chunked = false;
    let mut expect_continue = false;
    let mut close = version == Version::Http10;
    for h in req.headers.iter() {
        let Some(value) = std::str::from_utf8(h.value).ok().filter(|v| v.is_ascii()) else {
            return Err(bad(format!("header {} is not ASCII", h.name)));
        };
        let value = value.trim_matches([' ', '\t']);
        let name = h.name;
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            if hosts > 1 {
                return Err(bad("more than one Host header".into()));
            }
            if !valid_host(value) {
                return Err(bad("invalid Host header".into()));
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            // Digits only (RFC 9112 6.3): `+5` or `5, 5` parse differently elsewhere, and a
            // proxy that reads another length than ours lets a request be smuggled past it.
            let n: u64 = value
                .parse()
                .ok()
                .filter(|_| !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| bad("invalid Content-Length".into()))?;
            if content_length.is_some_and(|m| m != n) {
                return Err(bad("conflicting Content-Length headers".into()));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if version == Version::Http10 || !value.eq_ignore_ascii_case("chunked") || chunked {
                return Err(Refusal::new(
                    Status::NOT_IMPLEMENTED,
                    "only Transfer-Encoding: chunked is supported",
                ));
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue |= value.eq_ignore_ascii_case("100-continue");
        } else if name.eq_ignore_ascii_case("connection") {
            close |= value
                .split(',')
                .any(|token| token.trim().eq_ignore_ascii_case("close"));
        }
        fields.push(Field {
            name: (offset(name), offset(name) + name.len() as u32),
            value: (offset(value), offset(value) + value.len() as u32),
        });
    }
    if version == Version::Http11 && hosts == 0 {
        return Err(bad("missing Host header".into()));
    }
    let framing = match (content_length, chunked) {
        (Some(_), true) => return Err(bad("both Content-Length and Transfer-Encoding".into())),
        (Some(n), false) if n > max_body as u64 => {
            return Err(Refusal::new(
                Status::PAYLOAD_TOO_LARGE,
                format!("body larger than {max_body} bytes"),
            ))
        }
        (Some(0) | None, false) => Framing::None,
        (Some(n), false) => Framing::Length(n),
        (None, true) => Framing::Chunked,
    };
    Ok(Head {
        len: bytes.len(),
        method,
        version,
        path,
        query,
        framing,
        expect_continue,
        close,
    })
}

/// The path and query of a request target in origin form (`/p?q`) or absolute form
/// (`http://host/p?q`, which servers must accept); `None` for anything else. The path is
/// empty for `http://host` (the caller reads it as `/`).
fn split_target(target: &str) -> Option<(&str, Option<&str>)> {
    if !target.is_ascii() {
        return None;
    }
    let path_and_query = if target.starts_with('/') {
        target
    } else {
        let rest = target
            .strip_prefix("http://")
            .or_else(|| target.strip_prefix("https://"))?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if end == 0 || !valid_host(&rest[..end]) {
            return None;
        }
        &rest[end..]
    };
    let without_fragment =
        &path_and_query[..path_and_query.find('#').unwrap_or(path_and_query.len())];
    Some(match without_fragment.find('?') {
        Some(i) => (&without_fragment[..i], Some(&without_fragment[i + 1..])),
        None => (without_fragment, None),
    })
}

/// A `Host` value: a registered name, IPv4 or bracketed IPv6 address, and an optional port
/// (RFC 9110 7.2); empty is allowed (RFC 9112 3.2: a target without authority).
fn valid_host(host: &str) -> bool {
    host.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'.' | b'-'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'%'
                    | b'['
                    | b']'
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(head: &str, expected: Result<(&str, &str, Framing), u16>) {
        let mut fields = Vec::new();
        let got = parse(head.as_bytes(), 1000, &mut fields).map(|h| {
            let s = |(a, b): (u32, u32)| &head[a as usize..b as usize];
            (s(h.path).to_owned(), s(h.query).to_owned(), h.framing)
        });
        let got = got
            .as_ref()
            .map(|(p, q, f)| (p.as_str(), q.as_str(), *f))
            .map_err(|r| r.status.0);
        assert_eq!(got, expected, "{head:?}");
    }

    #[test]
    fn heads_are_checked_as_rfc_9110_and_9112_say() {
        use Framing::*;
        let ok = |p, q, f| Ok((p, q, f));
        check(
            "GET /events HTTP/1.1\r\nHost: x\r\n\r\n",
            ok("/events", "", None),
        );
        check(
            "GET /e?topic=a HTTP/1.1\r\nHost: x\r\n\r\n",
            ok("/e", "topic=a", None),
        );
        check(
            "GET /e?a#frag HTTP/1.1\r\nHost: x\r\n\r\n",
            ok("/e", "a", None),
        );
        check(
            "GET http://x/e?q HTTP/1.1\r\nHost: x\r\n\r\n",
            ok("/e", "q", None),
        );
        check("GET http://x HTTP/1.1\r\nHost: x\r\n\r\n", ok("", "", None));
        check(
            "GET http://x?q HTTP/1.1\r\nHost: x\r\n\r\n",
            ok("", "q", None),
        );
        check("GET / HTTP/1.0\r\n\r\n", ok("/", "", None));
        // An empty Host is allowed, and the path is the path, whatever Host holds.
        check(
            "POST /static/publish HTTP/1.1\r\nHost:\r\n\r\n",
            ok("/static/publish", "", None),
        );
        check(
            "GET /x/healthz HTTP/1.1\r\nHost: \r\n\r\n",
            ok("/x/healthz", "", None),
        );
        check("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", Err(400));
        check("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", Err(400));
        check("GET / HTTP/1.1\r\n\r\n", Err(400));
        // Methods are case-sensitive.
        check("post /publish HTTP/1.1\r\nHost: x\r\n\r\n", Err(400));
        check("Get / HTTP/1.1\r\nHost: x\r\n\r\n", Err(400));
        check("BREW / HTTP/1.1\r\nHost: x\r\n\r\n", Err(501));
        // Framing.
        let post = |h: &str| format!("POST /p HTTP/1.1\r\nHost: x\r\n{h}\r\n");
        check(&post("Content-Length: 5\r\n"), ok("/p", "", Length(5)));
        check(&post("Content-Length: 0\r\n"), ok("/p", "", None));
        check(
            &post("Content-Length: 5\r\nContent-Length: 5\r\n"),
            ok("/p", "", Length(5)),
        );
        check(
            &post("Content-Length: 5\r\nContent-Length: 6\r\n"),
            Err(400),
        );
        check(&post("Content-Length: +5\r\n"), Err(400));
        check(&post("Content-Length: 5, 5\r\n"), Err(400));
        check(&post("Content-Length: \r\n"), Err(400));
        check(&post("Content-Length: 1001\r\n"), Err(413));
        check(
            &post("Transfer-Encoding: chunked\r\n"),
            ok("/p", "", Chunked),
        );
        check(
            &post("Transfer-Encoding: Chunked\r\n"),
            ok("/p", "", Chunked),
        );
        check(&post("Transfer-Encoding: gzip, chunked\r\n"), Err(501));
        check(
            &post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
            Err(501),
        );
        check(
            &post("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"),
            Err(400),
        );
        check(
            "POST /p HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            Err(501),
        );
        // Bytes that are not allowed.
        check("GET /\u{e9} HTTP/1.1\r\nHost: x\r\n\r\n", Err(400));
        check(
            "GET / HTTP/1.1\r\nHost: x\r\nX: caf\u{e9}\r\n\r\n",
            Err(400),
        );
        check("GET healthz HTTP/1.1\r\nHost: x\r\n\r\n", Err(400));
        check("GET ftp://x/ HTTP/1.1\r\nHost: x\r\n\r\n", Err(400));
        check("GARBAGE\r\n\r\n", Err(400));
    }

    #[test]
    fn the_end_of_a_head_is_found_once_it_is_there() {
        let head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nNEXT";
        for cut in 0..head.len() {
            let found = find_end(&head[..cut], cut.saturating_sub(5)).unwrap();
            assert_eq!(found, (cut >= 27).then_some(27), "cut {cut}");
        }
        assert!(find_end(b"GET / HTTP/1.1\nHost: x\n\n", 0).is_err());
        assert_eq!(
            find_end(&[b'a'; MAX_HEAD + 1], 0).unwrap_err().status.0,
            431
        );
    }
}
