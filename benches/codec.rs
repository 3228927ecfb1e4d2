#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Decoder and encoder throughput, against the fastest Rust peers and a scanning ceiling.
//!
//! `cargo bench --bench codec`. Two generated inputs (seeded, so every run decodes the same
//! bytes), fed in 64 KiB chunks: many small JSON-like events, and large multi-line events.
//! Before measuring, it prints which decoders get a few easily-missed rules right.

use std::convert::Infallible;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput};
use futures_codec::Decoder as _;
use futures_util::Stream;
use ssecast::{encode, Decoder, Event, EventId, EventType, Frame};

const CHUNK: usize = 64 << 10;
const INPUT_BYTES: usize = 24 << 20;

/// xorshift64*: deterministic input without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn word(&mut self, out: &mut String, len: u64) {
        for _ in 0..len {
            out.push(char::from(b'a' + self.below(26) as u8));
        }
    }
}

/// Small JSON-like events, 100 to 200 bytes each on the wire.
fn small_events() -> Vec<Event> {
    let mut rng = Rng(0x5eed_0001);
    let types = ["update", "price", "chat", "presence"];
    let mut events = Vec::new();
    let mut total = 0;
    let mut n = 0u64;
    while total < INPUT_BYTES {
        n += 1;
        let mut text = String::new();
        let len = 10 + rng.below(60);
        rng.word(&mut text, len);
        let data = format!(
            r#"{{"seq":{n},"user":"u{}","price":{}.{:02},"ok":true,"text":"{text}"}}"#,
            rng.below(100_000),
            rng.below(10_000),
            rng.below(100),
        );
        let event = Event::new(data)
            .with_id(EventId::from(n))
            .with_type(EventType::new(types[rng.below(4) as usize]).unwrap());
        total += ssecast::encoded_len(&event);
        events.push(event);
    }
    events
}

/// Large events: about 64 KiB of data each, in lines of 40 to 160 bytes.
fn large_events() -> Vec<Event> {
    let mut rng = Rng(0x5eed_0002);
    let mut events = Vec::new();
    let mut total = 0;
    let mut n = 0u64;
    while total < INPUT_BYTES {
        n += 1;
        let mut data = String::new();
        while data.len() < 64 << 10 {
            if !data.is_empty() {
                data.push('\n');
            }
            let words = 5 + rng.below(20);
            for w in 0..words {
                if w > 0 {
                    data.push(' ');
                }
                let len = 2 + rng.below(8);
                rng.word(&mut data, len);
            }
        }
        let event = Event::new(data).with_id(EventId::from(n));
        total += ssecast::encoded_len(&event);
        events.push(event);
    }
    events
}

fn wire(events: &[Event]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        encode(e, &mut out);
    }
    out
}

/// ssecast, owned: feed each chunk, take the events out with `next_event`.
fn ssecast_decode(chunks: &[Bytes]) -> usize {
    let mut decoder = Decoder::new();
    let mut events = 0;
    for chunk in chunks {
        decoder.feed(chunk).unwrap();
        while let Some(event) = decoder.next_event() {
            black_box(event);
            events += 1;
        }
    }
    events
}

/// ssecast, borrowing: feed each chunk, lend the events out with `next_event_ref`.
fn ssecast_ref_decode(chunks: &[Bytes]) -> usize {
    let mut decoder = Decoder::new();
    let mut events = 0;
    for chunk in chunks {
        decoder.feed(chunk).unwrap();
        while let Some(event) = decoder.next_event_ref() {
            black_box(event);
            events += 1;
        }
    }
    events
}

/// sse-stream 0.3: its `SseByteStream` over a stream of `Bytes`, polled to the end. The
/// chunks are ready, so a no-op waker suffices. It yields metadata-only blocks too; only
/// blocks with data count as events.
fn sse_stream_decode(chunks: &[Bytes]) -> usize {
    let input = futures_util::stream::iter(chunks.iter().cloned().map(Ok::<_, Infallible>));
    let mut stream = pin!(sse_stream::SseByteStream::new(input));
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    let mut events = 0;
    loop {
        match stream.as_mut().poll_next(&mut cx) {
            Poll::Ready(Some(Ok(sse))) => {
                events += usize::from(sse.data.is_some());
                black_box(sse);
            }
            Poll::Ready(Some(Err(e))) => panic!("sse-stream: {e}"),
            Poll::Ready(None) => return events,
            Poll::Pending => unreachable!("the input stream is always ready"),
        }
    }
}

