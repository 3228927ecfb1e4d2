//! ssecast: a spec-exact Server-Sent Events codec, bounded subscriber queues and a
//! broadcast hub, as a library with no I/O.
//!
//! (crate docs with a main-loop example: to be written)

mod decode;
mod encode;
mod event;
mod hub;
mod queue;

pub use decode::{DecodeError, Decoder, Limits, MessageEvent};
pub use encode::{encode, encode_comment, encode_retry, encoded_len, Frame};
pub use event::{Comment, Event, EventId, EventType, FieldError, Millis, Topic};
pub use hub::{
    CloseReason, Hub, HubConfig, Replay, Stats, SubscribeError, Subscribed, SubscriberId,
    MISSED_EVENT_TYPE,
};
pub use queue::{Overflow, Pushed, Queue, UnknownOverflow};
