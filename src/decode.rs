//! A push parser for `text/event-stream`, exact to the WHATWG HTML "Server-sent events"
//! parsing and interpretation algorithms, whatever the chunking.
//!
//! The decoder lists the line endings of each chunk a window at a time (`lines.rs`),
//! validates the chunk as UTF-8 a window at a time, reads each line in place as a `&str` and
//! copies only what it must keep: field values into the event being built, and an incomplete
//! trailing line into an internal buffer until the chunk that completes it arrives. A line
//! holding invalid UTF-8 is decoded on its own (invalid sequences become U+FFFD, as the WHATWG
//! UTF-8 decoder and [`String::from_utf8_lossy`] both do); because CR, LF and `:` are ASCII and
//! never part of a multi-byte sequence, that gives exactly what decoding the whole stream
//! first would.

use std::collections::VecDeque;
use std::fmt;

use crate::lines::{LineEnds, Simd};

use crate::event::Millis;

/// An event dispatched by the [`Decoder`], as a browser's `MessageEvent` would carry it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageEvent {
    /// The event type; `message` when the stream set none.
    pub event_type: String,
    /// The data, with the final LF removed.
    pub data: String,
    /// The last event ID at the time of dispatch (it persists across events).
    pub last_event_id: String,
}

/// A dispatched event borrowed from the [`Decoder`]: what [`MessageEvent`] holds, without
/// allocating. Taken with [`Decoder::next_event_ref`]; it lives until the decoder is used
/// again.
///
/// ```
/// use ssecast::{Decoder, EventRef, MessageEvent};
/// let mut decoder = Decoder::new();
/// decoder.feed(b"id: 1\ndata: a\n\nevent: up\ndata: b\n\n").unwrap();
/// let event = decoder.next_event_ref().unwrap();
/// assert_eq!(event, EventRef { event_type: "message", data: "a", last_event_id: "1" });
/// let owned = MessageEvent::from(decoder.next_event_ref().unwrap());
/// assert_eq!((owned.event_type.as_str(), owned.data.as_str()), ("up", "b"));
/// assert_eq!(decoder.next_event_ref(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// The event type; `message` when the stream set none.
    pub event_type: &'a str,
    /// The data, with the final LF removed.
    pub data: &'a str,
    /// The last event ID at the time of dispatch (it persists across events).
    pub last_event_id: &'a str,
}

impl From<EventRef<'_>> for MessageEvent {
    fn from(event: EventRef<'_>) -> MessageEvent {
        MessageEvent {
            event_type: event.event_type.to_owned(),
            data: event.data.to_owned(),
            last_event_id: event.last_event_id.to_owned(),
        }
    }
}

/// Limits that keep a decoder's memory bounded.
///
/// Browsers have none, so the defaults are generous: 16 MiB for a line and 16 MiB for an
/// event's data, enough for any event a real stream sends (ssecast's own server accepts
/// publishes of 1 MiB by default), while a decoder fed a stream that never ends a line or
/// an event holds at most about 32 MiB (the line being read, plus the event's data).
///
/// ```
/// use ssecast::{DecodeError, Decoder, Limits};
/// let mut decoder = Decoder::with_limits(Limits { max_line: 16, max_event: 1024 });
/// let result = decoder.feed(b"data: this line is too long\n\ndata: ok\n\n");
/// assert_eq!(result, Err(DecodeError::LineTooLong { max: 16 }));
/// // The offending event was discarded; decoding went on after it.
/// assert_eq!(decoder.next_event().unwrap().data, "ok");
/// assert_eq!(decoder.next_event(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest line accepted, in bytes, not counting its line ending.
    pub max_line: usize,
    /// The most data buffered for one event, in bytes: the length of the event's data
    /// as dispatched (its lines joined by LF).
    pub max_event: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_line: 16 << 20,
            max_event: 16 << 20,
        }
    }
}

