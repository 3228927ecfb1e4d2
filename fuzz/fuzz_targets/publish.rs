//! `POST /publish` bodies (JSON or text) with arbitrary `topic` and `event` parameters,
//! through the function the route calls. A refusal is a 400 or 413 with a one-line reason;
//! an accepted event, encoded and decoded, gives back exactly its data (line endings
//! normalised to LF), its type and its id, as one event: nothing a publisher sends can
//! inject a field or a second event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ssecast::{encode, Decoder, EventId, EventType};

// (JSON or text, the `topic` parameter, the `event` parameter, the body)
fuzz_target!(|input: (bool, Option<&str>, Option<&str>, &[u8])| {
    let (json, topic, event, body) = input;
    let parsed = ssecast_server::fuzzing::publish_fields(json, body, topic, event);
    let (_topic, event) = match parsed {
        Ok(accepted) => accepted,
        Err((status, reason)) => {
            assert!(status == 400 || status == 413, "status {status}: {reason}");
            assert!(!reason.contains(['\r', '\n']), "not one line: {reason:?}");
            return;
        }
    };
    let mut wire = Vec::new();
    encode(&event, &mut wire);
    let mut decoder = Decoder::new();
    decoder.feed(&wire).expect("an accepted event is within the decoder's limits");
    let got = decoder.next_event().expect("one event");
    assert_eq!(decoder.next_event(), None, "a second event was injected");
    let want_data = event.data().replace("\r\n", "\n").replace('\r', "\n");
    assert_eq!(got.data, want_data);
    let want_type = match event.event_type().map(EventType::as_str) {
        None | Some("") => "message",
        Some(t) => t,
    };
    assert_eq!(got.event_type, want_type);
    assert_eq!(got.last_event_id, event.id().map_or("", EventId::as_str));
    assert_eq!(decoder.retry(), event.retry());
});
