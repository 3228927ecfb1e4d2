#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Properties: what the encoder writes, the decoder reads back exactly; and however a byte
//! stream is cut into chunks, the decoder sees the same stream.

mod common;

use common::{borrowed, run};
use proptest::prelude::*;
use ssecast::{
    encode, encode_comment, encode_retry, Comment, Event, EventId, EventType, Limits, MessageEvent,
    Millis,
};

/// Characters that matter to the wire format, mixed with any character at all.
fn field_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => any::<char>(),
        2 => prop::sample::select(vec!['\n', '\r', ':', ' ', '\0', '\u{feff}', '\u{fffd}']),
        4 => prop::char::range('a', 'e'),
    ]
}

fn field_string() -> impl Strategy<Value = String> {
    prop::collection::vec(field_char(), 0..24).prop_map(|chars| chars.into_iter().collect())
}

/// Arbitrary events; ids and types that would not validate are left out.
fn event() -> impl Strategy<Value = Event> {
    (
        field_string(),
        prop::option::of(field_string()),
        prop::option::of(field_string()),
        prop::option::of(any::<u64>()),
    )
        .prop_map(|(data, event_type, id, retry)| {
            let mut e = Event::new(data);
            if let Some(t) = event_type.and_then(|t| EventType::new(t).ok()) {
                e = e.with_type(t);
            }
            if let Some(id) = id.and_then(|id| EventId::new(id).ok()) {
                e = e.with_id(id);
            }
            if let Some(ms) = retry {
                e = e.with_retry(Millis(ms));
            }
            e
        })
}

/// What a client must see for `events` published in order.
fn expected(events: &[Event]) -> Vec<MessageEvent> {
    let mut last_id = String::new();
    events
        .iter()
        .map(|e| {
            if let Some(id) = e.id() {
                last_id = id.as_str().to_owned();
            }
            let event_type = match e.event_type().map(EventType::as_str) {
                None | Some("") => "message",
                Some(t) => t,
            };
            MessageEvent {
                event_type: event_type.to_owned(),
                data: e.data().to_owned(),
                last_event_id: last_id.clone(),
            }
        })
        .collect()
}

/// Pieces of byte streams that exercise every rule, and any byte.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        prop::sample::select(vec![
            &b"data"[..],
            b"data:",
            b"data: ",
            b"id",
            b"id: ",
            b"event:",
            b"retry:",
            b"retry: 12",
            b":",
            b" ",
            b"\r",
            b"\n",
            b"\r\n",
            b"\n\n",
            b"\0",
            b"\xef\xbb\xbf",
            b"\xef\xbb",
            b"\xe2\x82\xac",
            b"\xe2\x82",
            b"\xf0\x9f\x98\x80",
            b"\xff",
            b"x",
            b"7",
        ])
        .prop_map(<[u8]>::to_vec),
        any::<u8>().prop_map(|b| vec![b]),
    ];
    prop::collection::vec(token, 0..64).prop_map(|tokens| tokens.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_inverts_encode(
        events in prop::collection::vec(event(), 1..6),
        comments in prop::collection::vec(prop::option::of(field_string()), 6),
    ) {
        let mut wire = Vec::new();
        for (e, comment) in events.iter().zip(&comments) {
            // Comments between events must change nothing.
            if let Some(c) = comment.as_ref().and_then(|c| Comment::new(c.as_str()).ok()) {
                encode_comment(&c, &mut wire);
            }
            encode(e, &mut wire);
        }
        let out = run(Limits::default(), [&wire[..]]);
        prop_assert_eq!(out.events, expected(&events));
        prop_assert_eq!(out.retry, events.iter().rev().find_map(Event::retry));
        prop_assert_eq!(out.error, None);
    }

    #[test]
    fn retry_frames_decode(ms in any::<u64>()) {
        let mut wire = Vec::new();
        encode_retry(Millis(ms), &mut wire);
        let out = run(Limits::default(), [&wire[..]]);
        prop_assert_eq!(out.retry, Some(Millis(ms)));
        prop_assert!(out.events.is_empty());
    }

    #[test]
    fn any_chunking_decodes_the_same(
        input in stream(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        small_limits in any::<bool>(),
    ) {
        let limits = if small_limits {
            Limits { max_line: 12, max_event: 10 }
        } else {
            Limits::default()
        };
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut from = 0;
        for cut in cuts {
            chunks.push(&input[from..cut]);
            from = cut;
        }
        chunks.push(&input[from..]);
        let whole = run(limits, [&input[..]]);
        prop_assert_eq!(&borrowed(limits, &chunks, false), &whole.events);
        prop_assert_eq!(run(limits, chunks), whole);
    }
}
