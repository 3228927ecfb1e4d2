//! Arbitrary bytes through the decoder: it must never panic, and cutting the stream into
//! chunks (chosen by the first two bytes) must decode exactly as feeding it whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ssecast::Limits;

// The same harness as the decoder's tests: `run` also checks the borrowed API.
#[path = "../../tests/common/mod.rs"]
mod common;

use common::run;

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
    assert_eq!(run(limits, chunks), whole, "chunked differs from whole");
});
