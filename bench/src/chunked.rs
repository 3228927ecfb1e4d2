//! `Transfer-Encoding: chunked` framing, undone in place: the payload comes out as slices of
//! the caller's read buffer, so the SSE decoder sees the stream without a copy.

use std::fmt;

/// Where the decoder stands inside the chunked framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hexadecimal chunk size (`digits` so far).
    Size { size: u64, digits: u8 },
    /// Skipping a chunk extension up to the line's CR.
    Extension { size: u64 },
    /// Expecting the LF after the size line's CR.
    SizeLf { size: u64 },
    /// Inside a chunk's data, this many bytes left.
    Data { left: u64 },
    /// Expecting the CR after a chunk's data.
    DataCr,
    /// Expecting the LF after a chunk's data.
    DataLf,
    /// After the last (zero-size) chunk's size line: at the start of a trailer line.
    TrailerStart,
    /// Inside a trailer line.
    TrailerLine,
    /// Expecting the LF of the blank line that ends the body.
    FinalLf,
    /// The body is over.
    Done,
}

/// The framing was not valid chunked encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkError;

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bad chunked framing")
    }
}

impl std::error::Error for ChunkError {}

/// A push decoder for chunked bodies.
#[derive(Debug, Clone)]
pub(crate) struct Chunked {
    state: State,
}

impl Default for Chunked {
    fn default() -> Chunked {
        Chunked {
            state: State::Size { size: 0, digits: 0 },
        }
    }
}

impl Chunked {
    /// Hands each piece of payload in `input` to `payload`, in order, and returns how many
    /// bytes of `input` belong to the body: all of them until it ends, then up to its end
    /// (what follows is the next response on the connection). Trailers are skipped.
    pub(crate) fn feed(
        &mut self,
        input: &[u8],
        mut payload: impl FnMut(&[u8]),
    ) -> Result<usize, ChunkError> {
        let mut pos = 0;
        while pos < input.len() {
            let byte = input[pos];
            self.state = match self.state {
                State::Data { left } => {
                    let take = (input.len() - pos).min(usize::try_from(left).unwrap_or(usize::MAX));
                    payload(&input[pos..pos + take]);
                    pos += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { left }
                    };
                    continue;
                }
                State::Size { size, digits } => match byte {
                    b'\r' if digits > 0 => State::SizeLf { size },
                    b';' | b' ' | b'\t' if digits > 0 => State::Extension { size },
                    // 15 hex digits is already far past any chunk a server sends.
                    _ if digits >= 15 => return Err(ChunkError),
                    _ => {
                        let digit = match byte {
                            b'0'..=b'9' => byte - b'0',
                            b'a'..=b'f' => byte - b'a' + 10,
                            b'A'..=b'F' => byte - b'A' + 10,
                            _ => return Err(ChunkError),
                        };
                        State::Size {
                            size: size << 4 | u64::from(digit),
                            digits: digits + 1,
                        }
                    }
                },
                State::Extension { size } => match byte {
                    b'\r' => State::SizeLf { size },
                    _ => State::Extension { size },
                },
                State::SizeLf { size } => match (byte, size) {
                    (b'\n', 0) => State::TrailerStart,
                    (b'\n', left) => State::Data { left },
                    _ => return Err(ChunkError),
                },
                State::DataCr => match byte {
                    b'\r' => State::DataLf,
                    _ => return Err(ChunkError),
                },
                State::DataLf => match byte {
                    b'\n' => State::Size { size: 0, digits: 0 },
                    _ => return Err(ChunkError),
                },
                State::TrailerStart => match byte {
                    b'\r' => State::FinalLf,
                    _ => State::TrailerLine,
                },
                State::TrailerLine => match byte {
                    b'\n' => State::TrailerStart,
                    _ => State::TrailerLine,
                },
                State::FinalLf => match byte {
                    b'\n' => State::Done,
                    _ => return Err(ChunkError),
                },
                State::Done => return Ok(pos),
            };
            pos += 1;
        }
        Ok(pos)
    }

    /// The last chunk has been read.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of every size from 1 to its length.
    fn check(input: &[u8], expected: Option<&[u8]>) {
        for step in 1..=input.len().max(1) {
            let mut chunked = Chunked::default();
            let mut out = Vec::new();
            let mut result = Ok(());
            for piece in input.chunks(step) {
                result = result
                    .and_then(|()| chunked.feed(piece, |p| out.extend_from_slice(p)).map(drop));
            }
            match expected {
                Some(expected) => {
                    assert_eq!(result, Ok(()), "{input:?} step {step}");
                    assert_eq!(out, expected, "{input:?} step {step}");
                }
                None => assert_eq!(result, Err(ChunkError), "{input:?} step {step}"),
            }
        }
    }

    #[test]
    fn framing() {
        check(b"5\r\nhello\r\n", Some(b"hello"));
        check(
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            Some(b"hello world"),
        );
        check(b"A\r\n0123456789\r\n", Some(b"0123456789"));
        check(b"1a\r\n", Some(b""));
        check(b"3;ext=1\r\nabc\r\n", Some(b"abc"));
        check(b"0\r\n\r\nignored", Some(b""));
        check(b"1\r\na\r\n0\r\nX-Trailer: 1\r\n\r\n", Some(b"a"));
        check(b"x\r\n", None);
        check(b"\r\n", None);
        check(b"3\r\nabcX", None);
        check(b"3\rX", None);
        check(b"1000000000000000\r\n", None);
    }

    #[test]
    fn consumed() {
        let body = b"2\r\nab\r\n0\r\n\r\n";
        let next = b"HTTP/1.1 200 OK\r\n";
        let input = [&body[..], next].concat();
        assert_eq!(Chunked::default().feed(&input, |_| {}), Ok(body.len()));
        assert_eq!(Chunked::default().feed(&body[..4], |_| {}), Ok(4));
        let mut split = Chunked::default();
        assert_eq!(split.feed(&input[..9], |_| {}), Ok(9));
        assert_eq!(split.feed(&input[9..], |_| {}), Ok(body.len() - 9));
        assert!(split.is_done());
    }

    #[test]
    fn done() {
        let mut chunked = Chunked::default();
        chunked.feed(b"2\r\nab\r\n0\r\n", |_| {}).unwrap();
        assert!(!chunked.is_done());
        chunked.feed(b"\r\n", |_| {}).unwrap();
        assert!(chunked.is_done());
    }
}