/// A limit was reached. The offending line or event is discarded and decoding goes on
/// after it with the next call to [`Decoder::feed`].
///
/// What is discarded, precisely:
/// - [`LineTooLong`](DecodeError::LineTooLong): the line, skipped through its line ending
///   without being buffered, and, unless the line is a comment, the event it belongs to (it
///   may have been a `data` line, and a truncated event is never delivered): that event is not
///   dispatched at its blank line.
/// - [`EventTooLarge`](DecodeError::EventTooLarge): the event's data; further `data` lines are
///   dropped until the blank line that ends the event, which then dispatches nothing. `id`,
///   `event` and `retry` lines are still interpreted.
///
/// [`Decoder::feed`] keeps parsing the rest of its chunk after a limit is reached and returns
/// the first error it met in that chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// A line was longer than [`Limits::max_line`].
    LineTooLong {
        /// The limit in bytes.
        max: usize,
    },
    /// An event's data grew beyond [`Limits::max_event`].
    EventTooLarge {
        /// The limit in bytes.
        max: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::LineTooLong { max } => write!(f, "line longer than {max} bytes"),
            DecodeError::EventTooLarge { max } => write!(f, "event larger than {max} bytes"),
        }
    }
}

impl std::error::Error for DecodeError {}

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Data at least this large is handed over to the dispatched event instead of copied.
const BIG_EVENT: usize = 4096;

/// Where the decoder stands with respect to the start of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Still at the start: this many bytes of a UTF-8 byte order mark have been seen (0 to 2).
    Bom(u8),
    /// Past the start: no byte order mark can follow.
    Past,
}

impl Default for Start {
    fn default() -> Start {
        Start::Bom(0)
    }
}

/// The push parser: [`feed`](Decoder::feed) it bytes as they arrive, then take the
/// dispatched events out with [`next_event`](Decoder::next_event).
///
/// Chunk boundaries do not matter: a line ending, a UTF-8 sequence or the byte order mark
/// split across chunks decodes as if the stream had been fed whole.
///
/// ```
/// use ssecast::{Decoder, Millis};
/// let mut decoder = Decoder::new();
/// decoder.feed(b"retry: 2500\nevent: tick\nid: 7\ndata: hel").unwrap();
/// assert_eq!(decoder.next_event(), None); // the event is not complete yet
/// decoder.feed(b"lo\r").unwrap();
/// decoder.feed(b"\n\r\n").unwrap(); // CRLF split across chunks, then a blank line
/// let event = decoder.next_event().unwrap();
/// assert_eq!((event.event_type.as_str(), event.data.as_str()), ("tick", "hello"));
/// assert_eq!(event.last_event_id, "7");
/// assert_eq!(decoder.last_event_id(), "7");
/// assert_eq!(decoder.retry(), Some(Millis(2500)));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    limits: Limits,
    /// How [`LineEnds`] compares, detected once.
    simd: Simd,
    /// The buffer [`LineEnds`] lists line endings in, kept between chunks.
    line_ends: Vec<u32>,
    keep_comments: bool,
    start: Start,
    /// The previous chunk ended with CR: an LF at the start of the next one belongs to it.
    pending_cr: bool,
    /// The bytes of an incomplete line, kept until the chunk that ends it arrives.
    partial: Vec<u8>,
    /// Inside a line longer than `max_line`: drop bytes up to its line ending.
    skipping_line: bool,
    /// The current event hit a limit: drop its data until its blank line.
    discarding_event: bool,
    /// The data buffer: each data line followed by LF.
    data: String,
    /// The event type buffer.
    event_type: String,
    /// The last event ID buffer, set by `id` lines.
    id_buffer: String,
    /// An `id` line was read since the last blank line.
    id_set: bool,
    /// The last event ID string, set from the buffer when an event is dispatched.
    last_event_id: String,
    retry: Option<Millis>,
    /// The first limit reached during the current `feed`.
    error: Option<DecodeError>,
    events: Queued,
    comments: VecDeque<String>,
}

impl Decoder {
    /// A decoder with the default [`Limits`].
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// A decoder with the given limits.
    pub fn with_limits(limits: Limits) -> Decoder {
        Decoder {
            limits,
            ..Decoder::default()
        }
    }

