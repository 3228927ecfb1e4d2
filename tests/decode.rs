#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The decoder against the WHATWG "parsing an event stream" and "interpreting an event
//! stream" rules. Every case is decoded whole, split in two at every offset, and byte by byte,
//! and all three must agree.

use ssecast::{DecodeError, Decoder, Limits, MessageEvent, Millis};

mod common;

use common::{run, Outcome};

/// Decodes `input` whole, split at every offset and byte by byte; all must agree.
fn decode_with(limits: Limits, input: &[u8]) -> Outcome {
    let whole = run(limits, [input]);
    for at in 0..=input.len() {
        let (a, b) = input.split_at(at);
        let split = run(limits, [a, b]);
        assert_eq!(
            split,
            whole,
            "split at {at}: {:?}",
            input.escape_ascii().to_string()
        );
    }
    let bytes = run(limits, input.chunks(1));
    assert_eq!(
        bytes,
        whole,
        "byte by byte: {:?}",
        input.escape_ascii().to_string()
    );
    whole
}

fn decode(input: &[u8]) -> Outcome {
    decode_with(Limits::default(), input)
}

fn msg(event_type: &str, data: &str, last_event_id: &str) -> MessageEvent {
    MessageEvent {
        event_type: event_type.into(),
        data: data.into(),
        last_event_id: last_event_id.into(),
    }
}

/// `expected` lists (type, data, last event ID) of the dispatched events.
fn check(input: &[u8], expected: &[(&str, &str, &str)]) {
    let out = decode(input);
    let expected: Vec<_> = expected.iter().map(|&(t, d, id)| msg(t, d, id)).collect();
    assert_eq!(
        out.events,
        expected,
        "{:?}",
        input.escape_ascii().to_string()
    );
    assert_eq!(out.error, None);
}

/// Checks only the data of the dispatched events, all of type `message` with no id.
fn check_data(input: &[u8], expected: &[&str]) {
    let expected: Vec<_> = expected.iter().map(|d| ("message", *d, "")).collect();
    check(input, &expected);
}

fn check_id(input: &[u8], last_event_id: &str) {
    assert_eq!(decode(input).last_event_id, last_event_id, "{input:?}");
}

fn check_retry(input: &[u8], retry: Option<u64>) {
    assert_eq!(decode(input).retry, retry.map(Millis), "{input:?}");
}

fn check_comments(input: &[u8], comments: &[&str]) {
    assert_eq!(decode(input).comments, comments, "{input:?}");
}

/// The data of the dispatched events and the first error, under `limits`.
fn check_limits(limits: (usize, usize), input: &[u8], data: &[&str], error: Option<DecodeError>) {
    let limits = Limits {
        max_line: limits.0,
        max_event: limits.1,
    };
    let out = decode_with(limits, input);
    let got: Vec<&str> = out.events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!((got, out.error), (data.to_vec(), error), "{input:?}");
}

#[test]
fn spec_examples() {
    // The stock ticker.
    check_data(b"data: YHOO\ndata: +2\ndata: 10\n\n", &["YHOO\n+2\n10"]);
    // Comment, first event with id 1, second resets the id, third has a leading space.
    let ids = b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n";
    check(
        ids,
        &[
            ("message", "first event", "1"),
            ("message", "second event", ""),
            ("message", " third event", ""),
        ],
    );
    // The same without the final blank line: the last block is never dispatched.
    check(
        &ids[..ids.len() - 1],
        &[
            ("message", "first event", "1"),
            ("message", "second event", ""),
        ],
    );
    // Empty data, a single newline, and an unterminated block.
    check_data(b"data\n\ndata\ndata\n\ndata:", &["", "\n"]);
    // Two identical events: one leading space is removed.
    check_data(b"data:test\n\ndata: test\n\n", &["test", "test"]);
}

