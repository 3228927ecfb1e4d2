//! Arbitrary bytes as a client connection, served in process by the real request path (head
//! check, async-h1, routes, event streams): it must never panic, never hang once the client
//! has closed its side, and anything it answers must be an HTTP/1.1 response that is not a
//! 500. The first byte picks the size of the client's reads, so requests arrive split.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use ssecast_server::fuzzing::Harness;

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| Harness::new().expect("a server state"))
}

fuzz_target!(|data: &[u8]| {
    let [shape, input @ ..] = data else {
        return;
    };
    let max_read = match shape & 0x7f {
        0 => usize::MAX,
        n => usize::from(n),
    };
    let written = harness()
        .serve(input, max_read, Duration::from_secs(10))
        .expect("the connection ended after the client closed its side");
    if written.is_empty() {
        return;
    }
    assert!(
        written.starts_with(b"HTTP/1.1 "),
        "not a response: {:?}",
        String::from_utf8_lossy(&written[..written.len().min(200)])
    );
    assert!(
        !written.starts_with(b"HTTP/1.1 500"),
        "a server error: {:?}",
        String::from_utf8_lossy(&written[..written.len().min(400)])
    );
});