    /// Keeps comment lines (without the leading `:`) for [`next_comment`](Decoder::next_comment).
    /// Off by default.
    ///
    /// Kept comments queue up like events until they are taken, so a caller that keeps them
    /// must also take them.
    ///
    /// ```
    /// use ssecast::Decoder;
    /// let mut decoder = Decoder::new().keep_comments(true);
    /// decoder.feed(b": ping\n\n").unwrap();
    /// assert_eq!(decoder.next_comment().as_deref(), Some(" ping"));
    /// ```
    pub fn keep_comments(mut self, keep: bool) -> Decoder {
        self.keep_comments = keep;
        self
    }

    /// Parses `chunk`, queueing every event it completes.
    ///
    /// On a limit (see [`Limits`] and [`DecodeError`]) the offending line or event is
    /// discarded, the rest of the chunk is still parsed, and the first error met in the chunk
    /// is returned. The decoder stays usable: later chunks decode normally.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        let Some(mut chunk) = self.skip_bom(chunk) else {
            return Ok(());
        };
        if self.pending_cr && !chunk.is_empty() {
            self.pending_cr = false;
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
        }
        // A line begun in an earlier chunk is completed from `partial`, on the byte path; the
        // lines after it are read as `&str` slices of the chunk, validated a window at a time.
        let mut carried = !self.partial.is_empty() || self.skipping_line;
        let mut text = Utf8Windows::new(chunk);
        let mut line_ends = LineEnds::new(chunk, self.simd, std::mem::take(&mut self.line_ends));
        let mut pos = 0;
        while pos < chunk.len() {
            let Some(end) = line_ends.find(pos) else {
                self.keep_partial(&chunk[pos..]);
                break;
            };
            let mut next = end + 1;
            if line_ends.maybe_cr() && chunk[end] == b'\r' {
                match chunk.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.pending_cr = true,
                }
            }
            match text.line(pos, end).filter(|_| !carried) {
                Some(line) if line.len() > self.limits.max_line => {
                    self.line_too_long(line.as_bytes())
                }
                // Data lines, most of a large event, without a call.
                Some(line) => match line.strip_prefix("data:") {
                    Some(value) => self.data_line(value.strip_prefix(' ').unwrap_or(value)),
                    None => self.line(line),
                },
                // The carried line, or one holding invalid UTF-8.
                None => {
                    self.end_line(&chunk[pos..end]);
                    carried = false;
                }
            }
            pos = next;
        }
        self.line_ends = line_ends.into_buffer();
        match self.error.take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Takes the oldest dispatched event not yet taken.
    ///
    /// This allocates the event's strings; [`next_event_ref`](Decoder::next_event_ref) lends
    /// them instead.
    pub fn next_event(&mut self) -> Option<MessageEvent> {
        let (event, handed_over) = self.events.pop()?;
        let event_type = event.event_type.to_owned();
        let last_event_id = event.last_event_id.to_owned();
        // A large event's data is a buffer of its own: hand it over rather than copy it.
        let data = (!handed_over).then(|| event.data.to_owned());
        let data = data.unwrap_or_else(|| self.events.take_handed_over());
        Some(MessageEvent {
            event_type,
            data,
            last_event_id,
        })
    }

    /// Takes the oldest dispatched event not yet taken, borrowed from the decoder: no
    /// allocation. The event lives until the decoder is used again.
    ///
    /// ```
    /// use ssecast::Decoder;
    /// let mut decoder = Decoder::new();
    /// let mut total = 0;
    /// for chunk in [&b"data: 1\n\ndata: 2"[..], b"0\n\n"] {
    ///     decoder.feed(chunk).unwrap();
    ///     while let Some(event) = decoder.next_event_ref() {
    ///         total += event.data.parse::<u32>().unwrap();
    ///     }
    /// }
    /// assert_eq!(total, 21);
    /// ```
    pub fn next_event_ref(&mut self) -> Option<EventRef<'_>> {
        self.events.pop().map(|(event, _)| event)
    }

    /// Takes the oldest comment not yet taken (only with `keep_comments(true)`).
    pub fn next_comment(&mut self) -> Option<String> {
        self.comments.pop_front()
    }

    /// The last event ID: what a client sends as `Last-Event-ID` when it reconnects.
    ///
    /// As in the spec, an `id` line sets the last event ID *buffer*, which becomes the last
    /// event ID when the block's blank line is read (whether or not that dispatches an event).
    ///
    /// ```
    /// use ssecast::Decoder;
    /// let mut decoder = Decoder::new();
    /// decoder.feed(b"id: 1\ndata: a\n\nid: 2\n").unwrap();
    /// assert_eq!(decoder.last_event_id(), "1"); // the block with id 2 has not ended yet
    /// decoder.feed(b"\n").unwrap();
    /// assert_eq!(decoder.last_event_id(), "2");
    /// ```
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection time set by the last valid `retry:` field, if any.
    ///
    /// A `retry` value counts only when it is all ASCII digits; it takes effect as soon as its
    /// line is read. Values beyond `u64::MAX` milliseconds saturate to `u64::MAX`.
    ///
    /// ```
    /// use ssecast::{Decoder, Millis};
    /// let mut decoder = Decoder::new();
    /// decoder.feed(b"retry: 3000\nretry: 1a\n").unwrap();
    /// assert_eq!(decoder.retry(), Some(Millis(3000)));
    /// ```
    pub fn retry(&self) -> Option<Millis> {
        self.retry
    }

    /// Prepares for a new connection: forgets the partial line, the data and type buffers
    /// and the BOM state, but keeps the last event ID and the reconnection time, as the
    /// spec's reconnect does. Queued events stay queued.
    ///
    /// The last event ID buffer starts the new stream holding the last event ID (as Chromium's
    /// parser does; the spec's wording would start it empty), so an event without an `id` on
    /// the new connection carries the ID the client resumed from rather than resetting it.
    ///
    /// ```
    /// use ssecast::Decoder;
    /// let mut decoder = Decoder::new();
    /// decoder.feed(b"id: 5\ndata: a\n\ndata: cut sho").unwrap();
    /// decoder.reconnect();
    /// decoder.feed(b"\xEF\xBB\xBFdata: b\n\n").unwrap();
    /// assert_eq!(decoder.next_event().unwrap().data, "a");
    /// let b = decoder.next_event().unwrap();
    /// assert_eq!((b.data.as_str(), b.last_event_id.as_str()), ("b", "5"));
    /// ```
    pub fn reconnect(&mut self) {
        self.start = Start::Bom(0);
        self.pending_cr = false;
        self.partial.clear();
        self.skipping_line = false;
        self.discarding_event = false;
        self.data.clear();
        self.event_type.clear();
        self.id_buffer.clone_from(&self.last_event_id);
        self.id_set = false;
    }

    /// Strips a byte order mark at the very start of the stream, even when it arrives in
    /// pieces. Returns what is left of `chunk` to parse, or `None` when the whole chunk could
    /// still be the start of a byte order mark.
    fn skip_bom<'c>(&mut self, chunk: &'c [u8]) -> Option<&'c [u8]> {
        let Start::Bom(seen) = self.start else {
            return Some(chunk);
        };
        let mut seen = usize::from(seen);
        let mut i = 0;
        while seen < BOM.len() && i < chunk.len() && chunk[i] == BOM[seen] {
            seen += 1;
            i += 1;
        }
        if seen == BOM.len() {
            self.start = Start::Past;
            return Some(&chunk[i..]);
        }
        if i == chunk.len() {
            // `seen` is at most 2 here.
            self.start = Start::Bom(seen as u8);
            return None;
        }
        // Not a byte order mark: the bytes taken for one are the first line's first bytes.
        self.start = Start::Past;
        self.partial.extend_from_slice(&BOM[..seen]);
        Some(&chunk[i..])
    }

    /// Keeps the bytes of a line whose end is in a later chunk, within `max_line`.
    fn keep_partial(&mut self, rest: &[u8]) {
        if self.skipping_line {
            return;
        }
        if self.partial.len() + rest.len() > self.limits.max_line {
            self.line_too_long(rest);
            self.skipping_line = true;
        } else {
            self.partial.extend_from_slice(rest);
        }
    }

    /// A line ending was found; `tail` is the part of the line in the current chunk.
    fn end_line(&mut self, tail: &[u8]) {
        if self.skipping_line {
            self.skipping_line = false;
        } else if self.partial.len() + tail.len() > self.limits.max_line {
            self.line_too_long(tail);
        } else if self.partial.is_empty() {
            self.line(&String::from_utf8_lossy(tail));
        } else {
            // Taken out so that `line` can borrow it while mutating the rest of `self`.
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(tail);
            self.line(&String::from_utf8_lossy(&line));
            line.clear();
            self.partial = line;
        }
    }

    /// Drops an over-long line (`partial` then `tail`) and, unless it is a comment, the event
    /// it belongs to.
    fn line_too_long(&mut self, tail: &[u8]) {
        let comment = self.partial.first().or(tail.first()) == Some(&b':');
        self.partial.clear();
        let error = DecodeError::LineTooLong {
            max: self.limits.max_line,
        };
        if comment {
            self.error.get_or_insert(error);
        } else {
            self.fail(error);
        }
    }

    /// Records a limit and discards the event being built.
    fn fail(&mut self, error: DecodeError) {
        self.error.get_or_insert(error);
        self.discarding_event = true;
        self.data.clear();
    }

    /// Interprets one complete line, without its line ending.
    ///
    /// Invalid UTF-8 was already replaced line by line, which gives what replacing it in the
    /// whole stream would: CR, LF and `:` are ASCII, and the replacement never spans an ASCII
    /// byte.
    fn line(&mut self, line: &str) {
        // The common fields first, without searching for the colon; data lines, most of a
        // large event, straight to the buffer.
        let (field, value) = if let Some(value) = line.strip_prefix("data:") {
            return self.data_line(value.strip_prefix(' ').unwrap_or(value));
        } else if line.is_empty() {
            return self.dispatch();
        } else if let Some(value) = line.strip_prefix("id:") {
            (Field::Id, value)
        } else if let Some(value) = line.strip_prefix("event:") {
            (Field::Event, value)
        } else {
            match memchr::memchr(b':', line.as_bytes()) {
                Some(0) => {
                    if self.keep_comments {
                        self.comments.push_back(line[1..].to_owned());
                    }
                    return;
                }
                // The colon is ASCII: both slices are on character boundaries.
                Some(colon) => (Field::named(&line[..colon]), &line[colon + 1..]),
                None => (Field::named(line), ""),
            }
        };
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            Field::Data => self.data_line(value),
            Field::Event => {
                self.event_type.clear();
                self.event_type.push_str(value);
            }
            Field::Id if !value.as_bytes().contains(&0) => {
                self.id_buffer.clear();
                self.id_buffer.push_str(value);
                self.id_set = true;
            }
            Field::Retry if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // Saturates: a delay too long to count is as good as "never reconnect
                // soon", and ignoring it would keep an older, shorter delay.
                let ms = value.bytes().fold(0u64, |ms, digit| {
                    ms.saturating_mul(10)
                        .saturating_add(u64::from(digit - b'0'))
                });
                self.retry = Some(Millis(ms));
            }
            _ => {}
        }
    }

    /// The value of a `data` field: appended to the data buffer, followed by LF.
    #[inline]
    fn data_line(&mut self, value: &str) {
        if self.discarding_event {
            return;
        }
        if self.data.len() + value.len() > self.limits.max_event {
            return self.fail(DecodeError::EventTooLarge {
                max: self.limits.max_event,
            });
        }
        self.data.push_str(value);
        self.data.push('\n');
    }

    /// A blank line: the spec's "dispatch the event".
    fn dispatch(&mut self) {
        // Only an `id` line changes the buffer, so only then can the two differ.
        if self.id_set {
            self.id_set = false;
            // Swapped, not copied: the buffer is read again only after an `id` line or a
            // reconnect has set it anew.
            std::mem::swap(&mut self.last_event_id, &mut self.id_buffer);
        }
        if !self.discarding_event && !self.data.is_empty() {
            // Every data line pushed an LF; the last one is not part of the data.
            self.data.pop();
            if self.data.len() < BIG_EVENT {
                self.events
                    .push_packed(&self.event_type, &self.data, &self.last_event_id);
            } else {
                // Hand over the buffer rather than copy it, and start the next event with
                // room for one as large: the buffer of an event already taken, if any.
                let room = self.data.len() + 1;
                let spare = self.events.spare(room);
                let data = std::mem::replace(&mut self.data, spare);
                self.events
                    .push_handed_over(&self.event_type, data, &self.last_event_id);
            }
        }
        self.discarding_event = false;
        self.data.clear();
        self.event_type.clear();
    }
}

