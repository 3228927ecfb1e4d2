//! Arbitrary bytes through the decoder: it must never panic, and cutting the stream into
//! chunks (chosen by the first two bytes) must decode exactly as feeding it whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ssecast::{DecodeError, Decoder, Limits, MessageEvent, Millis};

#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<MessageEvent>,
    comments: Vec<String>,
    last_event_id: String,
    retry: Option<Millis>,
    error: Option<DecodeError>,
}

fn run<'a>(limits: Limits, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut decoder = Decoder::with_limits(limits).keep_comments(true);
    let mut error = None;
    for chunk in chunks {
        if let Err(e) = decoder.feed(chunk) {
            error.get_or_insert(e);
        }
    }
    Outcome {
        events: std::iter::from_fn(|| decoder.next_event()).collect(),
        comments: std::iter::from_fn(|| decoder.next_comment()).collect(),
        last_event_id: decoder.last_event_id().to_owned(),
        retry: decoder.retry(),
        error,
    }
}

fuzz_target!(|data: &[u8]| {
    let [shape, seed, input @ ..] = data else {
        return;
    };
    // Bit 6 picks small limits, so that limits are hit often; bits 0-5 the largest chunk.
    let limits = if shape & 0x40 != 0 {
        Limits {
            max_line: 16,
            max_event: 32,
        }
    } else {
        Limits::default()
    };
    let max_chunk = 1 + usize::from(shape & 0x3f);
    let mut state = u32::from(*seed) | 0x100;
    let mut chunks = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        // xorshift: a cheap, deterministic sequence of chunk lengths, zero included.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let len = (state as usize % (max_chunk + 1)).min(rest.len());
        let (chunk, tail) = rest.split_at(len);
        chunks.push(chunk);
        rest = tail;
    }
    let whole = run(limits, [input]);
    for event in &whole.events {
        assert!(
            event.data.len() <= limits.max_event.saturating_mul(3),
            "data beyond the limit"
        );
    }
    // The borrowed API, events taken after every chunk, lends out the same events.
    let mut decoder = Decoder::with_limits(limits);
    let mut borrowed = Vec::new();
    for chunk in &chunks {
        let _ = decoder.feed(chunk);
        while let Some(event) = decoder.next_event_ref() {
            borrowed.push(MessageEvent::from(event));
        }
    }
    assert_eq!(borrowed, whole.events, "borrowed differs from owned");
    assert_eq!(run(limits, chunks), whole, "chunked differs from whole");
});
