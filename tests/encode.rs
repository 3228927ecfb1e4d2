#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Exact wire bytes of encoded events, comments and retry frames, and refusal of values that
//! could inject a field.

use ssecast::{
    encode, encode_comment, encode_retry, encoded_len, Comment, Event, EventId, EventType,
    FieldError, Frame, Millis,
};

/// An event from (data, type, id, retry); `None` leaves the field out.
fn event(data: &str, event_type: Option<&str>, id: Option<&str>, retry: Option<u64>) -> Event {
    let mut e = Event::new(data);
    if let Some(t) = event_type {
        e = e.with_type(EventType::new(t).unwrap());
    }
    if let Some(id) = id {
        e = e.with_id(EventId::new(id).unwrap());
    }
    if let Some(ms) = retry {
        e = e.with_retry(Millis(ms));
    }
    e
}

/// Encodes `e` three ways (into an empty Vec, appended to existing bytes, as a Frame) and
/// checks the bytes and `encoded_len`.
fn check(e: Event, expected: &[u8]) {
    let mut out = Vec::new();
    encode(&e, &mut out);
    assert_eq!(
        out.escape_ascii().to_string(),
        expected.escape_ascii().to_string()
    );
    assert_eq!(encoded_len(&e), expected.len(), "encoded_len of {e:?}");
    let mut appended = b"prefix".to_vec();
    encode(&e, &mut appended);
    assert_eq!(&appended[6..], expected);
    let frame = Frame::event(&e);
    assert_eq!(frame.as_bytes(), expected);
    assert_eq!(frame.len(), expected.len());
    assert!(!frame.is_empty());
}

fn check_data(data: &str, expected: &[u8]) {
    check(event(data, None, None, None), expected);
}

#[test]
fn data_lines() {
    check_data("", b"data: \n\n");
    check_data("hi", b"data: hi\n\n");
    check_data("a\nb", b"data: a\ndata: b\n\n");
    check_data("a\n", b"data: a\ndata: \n\n");
    check_data("\n", b"data: \ndata: \n\n");
    check_data("\n\n", b"data: \ndata: \ndata: \n\n");
    check_data("a\n\nb", b"data: a\ndata: \ndata: b\n\n");
    check_data(" lead", b"data:  lead\n\n");
    check_data("trail ", b"data: trail \n\n");
    check_data(":colon", b"data: :colon\n\n");
    check_data("data: x", b"data: data: x\n\n");
    check_data("a\0b", b"data: a\0b\n\n");
    check_data(
        "\u{20ac}\u{1f600}\u{feff}",
        "data: \u{20ac}\u{1f600}\u{feff}\n\n".as_bytes(),
    );
    // Line breaks other than CR and LF are content.
    check_data(
        "a\u{85}b\u{2028}c\x0c",
        "data: a\u{85}b\u{2028}c\x0c\n\n".as_bytes(),
    );
}

#[test]
fn carriage_returns_are_normalised() {
    check_data("a\rb", b"data: a\ndata: b\n\n");
    check_data("a\r\nb", b"data: a\ndata: b\n\n");
    check_data("a\r\rb", b"data: a\ndata: \ndata: b\n\n");
    check_data("a\n\rb", b"data: a\ndata: \ndata: b\n\n");
    check_data("\r\n", b"data: \ndata: \n\n");
    check_data("\r", b"data: \ndata: \n\n");
}