/// The fields the decoder interprets; any other name is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Data,
    Event,
    Id,
    Retry,
    Other,
}

impl Field {
    fn named(name: &str) -> Field {
        match name {
            "data" => Field::Data,
            "event" => Field::Event,
            "id" => Field::Id,
            "retry" => Field::Retry,
            _ => Field::Other,
        }
    }
}

/// Dispatched events not yet taken.
///
/// Small events are packed back to back into one buffer and lent out from it (or become
/// `String`s only when taken by [`Decoder::next_event`]). A large event keeps the data buffer
/// it was built in; once taken and lent out, that buffer is reused for a later large event, so
/// a caller that borrows events allocates nothing per event.
#[derive(Debug, Clone, Default)]
struct Queued {
    /// Each queued event's type and last event ID, with the data of small ones between them.
    packed: String,
    /// Where the oldest event not yet taken starts in `packed`.
    read: usize,
    entries: VecDeque<Entry>,
    /// The data of the large event the last `pop` lent out: kept alive for the borrow, free
    /// once the decoder is used again.
    lent: String,
    /// A free data buffer for the next large event.
    spare: String,
}

#[derive(Debug, Clone)]
enum Entry {
    /// An event in `packed`: the lengths of its type (0 for `message`), data and id.
    Packed(usize, usize, usize),
    /// A large event: its type and id lengths (in `packed`), and its data, handed over whole.
    HandedOver(usize, usize, String),
}

