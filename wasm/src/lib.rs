//! `ssecast-wasm`: ssecast's Server-Sent Events codec for JavaScript, through wasm-bindgen.
//!
//! This crate converts JavaScript values to and from the core's types and does nothing else:
//! the wire format lives in [`ssecast`]. From JavaScript (after
//! `wasm-pack build --target web`):
//!
//! ```js
//! import init, { Decoder, encode } from "./pkg/ssecast_wasm.js";
//! await init();
//! const bytes = encode({ data: "a\nb", event: "note", id: "7" }); // Uint8Array
//! const decoder = new Decoder();
//! for (const e of decoder.feed(bytes)) console.log(e.type, e.data, e.lastEventId);
//! Decoder.decodeText("data: hi\n\n"); // [{ type: "message", data: "hi", lastEventId: "" }]
//! ```
//!
//! Errors are thrown as JavaScript `Error`s whose message is the core's reason, prefixed
//! with the field it concerns (`id contains a line feed (LF)`).

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** A dispatched event, as a browser's `MessageEvent` would carry it. */
export interface SseEvent {
  /** The event type; `"message"` when the stream set none. */
  type: string;
  /** The data, with the final line feed removed. */
  data: string;
  /** The last event ID at the time of dispatch (it persists across events). */
  lastEventId: string;
}

/** An event to encode. */
export interface SseEventInit {
  data: string;
  /** The event type (no CR or LF). */
  event?: string;
  /** The event id (no CR, LF or NUL). */
  id?: string;
  /** The reconnection time in milliseconds (a non-negative integer). */
  retry?: number;
}

/** Limits that keep a decoder's memory bounded, in bytes (positive integers). */
export interface DecoderLimits {
  /** The longest line, its field name included (default 16 MiB, 16777216). */
  maxLine?: number;
  /** The most data one event may hold, its lines joined by LF (default 16 MiB). */
  maxEvent?: number;
}
"#;

#[wasm_bindgen]
extern "C" {
    /// An array of `SseEvent` objects.
    #[wasm_bindgen(typescript_type = "SseEvent[]")]
    #[derive(Debug, Clone)]
    pub type SseEvents;

    /// An `SseEventInit` object.
    #[wasm_bindgen(typescript_type = "SseEventInit")]
    #[derive(Debug, Clone)]
    pub type SseEventInit;

    /// A `DecoderLimits` object.
    #[wasm_bindgen(typescript_type = "DecoderLimits")]
    #[derive(Debug, Clone)]
    pub type DecoderLimits;
}

/// A push decoder for `text/event-stream`: feed it bytes as they arrive, get the
/// dispatched events back.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Decoder {
    inner: ssecast::Decoder,
    limits: ssecast::Limits,
}

#[wasm_bindgen]
impl Decoder {
    /// A decoder with the core's default limits (16 MiB for a line, field name included, and
    /// 16 MiB for an event's data), or with `{maxLine, maxEvent}` in bytes; a missing field
    /// keeps its default, and anything but a positive integer is a `TypeError`.
    #[wasm_bindgen(constructor)]
    pub fn new(limits: Option<DecoderLimits>) -> Result<Decoder, JsValue> {
        let mut chosen = ssecast::Limits::default();
        if let Some(limits) = limits {
            let limits: &JsValue = limits.as_ref();
            if let Some(n) = byte_count(limits, "maxLine")? {
                chosen.max_line = n;
            }
            if let Some(n) = byte_count(limits, "maxEvent")? {
                chosen.max_event = n;
            }
        }
        Ok(Decoder {
            inner: ssecast::Decoder::with_limits(chosen),
            limits: chosen,
        })
    }

