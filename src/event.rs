//! Events and their validated fields.
//!
//! Values are checked once, when they are built ("parse, don't validate"), so that
//! encoding a validated [`Event`] cannot fail and cannot inject a field into the stream.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

/// A span of time or a point on the caller's monotonic clock, in milliseconds.
///
/// The core never reads a clock: callers pass the current time as a `Millis`
/// counted from an origin of their choosing (process start, `performance.now()`, ...).
///
/// ```
/// use ssecast::Millis;
/// assert_eq!(Millis(1500).saturating_add(Millis(500)), Millis(2000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub u64);

impl Millis {
    /// `self + other`, saturating at `u64::MAX`.
    pub fn saturating_add(self, other: Millis) -> Millis {
        Millis(self.0.saturating_add(other.0))
    }

    /// `self - other`, saturating at zero.
    pub fn saturating_sub(self, other: Millis) -> Millis {
        Millis(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// Why a field value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldError {
    /// The value contains a carriage return (U+000D), which would end the line.
    CarriageReturn,
    /// The value contains a line feed (U+000A), which would end the line.
    LineFeed,
    /// The value contains U+0000, which makes a client ignore an `id` field.
    Nul,
    /// The value contains another control character (Unicode category `Cc`: U+0001 to
    /// U+001F, U+007F to U+009F), refused in topic names.
    Control,
    /// The value is empty where a value is required (topic names).
    Empty,
    /// The value is longer than the limit for its kind.
    TooLong {
        /// The limit in bytes.
        max: usize,
    },
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldError::CarriageReturn => f.write_str("contains a carriage return (CR)"),
            FieldError::LineFeed => f.write_str("contains a line feed (LF)"),
            FieldError::Nul => f.write_str("contains a NUL character"),
            FieldError::Control => f.write_str("contains a control character"),
            FieldError::Empty => f.write_str("is empty"),
            FieldError::TooLong { max } => write!(f, "is longer than {max} bytes"),
        }
    }
}

impl std::error::Error for FieldError {}

fn check_line(value: &str, refuse_nul: bool) -> Result<(), FieldError> {
    match memchr::memchr3(b'\r', b'\n', b'\0', value.as_bytes()) {
        None => Ok(()),
        Some(i) => match value.as_bytes()[i] {
            b'\r' => Err(FieldError::CarriageReturn),
            b'\n' => Err(FieldError::LineFeed),
            // Only NUL is left; it is harmless in event types and comments.
            _ if !refuse_nul => check_line(&value[i + 1..], refuse_nul),
            _ => Err(FieldError::Nul),
        },
    }
}

/// An event id: a string with no CR, LF or NUL.
///
/// A client stores it as its last event ID and sends it back in `Last-Event-ID` when it
/// reconnects. An empty id is allowed: it resets the client's last event ID.
///
/// ```
/// use ssecast::{EventId, FieldError};
/// assert_eq!(EventId::new("42").unwrap().as_str(), "42");
/// assert_eq!(EventId::new("4\n2"), Err(FieldError::LineFeed));
/// assert_eq!(EventId::new("4\02"), Err(FieldError::Nul));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(Box<str>);

impl EventId {
    /// The longest id accepted, in bytes.
    pub const MAX_LEN: usize = 1024;

