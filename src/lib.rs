//! ssecast: a spec-exact Server-Sent Events codec, bounded subscriber queues and a
//! broadcast hub, as a library with no I/O.
//!
//! - [`Event`] and its validated fields ([`EventId`], [`EventType`], [`Comment`], [`Topic`]):
//!   checked once when built, so encoding cannot fail and cannot inject a field.
//! - [`encode`] and [`Frame`]: an event's wire bytes, encoded once and shared by every
//!   subscriber behind a reference count.
//! - [`Decoder`]: a push parser exact to the WHATWG event-stream algorithm, whatever the
//!   chunking, with [`Limits`] on line and event size.
//! - [`Queue`] and [`Overflow`]: a bounded subscriber queue and what happens when it is full.
//! - [`Hub`]: the broker as a sans-I/O state machine (in the style of quinn-proto and str0m):
//!   subscribers with [`Selector`]s (exact, `*`, Mercure's URI templates and URL patterns)
//!   and [`Rights`] to private updates, [`Update`]s with alternate topics, idempotent event
//!   ids, one bounded history for `Last-Event-ID` replay (per topic and hub-wide),
//!   keep-alive deadlines and counters, with indexed dispatch (a publish costs the
//!   subscribers it reaches, not all of them). Time is an argument ([`Millis`]); the hub
//!   never reads a clock, touches a socket or spawns anything, so it runs the same natively
//!   and in WebAssembly and is tested by simulation.
//! - [`UriTemplate`]: Mercure's topic selectors (draft-07), RFC 6570 URI Templates compiled
//!   once into linear-time matchers of the strings they can expand to.
//! - [`UrlPattern`]: Mercure 1.0's `match_urlpattern=` selectors, WHATWG URL Patterns
//!   matched against topics resolved against the hub's URL ([`BaseUrl`], [`TopicUrl`]).
//!
//! The crate has no `unsafe` code (`unsafe_code = "forbid"` in the workspace lints).
//!
//! # The main loop
//!
//! Feed the hub an input, then drain every output: subscribers with frames to write
//! ([`Hub::poll_ready`], each emptied with [`Hub::pop_frame`] until `None`), subscribers to
//! close ([`Hub::poll_close`]), and the next deadline ([`Hub::poll_timeout`], at which to call
//! [`Hub::handle_timeout`]). A server does this around its sockets; here a `Vec<u8>` per
//! subscriber stands in for them and a counter for the clock.
//!
//! ```
//! use ssecast::{Event, Hub, HubConfig, Millis, SubscriberId, Topic};
//!
//! let mut config = HubConfig::default();
//! config.keepalive = Some(Millis(20_000));
//! config.retry = Some(Millis(3_000));
//! let mut hub = Hub::new(config);
//! let mut sockets: Vec<Vec<u8>> = Vec::new(); // indexed by SubscriberId::index()
//!
//! // After every input: write what is ready, close what must be closed.
//! fn pump(hub: &mut Hub, sockets: &mut Vec<Vec<u8>>) {
//!     while let Some(id) = hub.poll_ready() {
//!         // Drain to `None` so the hub reports this subscriber again next time.
//!         while let Some(frame) = hub.pop_frame(id) {
//!             sockets[id.index()].extend_from_slice(frame.as_bytes());
//!         }
//!     }
//!     while let Some((id, _reason)) = hub.poll_close() {
//!         sockets[id.index()].clear(); // a server would close the connection here
//!     }
//! }
//!
//! let mut now = Millis(0);
//! let news = Topic::new("news").unwrap();
//! let alice: SubscriberId = hub.subscribe(&[news.clone()], None, now).unwrap().id;
//! sockets.resize(alice.index() + 1, Vec::new());
//! pump(&mut hub, &mut sockets);
//!
//! now = Millis(1_000);
//! let id = hub.publish(&news, Event::new("hello"), now);
//! pump(&mut hub, &mut sockets);
//! assert_eq!(id.as_str(), "1");
//! // The retry hint travels in the same block as the first event.
//! assert_eq!(sockets[alice.index()], b"retry: 3000\nid: 1\ndata: hello\n\n");
//!
//! // Nothing happens for a while: sleep until the hub's deadline, then let time pass.
//! sockets[alice.index()].clear();
//! while let Some(deadline) = hub.poll_timeout().filter(|&t| t <= Millis(60_000)) {
//!     now = deadline;
//!     hub.handle_timeout(now);
//!     pump(&mut hub, &mut sockets);
//! }
//! // A keep-alive comment at least every 20 s (and at most 5 s early) keeps the
//! // connection from looking idle: three in the 59 s since the event.
//! assert_eq!(sockets[alice.index()], b": ping\n\n".repeat(3));
//! assert_eq!(hub.stats().keepalives, 3);
//!
//! hub.unsubscribe(alice);
//! assert_eq!(hub.stats().subscribers, 0);
//! ```

mod decode;
mod encode;
mod event;
mod hub;
mod lines;
mod queue;
mod template;
mod urlpattern;

pub use decode::{DecodeError, Decoder, EventRef, Limits, MessageEvent};
pub use encode::{encode, encode_comment, encode_retry, encoded_len, Frame};
pub use event::{Comment, Event, EventId, EventType, FieldError, Millis, Topic};
pub use hub::{
    CloseReason, Hub, HubConfig, PublishAtError, PublishOutcome, Published, Replay, Rights,
    Selector, SelectorError, SelectorKind, Stats, SubscribeError, Subscribed, SubscriberId, Update,
    EARLIEST, MISSED_EVENT_TYPE,
};
pub use queue::{Overflow, Pushed, Queue, UnknownOverflow};
pub use template::{TemplateError, UriTemplate};
pub use urlpattern::{BaseUrl, PatternError, TopicUrl, UrlPattern};
