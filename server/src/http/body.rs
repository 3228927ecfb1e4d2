//! `Transfer-Encoding: chunked` request bodies (RFC 9112 7.1), decoded as bytes arrive: a
//! push decoder with no I/O, bounded in what it keeps. Chunk extensions are ignored, as the
//! RFC requires of a recipient that does not understand them; trailer fields are read and
//! dropped; every line ends with CRLF.

use super::head::MAX_HEAD;
use super::message::Status;
use super::Refusal;

/// The longest chunk-size line (with its extensions) or trailer line accepted.
const MAX_LINE: usize = 4096;

/// Where a chunked body's decoding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a chunk-size line.
    Size,
    /// In a chunk's data: this many bytes left.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last chunk: trailer lines until a blank one; bytes of trailers seen.
    Trailers(usize),
    Done,
}

/// A chunked body decoder: [`Dechunker::feed`] it what arrived, it appends the data.
#[derive(Debug)]
pub(crate) struct Dechunker {
    state: State,
    max: usize,
}

impl Dechunker {
    /// A decoder for a body of at most `max` bytes (`--max-body`).
    pub(crate) fn new(max: usize) -> Dechunker {
        Dechunker {
            state: State::Size,
            max,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes what it can of `input` into `out`; returns how many bytes of `input` it used.
    /// It stops after the body's end, so what follows belongs to the next request. A line cut
    /// off at the end of `input` is left unused: feed it again with more bytes after it.
    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, Refusal> {
        let bad = |reason: &str| Refusal::new(Status::BAD_REQUEST, reason.to_owned());
        let mut used = 0;
        loop {
            let rest = &input[used..];
            match self.state {
                State::Done => return Ok(used),
                State::Size | State::DataEnd | State::Trailers(_) => {
                    let Some(line_len) = memchr::memchr(b'\n', rest) else {
                        if rest.len() > MAX_LINE {
                            return Err(bad("chunk line too long"));
                        }
                        return Ok(used);
                    };
                    if line_len == 0 || rest[line_len - 1] != b'\r' {
                        return Err(bad("chunk lines must end with CRLF"));
                    }
                    let line = &rest[..line_len - 1];
                    used += line_len + 1;
                    self.state = match self.state {
                        State::Size => match chunk_size(line)? {
                            0 => State::Trailers(0),
                            n => State::Data(n),
                        },
                        State::DataEnd if line.is_empty() => State::Size,
                        State::DataEnd => return Err(bad("chunk data longer than its size")),
                        State::Trailers(_) if line.is_empty() => State::Done,
                        State::Trailers(seen) if seen + line_len + 1 > MAX_HEAD => {
                            return Err(Refusal::new(
                                Status::HEADERS_TOO_LARGE,
                                format!("trailer fields larger than {MAX_HEAD} bytes"),
                            ))
                        }
                        State::Trailers(seen) => State::Trailers(seen + line_len + 1),
                        State::Data(_) | State::Done => self.state,
                    };
                }
                State::Data(left) => {
                    if rest.is_empty() {
                        return Ok(used);
                    }
                    let n = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    if out.len() + n > self.max {
                        return Err(Refusal::new(
                            Status::PAYLOAD_TOO_LARGE,
                            format!("body larger than {} bytes", self.max),
                        ));
                    }
                    out.extend_from_slice(&rest[..n]);
                    used += n;
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                }
            }
        }
    }
}

/// The size of a chunk-size line: hex digits, then optional whitespace and extensions
/// (`;name=value`), which are ignored.
fn chunk_size(line: &[u8]) -> Result<u64, Refusal> {
    let bad = |reason: &str| Refusal::new(Status::BAD_REQUEST, reason.to_owned());
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(bad("invalid chunk size"));
    }
    let rest = &line[digits..];
    let after_space = rest
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .map_or(&rest[rest.len()..], |i| &rest[i..]);
    if !(after_space.is_empty() || after_space[0] == b';') {
        return Err(bad("invalid chunk size"));
    }
    if after_space.iter().any(|&b| b == b'\r' || b == 0) {
        return Err(bad("invalid chunk extension"));
    }
    let mut size: u64 = 0;
    for &b in &line[..digits] {
        let digit = u64::from(char::from(b).to_digit(16).unwrap_or(0));
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(digit))
            .ok_or_else(|| bad("chunk size too large"))?;
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `body` fed in pieces of every size from 1 to its length; all must agree.
    fn check(body: &[u8], max: usize, expected: Result<(&[u8], usize), u16>) {
        for piece in 1..=body.len().max(1) {
            let mut d = Dechunker::new(max);
            let mut out = Vec::new();
            let mut pending: Vec<u8> = Vec::new();
            let mut consumed = 0;
            let mut result = Ok(());
            for chunk in body.chunks(piece) {
                pending.extend_from_slice(chunk);
                match d.feed(&pending, &mut out) {
                    Ok(n) => {
                        consumed += n;
                        pending.drain(..n);
                    }
                    Err(e) => {
                        result = Err(e.status.0);
                        break;
                    }
                }
                if d.is_done() {
                    break;
                }
            }
            let got = match result {
                Err(status) => Err(status),
                Ok(()) if d.is_done() => Ok((out.as_slice(), consumed)),
                Ok(()) => Err(0),
            };
            assert_eq!(
                got,
                expected,
                "{:?} in pieces of {piece}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_pieces() {
        check(b"3\r\nabc\r\n0\r\n\r\n", 100, Ok((b"abc", 13)));
        check(b"3\r\nabc\r\n0\r\n\r\nNEXT", 100, Ok((b"abc", 13)));
        check(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 100, Ok((b"abcde", 20)));
        check(
            b"A\r\n0123456789\r\n0\r\n\r\n",
            100,
            Ok((b"0123456789", 20)),
        );
        check(b"0\r\n\r\n", 100, Ok((b"", 5)));
        // Extensions are ignored; trailers are read and dropped.
        check(b"2;ext=1\r\nab\r\n0\r\n\r\n", 100, Ok((b"ab", 18)));
        check(
            b"2 ;a=\"b;c\"\r\nab\r\n0;last\r\n\r\n",
            100,
            Ok((b"ab", 26)),
        );
        check(b"2\r\nab\r\n0\r\nX-T: 1\r\n\r\n", 100, Ok((b"ab", 20)));
        // Malformed: 400; too large: 413; unfinished: not done (0 here).
        check(b"zz\r\nabc\r\n0\r\n\r\n", 100, Err(400));
        check(b"-3\r\nabc\r\n0\r\n\r\n", 100, Err(400));
        check(b"3x\r\nabc\r\n0\r\n\r\n", 100, Err(400));
        check(b"fffffffffffffffffffff\r\nabc\r\n0\r\n\r\n", 100, Err(400));
        check(b"3\r\nabcdef\r\n0\r\n\r\n", 100, Err(400));
        check(b"3\nabc\r\n0\r\n\r\n", 100, Err(400));
        check(b"3\r\nabc\r\n", 100, Err(0));
        check(b"40000000\r\nabc", 100, Err(0));
        check(b"5\r\nabcde\r\n0\r\n\r\n", 4, Err(413));
        check(b"2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n", 4, Err(413));
        check(b"4\r\nabcd\r\n0\r\n\r\n", 4, Ok((b"abcd", 14)));
    }
}