#[test]
fn fields() {
    check(
        event("d", Some("up"), None, None),
        b"event: up\ndata: d\n\n",
    );
    check(event("d", None, Some("42"), None), b"id: 42\ndata: d\n\n");
    check(event("d", None, Some(""), None), b"id: \ndata: d\n\n");
    check(
        event("d", None, None, Some(3000)),
        b"retry: 3000\ndata: d\n\n",
    );
    check(event("d", None, None, Some(0)), b"retry: 0\ndata: d\n\n");
    check(
        event("d", None, None, Some(u64::MAX)),
        b"retry: 18446744073709551615\ndata: d\n\n",
    );
    check(
        event("a\nb", Some("t"), Some("7"), Some(10)),
        b"event: t\nid: 7\nretry: 10\ndata: a\ndata: b\n\n",
    );
    check(
        event("d", Some(" sp "), None, None),
        b"event:  sp \ndata: d\n\n",
    );
    check(event("d", Some(""), None, None), b"event: \ndata: d\n\n");
    check(
        event("d", Some("a\0b"), None, None),
        b"event: a\0b\ndata: d\n\n",
    );
    check(
        event("d", Some("\u{e9}"), Some("\u{1f600}"), None),
        "event: \u{e9}\nid: \u{1f600}\ndata: d\n\n".as_bytes(),
    );
    assert_eq!(EventId::from(17).as_str(), "17");
    check(
        Event::new("d").with_id(EventId::from(u64::MAX)),
        b"id: 18446744073709551615\ndata: d\n\n",
    );
}

#[test]
fn retry_lengths() {
    for ms in [
        0,
        9,
        10,
        99,
        100,
        12345,
        u64::MAX / 10,
        u64::MAX - 1,
        u64::MAX,
    ] {
        let mut out = Vec::new();
        encode_retry(Millis(ms), &mut out);
        assert_eq!(out, format!("retry: {ms}\n\n").as_bytes());
        assert_eq!(Frame::retry(Millis(ms)).as_bytes(), out);
        check(
            event("", None, None, Some(ms)),
            format!("retry: {ms}\ndata: \n\n").as_bytes(),
        );
    }
}

#[test]
fn comments() {
    let check_comment = |text: &str, expected: &[u8]| {
        let c = Comment::new(text).unwrap();
        let mut out = Vec::new();
        encode_comment(&c, &mut out);
        assert_eq!(out, expected);
        assert_eq!(Frame::comment(&c).as_bytes(), expected);
    };
    check_comment("ping", b": ping\n\n");
    check_comment("", b": \n\n");
    check_comment(":x", b": :x\n\n");
    check_comment("\u{e9}", ": \u{e9}\n\n".as_bytes());
}

#[test]
fn injection_is_refused() {
    let id = |s: &str| EventId::new(s).err();
    let ty = |s: &str| EventType::new(s).err();
    let comment = |s: &str| Comment::new(s).err();
    assert_eq!(id("1\n\ndata: evil"), Some(FieldError::LineFeed));
    assert_eq!(id("1\rdata: evil"), Some(FieldError::CarriageReturn));
    assert_eq!(id("1\r\n"), Some(FieldError::CarriageReturn));
    assert_eq!(id("1\0"), Some(FieldError::Nul));
    assert_eq!(id(&"9".repeat(EventId::MAX_LEN)), None);
    assert_eq!(
        id(&"9".repeat(EventId::MAX_LEN + 1)),
        Some(FieldError::TooLong {
            max: EventId::MAX_LEN
        })
    );
    assert_eq!(ty("a\nb"), Some(FieldError::LineFeed));
    assert_eq!(ty("a\rb"), Some(FieldError::CarriageReturn));
    assert_eq!(ty("a\0b"), None);
    assert_eq!(ty("a\0\n"), Some(FieldError::LineFeed));
    assert_eq!(
        ty(&"t".repeat(EventType::MAX_LEN + 1)),
        Some(FieldError::TooLong {
            max: EventType::MAX_LEN
        })
    );
    assert_eq!(comment("a\nb"), Some(FieldError::LineFeed));
    assert_eq!(comment("a\rb"), Some(FieldError::CarriageReturn));
    assert_eq!(comment("a\0b"), None);
}

#[test]
fn errors_display() {
    assert_eq!(
        FieldError::LineFeed.to_string(),
        "contains a line feed (LF)"
    );
    assert_eq!(
        FieldError::TooLong { max: 3 }.to_string(),
        "is longer than 3 bytes"
    );
}
