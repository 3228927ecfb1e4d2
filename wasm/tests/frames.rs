//! Frame parsing and encoding through the JavaScript facade, run by `wasm-pack test` in Node
//! and in headless Chromium: the core compiled to wasm, and the conversions around it.
//!
//! No `run_in_browser` configuration, on purpose: the same file runs in both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use js_sys::{Array, Reflect, JSON};
use ssecast_wasm::{encode, Decoder, DecoderLimits, SseEventInit, SseEvents};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

/// `(type, data, lastEventId)` of each event, in order.
type Seen = Vec<(String, String, String)>;

fn field(object: &JsValue, name: &str) -> String {
    Reflect::get(object, &name.into())
        .unwrap()
        .as_string()
        .unwrap_or_else(|| panic!("{name} is not a string"))
}

fn seen(events: SseEvents) -> Seen {
    let events: Array = events.unchecked_into();
    events
        .iter()
        .map(|e| {
            // Exactly the three documented properties, as plain data.
            let keys: Vec<String> = js_sys::Object::keys(e.unchecked_ref::<js_sys::Object>())
                .iter()
                .map(|k| k.as_string().unwrap())
                .collect();
            assert_eq!(keys, ["type", "data", "lastEventId"]);
            (
                field(&e, "type"),
                field(&e, "data"),
                field(&e, "lastEventId"),
            )
        })
        .collect()
}

fn feed(decoder: &mut Decoder, chunk: &[u8]) -> Seen {
    seen(decoder.feed(chunk).unwrap())
}

fn expected(events: &[(&str, &str, &str)]) -> Seen {
    events
        .iter()
        .map(|&(t, d, id)| (t.to_owned(), d.to_owned(), id.to_owned()))
        .collect()
}

/// Decodes `input` whole, then split into two chunks at every byte, then one byte at a time,
/// and checks each way gives `events`.
fn check(input: &[u8], events: &[(&str, &str, &str)]) {
    let want = expected(events);
    let mut whole = Decoder::new(None).unwrap();
    assert_eq!(feed(&mut whole, input), want, "whole: {input:?}");
    for at in 0..=input.len() {
        let mut d = Decoder::new(None).unwrap();
        let mut got = feed(&mut d, &input[..at]);
        got.extend(feed(&mut d, &input[at..]));
        assert_eq!(got, want, "split at {at}: {input:?}");
    }
    let mut d = Decoder::new(None).unwrap();
    let got: Seen = input.iter().flat_map(|b| feed(&mut d, &[*b])).collect();
    assert_eq!(got, want, "byte by byte: {input:?}");
}

fn msg(data: &str) -> (&str, &str, &str) {
    ("message", data, "")
}

#[wasm_bindgen_test]
fn line_endings() {
    check(b"data: a\n\n", &[msg("a")]);
    check(b"data: a\r\n\r\n", &[msg("a")]);
    check(b"data: a\r\r", &[msg("a")]);
    check(b"data: a\rdata: b\r\ndata: c\n\n", &[msg("a\nb\nc")]);
    // CR then LF is one line ending, wherever the chunk boundary falls: one event, not two.
    check(b"data: a\r\n\r\ndata: b\r\n\r\n", &[msg("a"), msg("b")]);
    // LF CR is two line endings: the CR ends an empty line and dispatches.
    check(b"data: a\n\rdata: b\n\n", &[msg("a"), msg("b")]);
}

/// A stream longer than the decoder's scan windows (4 KiB), with lines of every length up to
/// a few hundred bytes and all three line endings, so that line endings fall at every place
/// in the 64-byte blocks and across windows, on wasm's own comparison code.
#[wasm_bindgen_test]
fn long_stream_across_scan_windows() {
    let mut input = Vec::new();
    let mut want = Vec::new();
    for i in 0..400usize {
        let data = "x".repeat(i * 7 % 300);
        let ending = ["\n", "\r", "\r\n"][i % 3];
        let id = i.to_string();
        input.extend(format!("id: {id}{ending}data: {data}{ending}{ending}").bytes());
        want.push(("message".to_owned(), data, id));
    }
    assert!(input.len() > 3 * 4096);
    let mut whole = Decoder::new(None).unwrap();
    assert_eq!(feed(&mut whole, &input), want, "whole");
    for size in [1, 63, 64, 65, 4095, 4096, 4097] {
        let mut d = Decoder::new(None).unwrap();
        let got: Seen = input.chunks(size).flat_map(|c| feed(&mut d, c)).collect();
        assert_eq!(got, want, "in chunks of {size}");
    }
}