impl Queued {
    fn push_packed(&mut self, event_type: &str, data: &str, last_event_id: &str) {
        self.compact();
        self.packed.push_str(event_type);
        self.packed.push_str(data);
        self.packed.push_str(last_event_id);
        self.entries.push_back(Entry::Packed(
            event_type.len(),
            data.len(),
            last_event_id.len(),
        ));
    }

    fn push_handed_over(&mut self, event_type: &str, data: String, last_event_id: &str) {
        self.compact();
        self.packed.push_str(event_type);
        self.packed.push_str(last_event_id);
        self.entries.push_back(Entry::HandedOver(
            event_type.len(),
            last_event_id.len(),
            data,
        ));
    }

    /// A free buffer for a large event's data, with room for at least `room` bytes.
    fn spare(&mut self, room: usize) -> String {
        self.release();
        let mut spare = std::mem::take(&mut self.spare);
        spare.clear();
        spare.reserve(room);
        spare
    }

    /// The data buffer of the event the last `pop` lent out, if it was handed over.
    fn take_handed_over(&mut self) -> String {
        std::mem::take(&mut self.lent)
    }

    /// Frees what the last `pop` lent out: nothing borrows it any more.
    fn release(&mut self) {
        if self.lent.capacity() > 0 {
            self.spare = std::mem::take(&mut self.lent);
        }
        if self.entries.is_empty() {
            self.packed.clear();
            self.read = 0;
        }
    }

