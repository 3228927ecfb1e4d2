//! Encoding events into wire bytes, and the shared [`Frame`] every subscriber receives.
//!
//! This module and [`crate::decode`] are the only places that know the SSE wire format.

use std::fmt;
use std::sync::Arc;

use crate::event::{Comment, Event, Millis};

/// Appends the wire form of `event` to `out`: `event:`, `id:`, `retry:`, one `data:` line per
/// line of the data, then a blank line. Always `name: value` with one space.
///
/// Cannot fail: every field was validated when the [`Event`] was built.
///
/// ```
/// use ssecast::{encode, Event, EventType};
/// let mut buf = Vec::new();
/// encode(&Event::new("a\n\nb").with_type(EventType::new("up").unwrap()), &mut buf);
/// assert_eq!(buf, b"event: up\ndata: a\ndata: \ndata: b\n\n");
/// ```
pub fn encode(event: &Event, out: &mut Vec<u8>) {
    // Room for everything but the `data: ` of lines after the first: counting the lines
    // would be a second pass over the data, and a `Vec` reused for many events (or sized by
    // `encoded_len`, as `Frame::event` does) has the room already.
    out.reserve(encoded_len_one_line(event));
    if let Some(t) = event.event_type() {
        field(out, b"event", t.as_str().as_bytes());
    }
    if let Some(id) = event.id() {
        field(out, b"id", id.as_str().as_bytes());
    }
    if let Some(retry) = event.retry() {
        retry_field(out, retry);
    }
    // The data holds only LF line breaks (normalised by `Event::new`).
    let data = event.data().as_bytes();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', data) {
        field(out, b"data", &data[start..end]);
        start = end + 1;
    }
    field(out, b"data", &data[start..]);
    out.push(b'\n');
}

/// Where [`encode`] writes `event`'s id, as `(start, len)` in its bytes (`None` without an
/// id): the hub indexes publisher ids by this span of the shared frame instead of keeping a
/// copy. It follows `encode`'s field order: `event:`, then `id:`.
pub(crate) fn id_span(event: &Event) -> Option<(usize, usize)> {
    let id = event.id()?;
    let before = event
        .event_type()
        .map_or(0, |t| "event: \n".len() + t.as_str().len());
    Some((before + "id: ".len(), id.as_str().len()))
}

/// The exact number of bytes [`encode`] appends for `event`.
pub fn encoded_len(event: &Event) -> usize {
    let breaks = memchr::memchr_iter(b'\n', event.data().as_bytes()).count();
    // Each line break of the data becomes the end of one `data: ` line and the start of the
    // next.
    encoded_len_one_line(event) + breaks * "data: ".len()
}

/// What [`encoded_len`] would be if the data's line breaks took one byte each.
fn encoded_len_one_line(event: &Event) -> usize {
    let mut len = event.data().len() + "data: \n".len() + 1;
    if let Some(t) = event.event_type() {
        len += "event: \n".len() + t.as_str().len();
    }
    if let Some(id) = event.id() {
        len += "id: \n".len() + id.as_str().len();
    }
    if let Some(retry) = event.retry() {
        len += "retry: \n".len() + decimal_len(retry.0);
    }
    len
}

/// Appends a comment line (`: text`) followed by a blank line, as keep-alives use.
///
/// ```
/// use ssecast::{encode_comment, Comment};
/// let mut buf = Vec::new();
/// encode_comment(&Comment::new("ping").unwrap(), &mut buf);
/// assert_eq!(buf, b": ping\n\n");
/// ```
pub fn encode_comment(comment: &Comment, out: &mut Vec<u8>) {
    out.extend_from_slice(b": ");
    out.extend_from_slice(comment.as_str().as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// Appends a frame that only sets the client's reconnection time: `retry: N` and a blank line.
///
/// ```
/// use ssecast::{encode_retry, Millis};
/// let mut buf = Vec::new();
/// encode_retry(Millis(3000), &mut buf);
/// assert_eq!(buf, b"retry: 3000\n\n");
/// ```
pub fn encode_retry(retry: Millis, out: &mut Vec<u8>) {
    retry_field(out, retry);
    out.push(b'\n');
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn retry_field(out: &mut Vec<u8>, retry: Millis) {
    out.extend_from_slice(b"retry: ");
    let mut digits = [0u8; 20];
    let mut n = retry.0;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.push(b'\n');
}

fn decimal_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

/// One or more encoded events, comments or retry hints, ready to write to a socket.
///
/// Cloning a frame is a reference-count increment: an event is encoded once, when it is
/// published, and every subscriber shares the same bytes.
///
/// ```
/// use ssecast::{Event, Frame};
/// let frame = Frame::event(&Event::new("hi"));
/// let copy = frame.clone();
/// assert_eq!(copy.as_bytes(), b"data: hi\n\n");
/// assert_eq!(frame.len(), 10);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Frame(Arc<[u8]>);

impl Frame {
    /// Encodes `event` into a new frame.
    pub fn event(event: &Event) -> Frame {
        let mut buf = Vec::with_capacity(encoded_len(event));
        encode(event, &mut buf);
        Frame(buf.into())
    }

    /// A frame holding one comment (a keep-alive, for instance).
    pub fn comment(comment: &Comment) -> Frame {
        let mut buf = Vec::with_capacity(comment.as_str().len() + 4);
        encode_comment(comment, &mut buf);
        Frame(buf.into())
    }

    /// A frame that only sets the client's reconnection time.
    pub fn retry(retry: Millis) -> Frame {
        let mut buf = Vec::with_capacity(32);
        encode_retry(retry, &mut buf);
        Frame(buf.into())
    }

    /// The line `retry: N` alone, with no blank line after it: the hub queues it just
    /// before a subscriber's first event frame, so the two make one SSE block (clients that
    /// drop a block without data would lose a hint sent alone).
    pub(crate) fn retry_line(retry: Millis) -> Frame {
        let mut buf = Vec::with_capacity(32);
        retry_field(&mut buf, retry);
        Frame(buf.into())
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The number of encoded bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the frame holds no bytes (never true for frames built by this crate).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Frame({:?})", String::from_utf8_lossy(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventId, EventType};

    #[test]
    fn id_span_finds_the_id_in_the_encoded_bytes() {
        let id = || EventId::new("urn:uuid:7").unwrap();
        let cases = [
            Event::new("x").with_id(id()),
            Event::new("a\nb").with_id(id()).with_retry(Millis(5)),
            Event::new("")
                .with_id(id())
                .with_type(EventType::new("up").unwrap()),
        ];
        for event in cases {
            let frame = Frame::event(&event);
            let (start, len) = id_span(&event).unwrap();
            assert_eq!(
                &frame.as_bytes()[start..start + len],
                b"urn:uuid:7",
                "{event:?}"
            );
        }
        assert_eq!(id_span(&Event::new("x")), None);
    }
}