#[wasm_bindgen_test]
fn crlf_split_across_chunks() {
    let mut d = Decoder::new(None).unwrap();
    assert_eq!(feed(&mut d, b"data: a\r"), expected(&[]));
    assert_eq!(feed(&mut d, b"\ndata: b\r"), expected(&[]));
    assert_eq!(feed(&mut d, b"\n\r"), expected(&[msg("a\nb")]));
    assert_eq!(feed(&mut d, b"\n"), expected(&[]));
    assert_eq!(feed(&mut d, b"data: c\n\n"), expected(&[msg("c")]));
}

#[wasm_bindgen_test]
fn byte_order_mark() {
    check(b"\xEF\xBB\xBFdata: a\n\n", &[msg("a")]);
    // Only one leading BOM is skipped: a second one is part of the field name.
    check(
        b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n",
        &[msg("b")],
    );
    // A BOM later in the stream is data.
    check(b"data: \xEF\xBB\xBFa\n\n", &[msg("\u{FEFF}a")]);
}

#[wasm_bindgen_test]
fn utf8_split_inside_sequences() {
    check("data: é€😀\n\n".as_bytes(), &[msg("é€😀")]);
    check("event: ünï\ndata: x\n\n".as_bytes(), &[("ünï", "x", "")]);
    // Invalid UTF-8 becomes U+FFFD, as in a browser.
    check(b"data: a\xFFb\n\n", &[msg("a\u{FFFD}b")]);
    check(b"data: \xF0\x9F\x98\n\n", &[msg("\u{FFFD}")]);
}

#[wasm_bindgen_test]
fn fields_and_dispatch() {
    check(b"data:a\n\n", &[msg("a")]);
    check(b"data:  a\n\n", &[msg(" a")]);
    check(b"data\n\n", &[msg("")]);
    check(b"data\ndata\n\n", &[msg("\n")]);
    check(b"data: a\ndata:\n\n", &[msg("a\n")]);
    check(b": a comment\ndata: a\n\n", &[msg("a")]);
    check(b"bogus: x\ndata: a\n\n", &[msg("a")]);
    check(
        b"event: up\ndata: a\n\ndata: b\n\n",
        &[("up", "a", ""), msg("b")],
    );
    check(b"event:\ndata: a\n\n", &[msg("a")]);
    // No data: nothing is dispatched, and the type does not leak into the next event.
    check(b"event: up\n\ndata: a\n\n", &[msg("a")]);
    // An unterminated final event is never dispatched.
    check(b"data: a\n\ndata: b\n", &[msg("a")]);
    check(b"data: a", &[]);
}

#[wasm_bindgen_test]
fn ids() {
    check(
        b"id: 1\ndata: a\n\ndata: b\n\n",
        &[("message", "a", "1"), ("message", "b", "1")],
    );
    check(
        b"id: 1\ndata: a\n\nid\ndata: b\n\n",
        &[("message", "a", "1"), msg("b")],
    );
    // An id holding NUL is ignored: the last event ID stays what it was.
    check(
        b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
        &[("message", "a", "1"), ("message", "b", "1")],
    );
    check(b"id: \xC3\xA9\ndata: a\n\n", &[("message", "a", "é")]);

    // An id without data dispatches nothing but still sets the last event ID.
    let mut d = Decoder::new(None).unwrap();
    assert_eq!(feed(&mut d, b"id: 5\n\n"), expected(&[]));
    assert_eq!(d.last_event_id(), "5");
    assert_eq!(
        feed(&mut d, b"data: a\n\n"),
        expected(&[("message", "a", "5")])
    );
}

#[wasm_bindgen_test]
fn retry_rules() {
    let retry = |input: &[u8]| {
        let mut d = Decoder::new(None).unwrap();
        assert_eq!(feed(&mut d, input), expected(&[]));
        d.retry()
    };
    assert_eq!(retry(b"retry: 1500\n"), Some(1500.0));
    assert_eq!(retry(b"retry:0\n"), Some(0.0));
    assert_eq!(retry(b"retry: 1500\nretry: 15a0\n"), Some(1500.0));
    assert_eq!(retry(b"retry: -1\n"), None);
    assert_eq!(retry(b"retry: 1.5\n"), None);
    assert_eq!(retry(b"retry:  15\n"), None);
    assert_eq!(retry(b"retry:\n"), None);
    assert_eq!(retry(b"retry\n"), None);
    // Only a complete line counts.
    assert_eq!(retry(b"retry: 15"), None);
    // A retry field alone dispatches nothing, even with data after a blank line.
    check(b"retry: 10\n\ndata: a\n\n", &[msg("a")]);
}