#[test]
fn line_endings() {
    check_data(b"data: a\n\n", &["a"]);
    check_data(b"data: a\r\r", &["a"]);
    check_data(b"data: a\r\n\r\n", &["a"]);
    check_data(b"data: a\r\n\n", &["a"]);
    check_data(b"data: a\n\r\n", &["a"]);
    check_data(b"data: a\n\r", &["a"]);
    check_data(b"data: a\r\r\n", &["a"]);
    check_data(b"data: a\rdata: b\ndata: c\r\ndata: d\n\n", &["a\nb\nc\nd"]);
    // LF CR is two line endings: a blank line.
    check_data(b"data: a\n\rdata: b\n\n", &["a", "b"]);
    // CR CR LF: the line, then a blank line ended by CRLF.
    check_data(b"data: a\r\r\ndata: b\r\n\r\n", &["a", "b"]);
    check_data(b"\r\n\r\n\n\r\rdata: a\r\n\r\n", &["a"]);
    // Nothing else ends a line: FF, VT, NEL, LS, PS.
    check_data(
        b"data: a\x0cb\x0bc\xc2\x85d\xe2\x80\xa8e\xe2\x80\xa9\n\n",
        &["a\x0cb\x0bc\u{85}d\u{2028}e\u{2029}"],
    );
    check_data(b"data: a\0b\n\n", &["a\0b"]);
}

#[test]
fn dispatch() {
    check_data(b"", &[]);
    check_data(b"data: a", &[]);
    check_data(b"data: a\n", &[]);
    check_data(b"data: a\r", &[]);
    check_data(b"data: a\n\ndata: b\n", &["a"]);
    check_data(b"\n\n\n\r\n", &[]);
    check_data(b"data: a\n\n\n\n", &["a"]);
    check_data(b"data: a\n\ndata: b\n\n", &["a", "b"]);
    check_data(b"data\n\n", &[""]);
    check_data(b"data:\n\n", &[""]);
    check_data(b"data: \n\n", &[""]);
    check_data(b"data:\ndata:\n\n", &["\n"]);
    check_data(b"data: a\ndata:\ndata: b\n\n", &["a\n\nb"]);
    check_data(b"data: a\n\n\n", &["a"]);
    // A block with fields but no data dispatches nothing.
    check_data(b"event: x\nid: 1\n\n", &[]);
}

#[test]
fn field_parsing() {
    check_data(b"data:  two spaces\n\n", &[" two spaces"]);
    check_data(b"data:\ttab\n\n", &["\ttab"]);
    check_data(b"data: trailing \n\n", &["trailing "]);
    check_data(b"data: a:b: c\n\n", &["a:b: c"]);
    check_data(b"data::\n\n", &[":"]);
    // Field names are exact and case-sensitive; unknown fields are ignored.
    check_data(b"Data: x\n\n", &[]);
    check_data(b"DATA: x\n\n", &[]);
    check_data(b"data : x\n\n", &[]);
    check_data(b" data: x\n\n", &[]);
    check_data(b"datas: x\n\n", &[]);
    check_data(b"dat: x\n\n", &[]);
    check_data(b"foo: x\ndata: a\nbar\n\n", &["a"]);
    check_data(b"dat\xe1: a\n\n", &[]);
}

#[test]
fn event_type() {
    check(b"event: x\ndata: a\n\n", &[("x", "a", "")]);
    check(b"data: a\nevent: x\n\n", &[("x", "a", "")]);
    check(b"event:x\ndata: a\n\n", &[("x", "a", "")]);
    check(b"event:  x \ndata: a\n\n", &[(" x ", "a", "")]);
    check(b"event: x\nevent: y\ndata: a\n\n", &[("y", "a", "")]);
    check(b"event:\ndata: a\n\n", &[("message", "a", "")]);
    check(b"event\ndata: a\n\n", &[("message", "a", "")]);
    check(b"event: x\nevent\ndata: a\n\n", &[("message", "a", "")]);
    // The type buffer resets at every blank line, dispatch or not.
    check(b"event: x\n\ndata: a\n\n", &[("message", "a", "")]);
    check(
        b"event: x\ndata: a\n\ndata: b\n\n",
        &[("x", "a", ""), ("message", "b", "")],
    );
    check(b"Event: x\ndata: a\n\n", &[("message", "a", "")]);
    check(b"event: \xff\ndata: a\n\n", &[("\u{fffd}", "a", "")]);
}

