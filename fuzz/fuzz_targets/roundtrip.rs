//! Arbitrary strings made into an event (when they validate), encoded, then decoded: the
//! decoder must give back exactly what was published.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ssecast::{encode, Decoder, Event, EventId, EventType, Millis};

fuzz_target!(
    |input: (String, Option<String>, Option<String>, Option<u64>)| {
        let (data, event_type, id, retry) = input;
        let mut event = Event::new(data);
        if let Some(t) = event_type.and_then(|t| EventType::new(t).ok()) {
            event = event.with_type(t);
        }
        if let Some(id) = id.and_then(|id| EventId::new(id).ok()) {
            event = event.with_id(id);
        }
        if let Some(ms) = retry {
            event = event.with_retry(Millis(ms));
        }
        let mut wire = Vec::new();
        encode(&event, &mut wire);
        let mut decoder = Decoder::new();
        decoder
            .feed(&wire)
            .expect("an encoded event is within the default limits");
        let got = decoder.next_event().expect("one event");
        assert_eq!(decoder.next_event(), None);
        assert_eq!(got.data, event.data());
        let want_type = match event.event_type().map(EventType::as_str) {
            None | Some("") => "message",
            Some(t) => t,
        };
        assert_eq!(got.event_type, want_type);
        assert_eq!(got.last_event_id, event.id().map_or("", EventId::as_str));
        assert_eq!(decoder.last_event_id(), got.last_event_id);
        assert_eq!(decoder.retry(), event.retry());
    }
);