/// sse-codec 0.3: its `SSECodec` driven as its `FramedRead` drives it, each chunk appended
/// to a `BytesMut` and decoded until it asks for more.
fn sse_codec_decode(chunks: &[Bytes]) -> usize {
    let mut codec = sse_codec::SSECodec::default();
    let mut buf = BytesMut::new();
    let mut events = 0;
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(event) = codec.decode(&mut buf).unwrap() {
            events += usize::from(matches!(event, sse_codec::Event::Message { .. }));
            black_box(event);
        }
    }
    events
}

/// The ceiling: visit every CR and LF, and nothing else.
fn memchr2_ceiling(chunks: &[Bytes]) -> usize {
    chunks
        .iter()
        .map(|chunk| memchr::memchr2_iter(b'\r', b'\n', chunk).count())
        .sum()
}

type DecodeFn = fn(&[Bytes]) -> usize;

fn bench_decode(c: &mut Criterion, name: &str, events: &[Event]) {
    let bytes = wire(events);
    let chunks: Vec<Bytes> = bytes.chunks(CHUNK).map(Bytes::copy_from_slice).collect();
    let decoders: [(&str, DecodeFn); 4] = [
        ("ssecast", ssecast_decode),
        ("ssecast-ref", ssecast_ref_decode),
        ("sse-stream", sse_stream_decode),
        ("sse-codec", sse_codec_decode),
    ];
    // Every decoder must see every event, or the comparison means nothing.
    for (decoder, decode) in decoders {
        assert_eq!(decode(&chunks), events.len(), "{decoder} on {name}");
    }
    let mut group = c.benchmark_group(format!("decode/{name}"));
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.sample_size(20);
    for (decoder, decode) in decoders {
        group.bench_with_input(
            BenchmarkId::from_parameter(decoder),
            &chunks,
            |b, chunks| b.iter(|| decode(chunks)),
        );
    }
    group.bench_with_input(
        BenchmarkId::from_parameter("memchr2-ceiling"),
        &chunks,
        |b, chunks| b.iter(|| memchr2_ceiling(chunks)),
    );
    group.finish();
}

fn bench_encode(c: &mut Criterion, name: &str, events: &[Event]) {
    let len = wire(events).len();
    let mut group = c.benchmark_group(format!("encode/{name}"));
    group.throughput(Throughput::Bytes(len as u64));
    group.sample_size(20);
    let mut buf = Vec::with_capacity(len);
    group.bench_function("encode-into-vec", |b| {
        b.iter(|| {
            buf.clear();
            for e in events {
                encode(e, &mut buf);
            }
            black_box(buf.len())
        })
    });
    group.bench_function("frame-event", |b| {
        b.iter(|| {
            for e in events {
                black_box(Frame::event(e));
            }
        })
    });
    group.finish();
}

// --- conformance: a few rules peers are known to get wrong ----------------------------------

/// What a decoder made of a stream: the data of each event, the last event ID, the retry.
#[derive(Debug, PartialEq)]
struct Seen {
    data: Vec<String>,
    last_id: String,
    retry: Option<u64>,
}

fn seen_ssecast(chunks: &[&[u8]]) -> Result<Seen, String> {
    let mut decoder = Decoder::new();
    for chunk in chunks {
        decoder.feed(chunk).map_err(|e| e.to_string())?;
    }
    Ok(Seen {
        data: std::iter::from_fn(|| decoder.next_event())
            .map(|e| e.data)
            .collect(),
        last_id: decoder.last_event_id().to_owned(),
        retry: decoder.retry().map(|ms| ms.0),
    })
}