#[test]
fn event_id() {
    check(b"id: 1\ndata: a\n\n", &[("message", "a", "1")]);
    check(b"data: a\nid: 1\n\n", &[("message", "a", "1")]);
    check(b"id:1\ndata: a\n\n", &[("message", "a", "1")]);
    check(b"id:  1 \ndata: a\n\n", &[("message", "a", " 1 ")]);
    // The last event ID persists across events...
    check(
        b"id: 1\ndata: a\n\ndata: b\n\n",
        &[("message", "a", "1"), ("message", "b", "1")],
    );
    // ... until an empty id resets it ...
    check(
        b"id: 1\ndata: a\n\nid\ndata: b\n\n",
        &[("message", "a", "1"), ("message", "b", "")],
    );
    check(
        b"id: 1\ndata: a\n\nid:\ndata: b\n\n",
        &[("message", "a", "1"), ("message", "b", "")],
    );
    // ... and an id containing NUL is ignored.
    check(
        b"id: 1\ndata: a\n\nid: 2\0\ndata: b\n\n",
        &[("message", "a", "1"), ("message", "b", "1")],
    );
    check(b"id: \0\ndata: a\n\n", &[("message", "a", "")]);
    check(b"id: 1\nid: 2\ndata: a\n\n", &[("message", "a", "2")]);
    check(b"ID: 1\ndata: a\n\n", &[("message", "a", "")]);
    check(b"id: \xff1\ndata: a\n\n", &[("message", "a", "\u{fffd}1")]);
    // The last event ID is set from the buffer at a blank line, dispatch or not.
    check_id(b"id: 1\n", "");
    check_id(b"id: 1\n\n", "1");
    check_id(b"id: 1\ndata: a\n\nid: 2\n", "1");
    check_id(b"id: 1\ndata: a\n\nid: 2\n\n", "2");
    check_id(b"id: 1\n\nid\n\n", "");
    check_id(b"id: 1\n\nid: 2\0\n\n", "1");
}

#[test]
fn retry() {
    check_retry(b"retry: 1000\n", Some(1000));
    check_retry(b"retry:1000\n", Some(1000));
    check_retry(b"retry: 0\n", Some(0));
    check_retry(b"retry: 007\n", Some(7));
    check_retry(b"retry: 1000\nretry: 5\n", Some(5));
    // Only ASCII digits count; anything else is ignored and keeps the previous value.
    check_retry(b"retry: 1000\nretry: x\n", Some(1000));
    check_retry(b"retry: 1a\n", None);
    check_retry(b"retry: \n", None);
    check_retry(b"retry:\n", None);
    check_retry(b"retry\n", None);
    check_retry(b"retry: -1\n", None);
    check_retry(b"retry: +1\n", None);
    check_retry(b"retry: 1.5\n", None);
    check_retry(b"retry: 1e3\n", None);
    check_retry(b"retry:  10\n", None);
    check_retry(b"retry: 10 \n", None);
    check_retry(b"retry: \xd9\xa1\n", None);
    check_retry(b"Retry: 5\n", None);
    // Large values are held; beyond u64 they saturate.
    check_retry(b"retry: 4294967296\n", Some(4_294_967_296));
    check_retry(b"retry: 18446744073709551615\n", Some(u64::MAX));
    check_retry(b"retry: 18446744073709551616\n", Some(u64::MAX));
    check_retry(b"retry: 999999999999999999999999999999\n", Some(u64::MAX));
    // It applies when its line is read, not at dispatch; an unfinished line does not count.
    check_retry(b"data: a\nretry: 5\n", Some(5));
    check_retry(b"retry: 5", None);
    check_retry(b"retry: 5\r", Some(5));
    check_data(b"retry: 5\n\n", &[]);
    check_data(b"retry: 5\ndata: a\n\n", &["a"]);
}

