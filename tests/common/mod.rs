//! What the decoder tests, the proptests and the `decode` fuzz target share: one way to run a
//! decoder over chunks and collect everything it exposes.

#![allow(dead_code)]

use ssecast::{DecodeError, Decoder, Limits, MessageEvent, Millis};

/// Everything a decoder exposes after a stream.
#[derive(Debug, PartialEq)]
pub(crate) struct Outcome {
    pub(crate) events: Vec<MessageEvent>,
    pub(crate) comments: Vec<String>,
    pub(crate) last_event_id: String,
    pub(crate) retry: Option<Millis>,
    /// The first error any `feed` returned.
    pub(crate) error: Option<DecodeError>,
}

pub(crate) fn run<'a>(limits: Limits, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let chunks: Vec<&[u8]> = chunks.into_iter().collect();
    let mut decoder = Decoder::with_limits(limits).keep_comments(true);
    let mut error = None;
    for &chunk in &chunks {
        if let Err(e) = decoder.feed(chunk) {
            error.get_or_insert(e);
        }
    }
    let outcome = Outcome {
        events: std::iter::from_fn(|| decoder.next_event()).collect(),
        comments: std::iter::from_fn(|| decoder.next_comment()).collect(),
        last_event_id: decoder.last_event_id().to_owned(),
        retry: decoder.retry(),
        error,
    };
    // The borrowed API must lend out the same events, whether they are taken after every
    // chunk (buffers are reused between events) or mixed with owned ones.
    assert_eq!(borrowed(limits, &chunks, false), outcome.events, "borrowed");
    assert_eq!(borrowed(limits, &chunks, true), outcome.events, "mixed");
    outcome
}

/// The events taken after every chunk with `next_event_ref`, or, if `mixed`, with
/// `next_event_ref` and `next_event` in turn.
pub(crate) fn borrowed(limits: Limits, chunks: &[&[u8]], mixed: bool) -> Vec<MessageEvent> {
    let mut decoder = Decoder::with_limits(limits);
    let mut events = Vec::new();
    for &chunk in chunks {
        let _ = decoder.feed(chunk);
        loop {
            let event = if mixed && events.len() % 2 == 1 {
                decoder.next_event()
            } else {
                decoder.next_event_ref().map(MessageEvent::from)
            };
            match event {
                Some(event) => events.push(event),
                None => break,
            }
        }
    }
    events
}