    /// Parses `chunk` (a `Uint8Array`) and returns the events it completed.
    ///
    /// At a limit the offending line or event is discarded, the rest of the chunk is still
    /// parsed, and `feed` throws an `Error` with the reason whose `events` property holds
    /// the events the chunk completed, so none is lost or delayed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<SseEvents, JsValue> {
        let result = self.inner.feed(chunk);
        let events = take_events(&mut self.inner)?;
        match result {
            Ok(()) => Ok(events),
            Err(e) => {
                let thrown = error(e);
                Reflect::set(&thrown, &"events".into(), &events)?;
                Err(thrown)
            }
        }
    }

    /// The last event ID: what a client sends as `Last-Event-ID` when it reconnects.
    #[wasm_bindgen(getter, js_name = lastEventId)]
    pub fn last_event_id(&self) -> String {
        self.inner.last_event_id().to_owned()
    }

    /// The reconnection time in milliseconds set by the stream's last valid `retry:`
    /// field, or `undefined`.
    #[wasm_bindgen(getter)]
    pub fn retry(&self) -> Option<f64> {
        // Exact up to 2^53 ms (285,000 years); JavaScript timers take numbers.
        self.inner.retry().map(|ms| ms.0 as f64)
    }

    /// Prepares for a new connection: forgets the partial event, keeps the last event ID
    /// and the reconnection time (as a browser's `EventSource` does when it reconnects).
    pub fn reconnect(&mut self) {
        self.inner.reconnect();
    }

    /// Forgets everything, the last event ID and the reconnection time included.
    pub fn reset(&mut self) {
        self.inner = ssecast::Decoder::with_limits(self.limits);
    }

    /// Decodes a whole stream given as a string with a fresh decoder and returns its
    /// events. A final event without its blank line is not dispatched, as in a browser.
    /// Throws at a limit, like [`Decoder::feed`].
    ///
    /// A static method rather than a free function: wasm-bindgen's generated module declares
    /// its own top-level `decodeText`, and an export of that name breaks it.
    #[wasm_bindgen(js_name = decodeText)]
    pub fn decode_text(text: &str) -> Result<SseEvents, JsValue> {
        let mut decoder = Decoder {
            inner: ssecast::Decoder::new(),
            limits: ssecast::Limits::default(),
        };
        decoder.feed(text.as_bytes())
    }
}

/// Encodes `{data, event?, id?, retry?}` into its wire bytes (a `Uint8Array`).
///
/// Throws an `Error` when a field is refused, for instance an id holding CR, LF or NUL
/// (`id contains a line feed (LF)`); line breaks in the data become separate `data:`
/// lines.
#[wasm_bindgen]
pub fn encode(event: SseEventInit) -> Result<Vec<u8>, JsValue> {
    let event: &JsValue = event.as_ref();
    if !event.is_object() {
        return Err(type_error(
            "encode expects an object {data, event?, id?, retry?}",
        ));
    }
    let data = string_field(event, "data")?.ok_or_else(|| type_error("data must be a string"))?;
    let mut built = ssecast::Event::new(data);
    if let Some(t) = string_field(event, "event")? {
        built = built
            .with_type(ssecast::EventType::new(t).map_err(|e| error(format!("event type {e}")))?);
    }
    if let Some(id) = string_field(event, "id")? {
        built = built.with_id(ssecast::EventId::new(id).map_err(|e| error(format!("id {e}")))?);
    }
    if let Some(ms) = integer_field(event, "retry")? {
        built = built.with_retry(ssecast::Millis(ms));
    }
    let mut out = Vec::new();
    ssecast::encode(&built, &mut out);
    Ok(out)
}

fn take_events(decoder: &mut ssecast::Decoder) -> Result<SseEvents, JsValue> {
    let events = Array::new();
    while let Some(e) = decoder.next_event() {
        let object = Object::new();
        Reflect::set(&object, &"type".into(), &e.event_type.into())?;
        Reflect::set(&object, &"data".into(), &e.data.into())?;
        Reflect::set(&object, &"lastEventId".into(), &e.last_event_id.into())?;
        events.push(&object);
    }
    Ok(events.unchecked_into())
}

/// `object[name]` as a string; `None` when it is `undefined` or `null`.
fn string_field(object: &JsValue, name: &str) -> Result<Option<String>, JsValue> {
    let value = Reflect::get(object, &name.into())?;
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value
        .as_string()
        .map(Some)
        .ok_or_else(|| type_error(&format!("{name} must be a string")))
}

/// The largest integer a JavaScript number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// `object[name]` as a non-negative integer; `None` when it is `undefined` or `null`.
fn integer_field(object: &JsValue, name: &str) -> Result<Option<u64>, JsValue> {
    let value = Reflect::get(object, &name.into())?;
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    match value.as_f64() {
        // The range check makes the cast exact.
        Some(n) if n.fract() == 0.0 && (0.0..=MAX_SAFE_INTEGER).contains(&n) => Ok(Some(n as u64)),
        _ => Err(type_error(&format!(
            "{name} must be a non-negative integer"
        ))),
    }
}

/// `object[name]` as a positive byte count; `None` when absent.
fn byte_count(object: &JsValue, name: &str) -> Result<Option<usize>, JsValue> {
    match integer_field(object, name)? {
        None => Ok(None),
        Some(0) => Err(type_error(&format!("{name} must be at least 1"))),
        Some(n) => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
    }
}

fn error(reason: impl ToString) -> JsValue {
    js_sys::Error::new(&reason.to_string()).into()
}

fn type_error(reason: &str) -> JsValue {
    js_sys::TypeError::new(reason).into()
}