    /// Frees what was taken, before pushing more.
    fn compact(&mut self) {
        self.release();
        // Only here, not in `pop`: a caller taking the events a chunk completed one by one
        // would otherwise move what is left of them again and again.
        if self.read >= 4096 && self.read * 2 >= self.packed.len() {
            // A caller that never empties the queue must not make `packed` grow for ever:
            // drop what was taken once it is the larger half (amortised O(1) per byte).
            // `read` is always on a character boundary; the check keeps this panic-free.
            if self.packed.is_char_boundary(self.read) {
                self.packed.drain(..self.read);
                self.read = 0;
            }
        }
    }

    /// Lends out the oldest event, and whether its data was handed over (it is then in
    /// `lent`, for [`take_handed_over`](Queued::take_handed_over)).
    fn pop(&mut self) -> Option<(EventRef<'_>, bool)> {
        self.release();
        let (type_len, data_len, id_len, handed_over) = match self.entries.pop_front()? {
            Entry::Packed(type_len, data_len, id_len) => (type_len, data_len, id_len, false),
            Entry::HandedOver(type_len, id_len, data) => {
                self.lent = data;
                (type_len, 0, id_len, true)
            }
        };
        let from = self.read;
        self.read += type_len + data_len + id_len;
        // The lengths were those of whole strings pushed in this order, so the slices are on
        // character boundaries and `get` always succeeds.
        let packed = self.packed.get(from..self.read).unwrap_or_default();
        let (event_type, rest) = packed.split_at_checked(type_len).unwrap_or_default();
        let (data, last_event_id) = rest.split_at_checked(data_len).unwrap_or_default();
        let event = EventRef {
            event_type: if event_type.is_empty() {
                "message"
            } else {
                event_type
            },
            data: if handed_over { &self.lent } else { data },
            last_event_id,
        };
        Some((event, handed_over))
    }
}