#[wasm_bindgen_test]
fn reconnect_keeps_the_id_and_retry_and_reset_forgets_them() {
    let mut d = Decoder::new(None).unwrap();
    assert_eq!(
        feed(&mut d, b"retry: 250\nid: 3\ndata: a\n\ndata: cut sh"),
        expected(&[("message", "a", "3")])
    );
    d.reconnect();
    assert_eq!((d.last_event_id().as_str(), d.retry()), ("3", Some(250.0)));
    // The partial event is gone, and a new connection may start with a BOM.
    assert_eq!(
        feed(&mut d, b"\xEF\xBB\xBFdata: b\n\n"),
        expected(&[("message", "b", "3")])
    );
    d.reset();
    assert_eq!((d.last_event_id().as_str(), d.retry()), ("", None));
    assert_eq!(feed(&mut d, b"data: c\n\n"), expected(&[msg("c")]));
}

fn limits(json: &str) -> Option<DecoderLimits> {
    Some(JSON::parse(json).unwrap().unchecked_into())
}

fn message(error: &JsValue) -> String {
    error.unchecked_ref::<js_sys::Error>().message().into()
}

#[wasm_bindgen_test]
fn limits_discard_the_event_and_keep_the_rest() {
    let mut d = Decoder::new(limits(r#"{"maxLine": 16}"#)).unwrap();
    let error = d
        .feed(b"data: ok\n\ndata: this line is too long\n\ndata: next\n\n")
        .unwrap_err();
    assert!(error.is_instance_of::<js_sys::Error>());
    assert_eq!(message(&error), "line longer than 16 bytes");
    // Every event the chunk completed comes with the error, in order.
    let events = Reflect::get(&error, &"events".into()).unwrap();
    assert_eq!(
        seen(events.unchecked_into()),
        expected(&[msg("ok"), msg("next")])
    );
    // And the decoder goes on.
    assert_eq!(feed(&mut d, b"data: later\n\n"), expected(&[msg("later")]));

    let mut d = Decoder::new(limits(r#"{"maxEvent": 8}"#)).unwrap();
    assert_eq!(
        feed(&mut d, b"data: 1234\ndata: 567\n\n"),
        expected(&[msg("1234\n567")])
    );
    let error = d
        .feed(b"data: 1234\ndata: 5678\n\ndata: b\n\n")
        .unwrap_err();
    assert_eq!(message(&error), "event larger than 8 bytes");
    let events = Reflect::get(&error, &"events".into()).unwrap();
    assert_eq!(seen(events.unchecked_into()), expected(&[msg("b")]));

    // The default limits hold a long line; bad limits are refused.
    let long = format!("data: {}\n\n", "x".repeat(100_000));
    assert_eq!(
        seen(Decoder::decode_text(&long).unwrap())[0].1.len(),
        100_000
    );
    for bad in [
        r#"{"maxLine": 0}"#,
        r#"{"maxEvent": -1}"#,
        r#"{"maxLine": "8"}"#,
    ] {
        let error = Decoder::new(limits(bad)).unwrap_err();
        assert!(error.is_instance_of::<js_sys::TypeError>(), "{bad}");
    }
}

/// `prefix` followed by `value` bytes of data and a blank line.
fn data_line(prefix: &str, value: usize) -> Vec<u8> {
    let mut bytes = prefix.as_bytes().to_vec();
    bytes.resize(prefix.len() + value, b'x');
    bytes.extend_from_slice(b"\n\n");
    bytes
}

/// The data lengths of the events `input` gives, fed in 64 KiB chunks, and the first error.
fn sizes(d: &mut Decoder, input: &[u8]) -> (Vec<usize>, Option<String>) {
    let mut sizes = Vec::new();
    let mut first = None;
    for chunk in input.chunks(64 << 10) {
        let events = match d.feed(chunk) {
            Ok(events) => events,
            Err(error) => {
                first.get_or_insert(message(&error));
                Reflect::get(&error, &"events".into())
                    .unwrap()
                    .unchecked_into()
            }
        };
        sizes.extend(seen(events).into_iter().map(|(_, data, _)| data.len()));
    }
    (sizes, first)
}

#[wasm_bindgen_test]
fn the_default_limits_at_their_edge() {
    // 16 MiB for a line, field name included, and for an event's data.
    let max = 16 << 20;
    let fresh = || Decoder::new(None).unwrap();
    // What browsers take: 1 MiB of data on one line, with its field name.
    assert_eq!(
        sizes(&mut fresh(), &data_line("data: ", 1 << 20)),
        (vec![1 << 20], None)
    );
    assert_eq!(
        sizes(&mut fresh(), &data_line("data:", max - 5)),
        (vec![max - 5], None)
    );
    assert_eq!(
        sizes(&mut fresh(), &data_line("data:", max - 4)),
        (vec![], Some(format!("line longer than {max} bytes")))
    );
    // An empty options object is the defaults too.
    let mut d = Decoder::new(limits("{}")).unwrap();
    assert_eq!(
        sizes(&mut d, &data_line("data: ", max - 6)),
        (vec![max - 6], None)
    );
}

#[wasm_bindgen_test]
fn chosen_limits_at_their_edge() {
    // maxLine counts the field name: "data: " and 10 bytes is a line of 16.
    let mut d = Decoder::new(limits(r#"{"maxLine": 16}"#)).unwrap();
    assert_eq!(sizes(&mut d, &data_line("data: ", 10)), (vec![10], None));
    assert_eq!(
        sizes(&mut d, &data_line("data: ", 11)),
        (vec![], Some("line longer than 16 bytes".to_owned()))
    );
    // maxEvent counts the data as dispatched, lines joined by LF: 3 + 1 + 4 is 8.
    let mut d = Decoder::new(limits(r#"{"maxEvent": 8}"#)).unwrap();
    assert_eq!(
        feed(&mut d, b"data: 123\ndata: 4567\n\n"),
        expected(&[msg("123\n4567")])
    );
    let error = d.feed(b"data: 123\ndata: 45678\n\n").unwrap_err();
    assert_eq!(message(&error), "event larger than 8 bytes");
    // Both at once, and large numbers.
    let mut d = Decoder::new(limits(r#"{"maxLine": 12, "maxEvent": 3}"#)).unwrap();
    assert_eq!(sizes(&mut d, &data_line("data: ", 3)), (vec![3], None));
    assert_eq!(
        sizes(&mut d, &data_line("data: ", 4)),
        (vec![], Some("event larger than 3 bytes".to_owned()))
    );
    assert!(Decoder::new(limits(r#"{"maxLine": 9007199254740991}"#)).is_ok());
    // reset() keeps the limits.
    d.reset();
    assert_eq!(
        sizes(&mut d, &data_line("data: ", 7)),
        (vec![], Some("line longer than 12 bytes".to_owned()))
    );
}

fn init(json: &str) -> SseEventInit {
    JSON::parse(json).unwrap().unchecked_into()
}

fn encoded(json: &str) -> Vec<u8> {
    encode(init(json)).unwrap_or_else(|e| panic!("{json}: {}", message(&e)))
}

#[wasm_bindgen_test]
fn encode_writes_the_exact_frame() {
    assert_eq!(encoded(r#"{"data": "hi"}"#), b"data: hi\n\n");
    assert_eq!(
        encoded(r#"{"data": "a\nb", "event": "up", "id": "7", "retry": 3000}"#),
        b"event: up\nid: 7\nretry: 3000\ndata: a\ndata: b\n\n"
    );
    assert_eq!(
        encoded(r#"{"data": "a\r\nb\rc"}"#),
        b"data: a\ndata: b\ndata: c\n\n"
    );
    assert_eq!(encoded(r#"{"data": "", "id": ""}"#), b"id: \ndata: \n\n");
    assert_eq!(
        encoded(r#"{"data": "x", "event": null, "id": null}"#),
        b"data: x\n\n"
    );
}

#[wasm_bindgen_test]
fn encode_refuses_line_breaks_in_fields() {
    let refused = |json: &str| {
        let error = encode(init(json)).unwrap_err();
        (message(&error), error.is_instance_of::<js_sys::TypeError>())
    };
    let reason = |s: &str| (s.to_owned(), false);
    let wrong_type = |s: &str| (s.to_owned(), true);
    assert_eq!(
        refused(r#"{"data": "a", "id": "1\r2"}"#),
        reason("id contains a carriage return (CR)")
    );
    assert_eq!(
        refused(r#"{"data": "a", "id": "1\n2"}"#),
        reason("id contains a line feed (LF)")
    );
    assert_eq!(
        refused(r#"{"data": "a", "id": "1\u00002"}"#),
        reason("id contains a NUL character")
    );
    assert_eq!(
        refused(r#"{"data": "a", "event": "x\ny"}"#),
        reason("event type contains a line feed (LF)")
    );
    assert_eq!(
        refused(r#"{"data": "a", "event": "x\ry"}"#),
        reason("event type contains a carriage return (CR)")
    );
    assert!(
        refused(&format!(r#"{{"data": "a", "id": "{}"}}"#, "9".repeat(1025)))
            .0
            .starts_with("id is longer than")
    );
    assert_eq!(
        refused(r#"{"event": "x"}"#),
        wrong_type("data must be a string")
    );
    assert_eq!(
        refused(r#"{"data": 5}"#),
        wrong_type("data must be a string")
    );
    assert_eq!(
        refused(r#"{"data": "a", "id": 5}"#),
        wrong_type("id must be a string")
    );
    assert_eq!(
        refused(r#"{"data": "a", "retry": -1}"#),
        wrong_type("retry must be a non-negative integer")
    );
    assert_eq!(
        refused(r#"{"data": "a", "retry": 1.5}"#),
        wrong_type("retry must be a non-negative integer")
    );
    assert!(refused(r#""data: a""#).1);
    // NUL is harmless in an event type.
    assert_eq!(
        encoded(r#"{"data": "a", "event": "x\u0000y"}"#),
        b"event: x\0y\ndata: a\n\n"
    );
}

#[wasm_bindgen_test]
fn encode_then_decode_round_trips() {
    let cases: &[(&str, (&str, &str, &str))] = &[
        (r#"{"data": "hello"}"#, msg("hello")),
        (r#"{"data": ""}"#, msg("")),
        (r#"{"data": "\n"}"#, msg("\n")),
        (r#"{"data": "a\r\nb\rc\n"}"#, msg("a\nb\nc\n")),
        (r#"{"data": "  spaced  "}"#, msg("  spaced  ")),
        (r#"{"data": ": not a comment"}"#, msg(": not a comment")),
        (r#"{"data": "é€😀\uFEFF"}"#, msg("é€😀\u{FEFF}")),
        (
            r#"{"data": "x", "event": "up", "id": "id 1"}"#,
            ("up", "x", "id 1"),
        ),
        (
            r#"{"data": "x", "event": " lead", "id": " lead"}"#,
            (" lead", "x", " lead"),
        ),
        (r#"{"data": "x", "id": "", "retry": 5}"#, msg("x")),
    ];
    for (json, event) in cases {
        let bytes = encoded(json);
        check(&bytes, &[*event]);
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(
            seen(Decoder::decode_text(&text).unwrap()),
            expected(&[*event]),
            "{json}"
        );
    }
    // Many frames in one stream decode to the same events, in order.
    let stream: Vec<u8> = cases.iter().flat_map(|(json, _)| encoded(json)).collect();
    let events: Vec<_> = cases.iter().map(|(_, e)| *e).collect();
    check(&stream, &events);
}

#[wasm_bindgen_test]
fn decode_text_takes_a_string() {
    assert_eq!(
        seen(Decoder::decode_text("\u{FEFF}event: a\r\nid: 1\r\ndata: x\r\n\r\ndata: y").unwrap()),
        expected(&[("a", "x", "1")])
    );
    assert_eq!(seen(Decoder::decode_text("").unwrap()), expected(&[]));
}

#[wasm_bindgen_test]
fn the_javascript_names() {
    // Called the way JavaScript calls it: through the generated class, with a Uint8Array.
    let decoder = JsValue::from(Decoder::new(None).unwrap());
    let call = |name: &str, arg: &JsValue| {
        let method: js_sys::Function = Reflect::get(&decoder, &name.into())
            .unwrap()
            .unchecked_into();
        method.call1(&decoder, arg).unwrap()
    };
    let get = |name: &str| Reflect::get(&decoder, &name.into()).unwrap();
    assert_eq!(get("retry"), JsValue::UNDEFINED);
    let chunk = js_sys::Uint8Array::from(
        &b"retry: 9
id: 4
data: a

"[..],
    );
    let events = call("feed", &chunk);
    assert_eq!(
        seen(events.unchecked_into()),
        expected(&[("message", "a", "4")])
    );
    assert_eq!(get("lastEventId"), JsValue::from("4"));
    assert_eq!(get("retry"), JsValue::from(9.0));
    call("reset", &JsValue::UNDEFINED);
    assert_eq!(get("lastEventId"), JsValue::from(""));
}