#[test]
fn comments() {
    check_comments(b": hi\n", &[" hi"]);
    check_comments(b":hi\r\n", &["hi"]);
    check_comments(b":\n", &[""]);
    check_comments(b"::x\n", &[":x"]);
    check_comments(b":a\r:b\n:c\r\n", &["a", "b", "c"]);
    check_comments(b": unterminated", &[]);
    check_comments(b" : not a comment\n", &[]);
    check_comments(b":\xff\n", &["\u{fffd}"]);
    check_data(b": x\n\n", &[]);
    check_data(b"data: a\n: c\ndata: b\n\n", &["a\nb"]);
    check_data(b"data: a\n:\n\n", &["a"]);

    let mut decoder = Decoder::new();
    decoder.feed(b": hidden\ndata: a\n\n").unwrap();
    assert_eq!(decoder.next_comment(), None);
    assert_eq!(decoder.next_event().unwrap().data, "a");
}

#[test]
fn byte_order_mark() {
    check_data(b"\xef\xbb\xbfdata: a\n\n", &["a"]);
    check_data(b"\xef\xbb\xbf\ndata: a\n\n", &["a"]);
    // Only one, only at the very start.
    check_data(b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\n", &[]);
    check_data(b"data: \xef\xbb\xbfa\n\n", &["\u{feff}a"]);
    check_data(b"\ndata: a\n\n\xef\xbb\xbfdata: b\n\n", &["a"]);
    // A prefix of a BOM is content: the first line's field name is then not `data`.
    check_data(b"\xefdata: a\n\n", &[]);
    check_data(b"\xef\xbbdata: a\n\n", &[]);
    check_data(b"\xef\xbb\ndata: a\n\n", &["a"]);
    check_data(b"\xef\xbb\xbe\ndata: a\n\n", &["a"]);
    check_comments(b"\xef\xbb\xbf: c\n", &[" c"]);
    check_comments(b"\xef\xbb: c\n", &[]);
    check_data(b"\xef\xbb\xbf", &[]);
    check_data(b"\xef\xbb", &[]);
}

#[test]
fn invalid_utf8() {
    check_data(
        b"data: \xe2\x82\xac \xf0\x9f\x98\x80\n\n",
        &["\u{20ac} \u{1f600}"],
    );
    check_data(b"data: \xff\n\n", &["\u{fffd}"]);
    // Maximal subparts: a truncated sequence is one U+FFFD...
    check_data(b"data: \xe2\x82\n\n", &["\u{fffd}"]);
    check_data(b"data: \xf0\x9f\x98x\n\n", &["\u{fffd}x"]);
    // ... and bytes that cannot start or continue one are one each.
    check_data(b"data: \xc0\xaf\n\n", &["\u{fffd}\u{fffd}"]);
    check_data(b"data: \xed\xa0\x80\n\n", &["\u{fffd}\u{fffd}\u{fffd}"]);
    check_data(
        b"data: \xf4\x90\x80\x80\n\n",
        &["\u{fffd}\u{fffd}\u{fffd}\u{fffd}"],
    );
    check_data(b"data: \x80\x80\n\n", &["\u{fffd}\u{fffd}"]);
    // A line ending cuts an incomplete sequence short.
    check_data(b"data: \xe2\x82\ndata: \xac\n\n", &["\u{fffd}\n\u{fffd}"]);
    check_data(b"data: a\xe2\x82\xacb\xffc\n\n", &["a\u{20ac}b\u{fffd}c"]);
}

#[test]
fn line_limit() {
    let line = |max| Some(DecodeError::LineTooLong { max });
    check_limits((8, 64), b"data: 12\n\n", &["12"], None);
    check_limits((8, 64), b"data: 123\n\n", &[], line(8));
    // The rest of the chunk is still decoded.
    check_limits((8, 64), b"data: 123\n\ndata: ok\n\n", &["ok"], line(8));
    // The whole event an over-long line belongs to is discarded.
    check_limits((8, 64), b"data: a\ndata: 1234\ndata: b\n\n", &[], line(8));
    check_limits(
        (8, 64),
        b"data: a\ndata: 1234\n\ndata: b\n\n",
        &["b"],
        line(8),
    );
    check_limits(
        (8, 64),
        b"id: 123456\ndata: a\n\ndata: b\n\n",
        &["b"],
        line(8),
    );
    check_limits((8, 64), b"data: 123456789\r\ndata: b\n\n", &[], line(8));
    check_limits(
        (8, 64),
        b"data: 123456789\r\n\r\ndata: b\r\n\r\n",
        &["b"],
        line(8),
    );
    check_limits((8, 64), b"data: 123456789\r\rdata: b\r\r", &["b"], line(8));
    // An over-long comment is dropped alone.
    check_limits((8, 64), b": 12345678\ndata: a\n\n", &["a"], line(8));
    // An unterminated over-long line is reported too.
    check_limits((8, 64), b"data: a\n\ndata: 123456789", &["a"], line(8));
    check_limits((0, 64), b"\n\n", &[], None);
    check_limits((0, 64), b"x\n\n", &[], line(0));
}

#[test]
fn event_limit() {
    let event = |max| Some(DecodeError::EventTooLarge { max });
    check_limits((64, 5), b"data: 12345\n\n", &["12345"], None);
    check_limits((64, 5), b"data: 12\ndata: 12\n\n", &["12\n12"], None);
    check_limits((64, 5), b"data: 123456\n\n", &[], event(5));
    check_limits((64, 5), b"data: 12\ndata: 123\n\n", &[], event(5));
    // Six empty lines are five LFs; seven are one too many.
    check_limits(
        (64, 5),
        b"data\ndata\ndata\ndata\ndata\ndata\n\n",
        &["\n\n\n\n\n"],
        None,
    );
    check_limits(
        (64, 5),
        b"data\ndata\ndata\ndata\ndata\ndata\ndata\n\n",
        &[],
        event(5),
    );
    // Its data is dropped through its blank line; decoding goes on after it.
    check_limits(
        (64, 5),
        b"data: 123456\ndata: a\n\ndata: b\n\n",
        &["b"],
        event(5),
    );
    // The first error of a chunk is the one returned.
    check_limits(
        (12, 5),
        b"data: 123456\n\ndata: 123456789\n\n",
        &[],
        event(5),
    );
    // Other fields of a discarded event still count.
    let out = decode_with(
        Limits {
            max_line: 64,
            max_event: 5,
        },
        b"data: 123456\nid: 9\nretry: 7\n\ndata: b\n\n",
    );
    assert_eq!(out.events, [msg("message", "b", "9")]);
    assert_eq!(out.retry, Some(Millis(7)));
}

#[test]
fn limits_default() {
    assert_eq!(
        Limits::default(),
        Limits {
            max_line: 16 << 20,
            max_event: 16 << 20
        }
    );
}

/// The default limits at their edge, with the input whole and in 64 KiB chunks (splitting
/// 16 MiB at every offset would take hours): `line` is refused one byte past it.
fn check_default_edge(input: &[u8], data: &[usize], error: Option<DecodeError>) {
    for chunks in [vec![input], input.chunks(64 << 10).collect()] {
        let out = run(Limits::default(), chunks);
        let sizes: Vec<usize> = out.events.iter().map(|e| e.data.len()).collect();
        assert_eq!((sizes.as_slice(), out.error), (data, error));
    }
}

#[test]
fn default_limits_at_their_edge() {
    let max = Limits::default().max_line;
    assert_eq!(Limits::default().max_event, max);
    let line = |prefix: &str, value: usize| {
        let mut bytes = prefix.as_bytes().to_vec();
        bytes.resize(prefix.len() + value, b'x');
        bytes.extend_from_slice(b"\n\n");
        bytes
    };
    // What browsers take: 1 MiB of data on one line, with its field name.
    check_default_edge(&line("data: ", 1 << 20), &[1 << 20], None);
    // A data line of exactly the limit (field name included) is taken; a byte more is not.
    check_default_edge(&line("data:", max - 5), &[max - 5], None);
    check_default_edge(&line("data: ", max - 6), &[max - 6], None);
    let too_long = Some(DecodeError::LineTooLong { max });
    check_default_edge(&line("data:", max - 4), &[], too_long);
    check_default_edge(&line("data: ", max - 5), &[], too_long);
    // The event limit: data of exactly the limit over two lines (joined by LF), and one byte
    // more.
    let two = |first: usize, second: usize| {
        let mut bytes = line("data:", first);
        bytes.pop();
        bytes.extend_from_slice(&line("data:", second));
        bytes
    };
    let half = (max - 1) / 2;
    check_default_edge(&two(half, max - 1 - half), &[max], None);
    check_default_edge(
        &two(half, max - half),
        &[],
        Some(DecodeError::EventTooLarge { max }),
    );
}

#[test]
fn feed_recovers_after_an_error() {
    let mut decoder = Decoder::with_limits(Limits {
        max_line: 16,
        max_event: 64,
    });
    let long = [b'x'; 1000];
    assert_eq!(
        decoder.feed(b"data: a\n\ndata: "),
        Ok(()),
        "nothing is too long yet"
    );
    assert_eq!(
        decoder.feed(&long),
        Err(DecodeError::LineTooLong { max: 16 })
    );
    // Reported once per line, however many chunks it spans.
    assert_eq!(decoder.feed(&long), Ok(()));
    assert_eq!(decoder.feed(b"\n\ndata: b\n\n"), Ok(()));
    let data: Vec<String> = std::iter::from_fn(|| decoder.next_event())
        .map(|e| e.data)
        .collect();
    assert_eq!(data, ["a", "b"]);
}

#[test]
fn over_long_line_in_many_chunks_is_bounded() {
    // Twice the default line limit with no line ending, in 64 KiB chunks.
    let mut decoder = Decoder::new();
    let chunk = vec![b'a'; 64 << 10];
    let chunks = 2 * Limits::default().max_line / chunk.len();
    let errors = (0..chunks)
        .filter(|_| decoder.feed(&chunk).is_err())
        .count();
    assert_eq!(errors, 1);
    decoder.feed(b"\n\ndata: after\n\n").unwrap();
    assert_eq!(decoder.next_event().unwrap().data, "after");
}

#[test]
fn reconnect() {
    let mut decoder = Decoder::new();
    decoder
        .feed(b"retry: 50\nid: 5\ndata: a\n\nid: 6\nevent: t\ndata: cut sh")
        .unwrap();
    decoder.reconnect();
    // The id buffer of the unfinished block is gone; the last event ID and retry stay.
    assert_eq!(decoder.last_event_id(), "5");
    assert_eq!(decoder.retry(), Some(Millis(50)));
    // A new stream may start with its own BOM.
    decoder.feed(b"\xef\xbb\xbfdata: b\n\n").unwrap();
    assert_eq!(decoder.next_event(), Some(msg("message", "a", "5")));
    assert_eq!(decoder.next_event(), Some(msg("message", "b", "5")));
    assert_eq!(decoder.next_event(), None);

    // Events queued before a reconnect stay queued; an over-long line is forgotten.
    let mut decoder = Decoder::with_limits(Limits {
        max_line: 8,
        max_event: 64,
    });
    assert!(decoder.feed(b"data: x\n\ndata: 123456789").is_err());
    decoder.reconnect();
    decoder.feed(b"data: y\n\n").unwrap();
    assert_eq!(decoder.next_event().unwrap().data, "x");
    assert_eq!(decoder.next_event().unwrap().data, "y");
}

#[test]
fn empty_chunks_change_nothing() {
    let mut decoder = Decoder::new();
    for chunk in [
        &b""[..],
        b"\xef",
        b"",
        b"\xbb",
        b"",
        b"\xbf",
        b"",
        b"data: a\r",
        b"",
        b"\n",
    ] {
        decoder.feed(chunk).unwrap();
    }
    decoder.feed(b"\n").unwrap();
    assert_eq!(decoder.next_event(), Some(msg("message", "a", "")));
    assert_eq!(decoder.next_event(), None);
}

#[test]
fn default_is_new() {
    let mut a = Decoder::default();
    let mut b = Decoder::new();
    let input = b"data: x\n\n";
    a.feed(input).unwrap();
    b.feed(input).unwrap();
    assert_eq!(a.next_event(), b.next_event());
}

#[test]
fn queue_order_when_never_emptied() {
    // The caller keeps one event queued at all times, and small and large (>= 4 KiB) events
    // alternate: every event must still come out whole and in order, taken owned, borrowed
    // (buffers reused), or both in turn.
    let data = |i: usize| {
        let len = if i.is_multiple_of(7) { 5000 } else { 100 };
        format!("{i:04}{}", "x".repeat(len))
    };
    for mode in ["owned", "borrowed", "mixed"] {
        let mut decoder = Decoder::new();
        let take = |decoder: &mut Decoder, i: usize| match mode {
            "owned" => decoder.next_event(),
            "mixed" if i.is_multiple_of(2) => decoder.next_event(),
            _ => decoder.next_event_ref().map(MessageEvent::from),
        };
        let mut taken = Vec::new();
        for i in 0..1000 {
            let frame = format!("id: {i}\ndata: {}\n\n", data(i));
            decoder.feed(frame.as_bytes()).unwrap();
            if i > 0 {
                taken.push(take(&mut decoder, i).unwrap());
            }
        }
        taken.extend(take(&mut decoder, 0));
        assert_eq!(take(&mut decoder, 1), None);
        assert_eq!(taken.len(), 1000, "{mode}");
        for (i, event) in taken.iter().enumerate() {
            assert_eq!(event, &msg("message", &data(i), &i.to_string()), "{mode}");
        }
    }
}

#[test]
fn borrowed_large_events_reuse_buffers() {
    // Large events taken one by one with `next_event_ref`, each split across chunks: every
    // one whole, with its own data (a reused buffer must not leak the previous event's).
    let mut decoder = Decoder::new();
    for i in 0..20 {
        let data = format!("{i}:{}", "y".repeat(5000 + 100 * (20 - i)));
        let frame = format!("event: big\ndata: {data}\n\n");
        let (a, b) = frame.as_bytes().split_at(frame.len() / 2);
        decoder.feed(a).unwrap();
        assert_eq!(decoder.next_event_ref(), None);
        decoder.feed(b).unwrap();
        let event = decoder.next_event_ref().unwrap();
        assert_eq!((event.event_type, event.data), ("big", data.as_str()));
    }
    assert_eq!(decoder.next_event_ref(), None);
}

#[test]
fn errors_display() {
    let line: Box<dyn std::error::Error> = Box::new(DecodeError::LineTooLong { max: 8 });
    assert_eq!(line.to_string(), "line longer than 8 bytes");
    assert_eq!(
        DecodeError::EventTooLarge { max: 5 }.to_string(),
        "event larger than 5 bytes"
    );
}