/// The most bytes [`Utf8Windows`] validates at once.
const MAX_WINDOW: usize = 16 << 10;

/// A chunk's lines as text: the chunk is validated as UTF-8 a window at a time, just ahead of
/// the lines that read it (so that they read it from the nearest cache), and each line is then
/// a `&str` slice of the window.
///
/// Windows grow while they are valid and shrink to one line after invalid bytes, so a chunk
/// is validated about once whatever it holds: a window is wasted only up to its first invalid
/// byte, and is at most twice what was found valid since the last one.
struct Utf8Windows<'c> {
    chunk: &'c [u8],
    /// Where the window starts: a line start.
    start: usize,
    /// The valid text of the window.
    text: &'c str,
    /// How far past the line that needs it the next window reaches.
    ahead: usize,
}

impl<'c> Utf8Windows<'c> {
    fn new(chunk: &'c [u8]) -> Utf8Windows<'c> {
        Utf8Windows {
            chunk,
            start: 0,
            text: "",
            ahead: MAX_WINDOW,
        }
    }

    /// The line `pos..end` of the chunk (`pos` a line start, `end` its line ending) as text,
    /// or `None` when it holds invalid UTF-8.
    #[inline]
    fn line(&mut self, pos: usize, end: usize) -> Option<&'c str> {
        // CR and LF are ASCII, so `pos` and `end` are on character boundaries of the window
        // whenever they are inside it: `get` fails only outside it.
        let line = pos
            .checked_sub(self.start)
            .and_then(|from| self.text.get(from..end - self.start));
        if line.is_some() {
            return line;
        }
        let to = end.max(pos + self.ahead).min(self.chunk.len());
        let window = self.chunk.get(pos..to)?;
        self.start = pos;
        self.text = valid_prefix(window);
        self.ahead = if self.text.len() == window.len() {
            (2 * self.ahead).clamp(64, MAX_WINDOW)
        } else {
            0
        };
        self.text.get(..end - pos)
    }
}

/// The longest prefix of `bytes` that is valid UTF-8.
///
/// Valid text (the common case) is checked once with SIMD; only invalid input pays for the
/// slower check that finds where the valid part ends.
fn valid_prefix(bytes: &[u8]) -> &str {
    if let Ok(text) = simdutf8::basic::from_utf8(bytes) {
        return text;
    }
    match simdutf8::compat::from_utf8(bytes) {
        Ok(text) => text,
        // Valid up to there by definition; the default is never used.
        Err(e) => simdutf8::basic::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
    }
}