    /// Validates `value` as an event id.
    pub fn new(value: impl Into<String>) -> Result<EventId, FieldError> {
        let value = value.into();
        if value.len() > Self::MAX_LEN {
            return Err(FieldError::TooLong { max: Self::MAX_LEN });
        }
        check_line(&value, true)?;
        Ok(EventId(value.into_boxed_str()))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lets a map keyed by ids be searched with a `&str` (the hub's index of publisher ids).
impl Borrow<str> for EventId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<u64> for EventId {
    /// `n` in decimal (the hub's ids): digits written on the stack, one allocation.
    fn from(mut n: u64) -> EventId {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        // ASCII digits are UTF-8.
        EventId(std::str::from_utf8(&digits[i..]).unwrap_or_default().into())
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An event type (the `event:` field): a string with no CR or LF.
///
/// Browsers dispatch an event of type `T` to `addEventListener("T", ...)`; without a type
/// the event is a `message`.
///
/// ```
/// use ssecast::{EventType, FieldError};
/// assert_eq!(EventType::new("update").unwrap().as_str(), "update");
/// assert_eq!(EventType::new("a\rb"), Err(FieldError::CarriageReturn));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventType(Box<str>);

impl EventType {
    /// The longest event type accepted, in bytes.
    pub const MAX_LEN: usize = 256;

    /// Validates `value` as an event type.
    pub fn new(value: impl Into<String>) -> Result<EventType, FieldError> {
        let value = value.into();
        if value.len() > Self::MAX_LEN {
            return Err(FieldError::TooLong { max: Self::MAX_LEN });
        }
        check_line(&value, false)?;
        Ok(EventType(value.into_boxed_str()))
    }

    /// The event type as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A comment line's text: no CR or LF. Clients ignore comments; servers send them as
/// keep-alives.
///
/// ```
/// use ssecast::Comment;
/// assert!(Comment::new("ping").is_ok());
/// assert!(Comment::new("a\nb").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Comment(Box<str>);

impl Comment {
    /// Validates `value` as a comment.
    pub fn new(value: impl Into<String>) -> Result<Comment, FieldError> {
        let value = value.into();
        check_line(&value, false)?;
        Ok(Comment(value.into_boxed_str()))
    }

    /// The comment as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of a topic subscribers select and publishers publish to.
///
/// A topic name is 1 to [`Topic::MAX_LEN`] bytes with no control characters (Unicode
/// category `Cc`: U+0000 to U+001F and U+007F to U+009F). Anything else is allowed: Mercure
/// topics are IRIs, often long ones that carry another IRI percent-encoded in their query.
/// Cloning a topic is a reference-count increment.
///
/// ```
/// use ssecast::{FieldError, Topic};
/// assert_eq!(Topic::default().as_str(), "default");
/// assert!(Topic::new("news/sport").is_ok());
/// assert!(Topic::new("https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1").is_ok());
/// assert_eq!(Topic::new(""), Err(FieldError::Empty));
/// assert_eq!(Topic::new("a\u{7f}b"), Err(FieldError::Control));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Arc<str>);

impl Topic {
    /// The longest topic name accepted, in bytes: room for an IRI carrying another one in
    /// its query. The hub keeps a topic's name once per known topic (with the index entry
    /// that finds it, sharing the same allocation), so names cost at most this much per
    /// topic: see [the hub's memory bound](crate::Hub#memory).
    pub const MAX_LEN: usize = 2048;
    /// The name of the default topic.
    pub const DEFAULT: &'static str = "default";

    /// Validates `value` as a topic name.
    pub fn new(value: impl Into<String>) -> Result<Topic, FieldError> {
        let value = value.into();
        if value.is_empty() {
            return Err(FieldError::Empty);
        }
        if value.len() > Self::MAX_LEN {
            return Err(FieldError::TooLong { max: Self::MAX_LEN });
        }
        check_controls(&value)?;
        Ok(Topic(value.into()))
    }

    /// The topic name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Refuses every control character (`char::is_control` is exactly Unicode's `Cc`), naming
/// the three that would break a line as [`check_line`] does.
fn check_controls(value: &str) -> Result<(), FieldError> {
    // Controls are ASCII (below 0x20, 0x7F) or two-byte sequences starting 0xC2 (U+0080 to
    // U+009F): one pass over the bytes finds both without decoding.
    let bytes = value.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let control =
            b < 0x20 || b == 0x7F || (b == 0xC2 && bytes.get(i + 1).is_some_and(|&n| n < 0xA0));
        if control {
            return Err(match b {
                b'\r' => FieldError::CarriageReturn,
                b'\n' => FieldError::LineFeed,
                b'\0' => FieldError::Nul,
                _ => FieldError::Control,
            });
        }
    }
    Ok(())
}

impl Default for Topic {
    fn default() -> Topic {
        Topic(Arc::from(Topic::DEFAULT))
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An event to publish: data, and optionally a type, an id and a reconnection time.
///
/// Line breaks in the data are normalised to LF when the event is built (CRLF and lone CR
/// become LF), because that is what every client decodes: the data a subscriber receives is
/// exactly [`Event::data`].
///
/// ```
/// use ssecast::{Event, EventId};
/// let e = Event::new("line 1\r\nline 2").with_id(EventId::new("7").unwrap());
/// assert_eq!(e.data(), "line 1\nline 2");
/// assert_eq!(e.id().map(|id| id.as_str()), Some("7"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    data: String,
    event_type: Option<EventType>,
    id: Option<EventId>,
    retry: Option<Millis>,
}

impl Event {
    /// An event carrying `data`, with CRLF and CR normalised to LF.
    pub fn new(data: impl Into<String>) -> Event {
        let mut data = data.into();
        if memchr::memchr(b'\r', data.as_bytes()).is_some() {
            data = data.replace("\r\n", "\n").replace('\r', "\n");
        }
        Event {
            data,
            ..Event::default()
        }
    }

    /// Sets the event type.
    pub fn with_type(mut self, event_type: EventType) -> Event {
        self.event_type = Some(event_type);
        self
    }

    /// Sets the event id.
    pub fn with_id(mut self, id: EventId) -> Event {
        self.id = Some(id);
        self
    }

    /// Sets the reconnection time the client should use.
    pub fn with_retry(mut self, retry: Millis) -> Event {
        self.retry = Some(retry);
        self
    }

    /// The data, with line breaks normalised to LF.
    pub fn data(&self) -> &str {
        &self.data
    }

    /// The event type, if one was set.
    pub fn event_type(&self) -> Option<&EventType> {
        self.event_type.as_ref()
    }

    /// The id, if one was set.
    pub fn id(&self) -> Option<&EventId> {
        self.id.as_ref()
    }

    /// The reconnection time, if one was set.
    pub fn retry(&self) -> Option<Millis> {
        self.retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_allowed_in_types_but_not_ids() {
        assert!(EventType::new("a\0b").is_ok());
        assert_eq!(EventType::new("a\0b\nc"), Err(FieldError::LineFeed));
        assert_eq!(EventId::new("a\0b"), Err(FieldError::Nul));
    }

    #[test]
    fn topics_refuse_exactly_the_control_characters() {
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let topic = format!("a{c}b");
            assert_eq!(Topic::new(topic).is_ok(), !c.is_control(), "{:?}", c);
        }
        assert_eq!(Topic::new("a\rb"), Err(FieldError::CarriageReturn));
        assert_eq!(Topic::new("a\nb"), Err(FieldError::LineFeed));
        assert_eq!(Topic::new("a\0b"), Err(FieldError::Nul));
        assert_eq!(Topic::new("a\u{85}b"), Err(FieldError::Control));
        assert!(Topic::new("x".repeat(Topic::MAX_LEN)).is_ok());
        assert_eq!(
            Topic::new("x".repeat(Topic::MAX_LEN + 1)),
            Err(FieldError::TooLong {
                max: Topic::MAX_LEN
            })
        );
    }

    #[test]
    fn hub_ids_are_decimal() {
        for n in [0, 7, 10, 99, 12345, u64::MAX] {
            assert_eq!(EventId::from(n).as_str(), n.to_string());
        }
    }

    #[test]
    fn data_line_breaks_are_normalised() {
        assert_eq!(Event::new("a\rb\r\nc\n\r").data(), "a\nb\nc\n\n");
    }
}