fn seen_sse_stream(chunks: &[&[u8]]) -> Result<Seen, String> {
    let chunks: Vec<Bytes> = chunks.iter().map(|c| Bytes::copy_from_slice(c)).collect();
    let input = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, Infallible>));
    let mut stream = pin!(sse_stream::SseByteStream::new(input));
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    let mut seen = Seen {
        data: Vec::new(),
        last_id: String::new(),
        retry: None,
    };
    loop {
        match stream.as_mut().poll_next(&mut cx) {
            Poll::Ready(Some(Ok(sse))) => {
                // sse-stream leaves the last event ID to its caller: track it as one would.
                if let Some(id) = sse.id {
                    seen.last_id = id;
                }
                seen.retry = sse.retry.or(seen.retry);
                seen.data.extend(sse.data);
            }
            Poll::Ready(Some(Err(e))) => return Err(e.to_string()),
            Poll::Ready(None) => return Ok(seen),
            Poll::Pending => unreachable!("the input stream is always ready"),
        }
    }
}

fn seen_sse_codec(chunks: &[&[u8]]) -> Result<Seen, String> {
    let mut codec = sse_codec::SSECodec::default();
    let mut buf = BytesMut::new();
    let mut seen = Seen {
        data: Vec::new(),
        last_id: String::new(),
        retry: None,
    };
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(event) = codec.decode(&mut buf).map_err(|e| e.to_string())? {
            match event {
                sse_codec::Event::Message { data, id, .. } => {
                    seen.data.push(data);
                    seen.last_id = id.unwrap_or_default();
                }
                sse_codec::Event::Retry { retry } => seen.retry = Some(retry),
            }
        }
    }
    Ok(seen)
}

fn conformance() {
    type SeenFn = fn(&[&[u8]]) -> Result<Seen, String>;
    let decoders: [(&str, SeenFn); 3] = [
        ("ssecast", seen_ssecast),
        ("sse-stream 0.3", seen_sse_stream),
        ("sse-codec 0.3", seen_sse_codec),
    ];
    let seen = |data: &[&str], last_id: &str, retry: Option<u64>| Seen {
        data: data.iter().map(|d| d.to_string()).collect(),
        last_id: last_id.into(),
        retry,
    };
    let cases: [(&str, &[&[u8]], Seen); 8] = [
        (
            "CRLF split across chunks",
            &[b"data: a\r", b"\ndata: b\r\n\r\n"],
            seen(&["a\nb"], "", None),
        ),
        (
            "lone CR line endings",
            &[b"data: a\rdata: b\r\r"],
            seen(&["a\nb"], "", None),
        ),
        (
            "lone CR at the end of a chunk",
            &[b"data: a\r", b"data: b\r\r"],
            seen(&["a\nb"], "", None),
        ),
        (
            "retry: 1000",
            &[b"retry: 1000\n\n"],
            seen(&[], "", Some(1000)),
        ),
        (
            "BOM split across chunks",
            &[b"\xef\xbb", b"\xbfdata: a\n\n"],
            seen(&["a"], "", None),
        ),
        (
            "invalid UTF-8 becomes U+FFFD",
            &[b"data: \xff\n\ndata: b\n\n"],
            seen(&["\u{fffd}", "b"], "", None),
        ),
        (
            "the last event ID persists",
            &[b"id: 1\ndata: a\n\ndata: b\n\n"],
            seen(&["a", "b"], "1", None),
        ),
        (
            "id with no colon resets it",
            &[b"id: 1\ndata: a\n\nid\ndata: b\n\n"],
            seen(&["a", "b"], "", None),
        ),
    ];
    eprintln!("conformance (a few rules decoders get wrong):");
    for (name, chunks, want) in &cases {
        eprint!("  {name:<32}");
        for (decoder, decode) in decoders {
            let verdict = match decode(chunks) {
                Ok(got) if &got == want => "ok".to_owned(),
                Ok(got) => format!("WRONG {got:?}"),
                Err(e) => format!("ERROR {e}"),
            };
            eprint!(" | {decoder}: {verdict}");
        }
        eprintln!();
    }
}

fn main() {
    conformance();
    let small = small_events();
    let large = large_events();
    let mut c = Criterion::default().configure_from_args();
    bench_decode(&mut c, "small", &small);
    bench_decode(&mut c, "large", &large);
    bench_encode(&mut c, "small", &small);
    bench_encode(&mut c, "large", &large);
    c.final_summary();
}
