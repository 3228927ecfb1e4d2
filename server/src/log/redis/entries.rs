//! The shape of ssecast's data in Redis: stream keys, stream ids and hub positions, the
//! `XADD` script giving one id sequence to every topic, and stream entries read back as
//! events (malformed ones refused, never delivered).

use redis::Value;
use ssecast::{Event, EventId, EventType, Millis, Topic};

/// Stream ids `<ms>-<n>` become hub positions `ms * SEQ_SCALE + n`.
const SEQ_SCALE: u64 = 1_000_000;

pub(super) const KEY_PREFIX: &str = "ssecast:";
/// The newest id given to any event, outside the streams' key space.
pub(super) const CLOCK_KEY: &str = "ssecast-last-id";

/// `XADD` with the next id of one sequence shared by every topic: Redis's clock in
/// milliseconds and a counter within the millisecond, never below the last id given. Each
/// stream's own `*` ids restart their counter per stream, so two topics could give the same
/// id to different events and order them apart from publish order; these cannot. Atomic, as
/// every script is; built on the clock, so ids go on growing after Redis restarts empty.
///
/// With a third key, the publisher's id ([`publisher_key`]), the publish is idempotent: if
/// that id's event is still in its topic's stream, nothing is added and its stream id comes
/// back; otherwise the event is added and the key remembers where, for [`PUBLISHER_ID_TTL`]
/// seconds. Answers `{stream id, 1 if it was a duplicate else 0}`.
pub(super) const XADD_SCRIPT: &str = r"
if KEYS[3] then
  local seen = redis.call('GET', KEYS[3])
  if seen then
    local sid, stream = string.match(seen, '^(%d+%-%d+) (.*)$')
    if sid and #redis.call('XRANGE', stream, sid, sid) > 0 then
      return {sid, 1}
    end
  end
end
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = 0
local last = redis.call('GET', KEYS[2])
if last then
  local lms, ln = string.match(last, '^(%d+)-(%d+)$')
  lms = tonumber(lms)
  ln = tonumber(ln)
  if ms <= lms then
    ms = lms
    n = ln + 1
    if n >= 1000000 then
      ms = lms + 1
      n = 0
    end
  end
end
local id = string.format('%d-%d', ms, n)
redis.call('SET', KEYS[2], id)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], id, unpack(ARGV, 3))
if KEYS[3] then
  redis.call('SET', KEYS[3], id .. ' ' .. KEYS[1], 'EX', ARGV[2])
end
return {id, 0}
";

/// Where a publisher's id is remembered, outside the streams' key space.
pub(super) fn publisher_key(id: &EventId) -> String {
    format!("ssecast-pid:{}", id.as_str())
}

/// How long, at most, a publisher's id is remembered: a retry is recognised while its event
/// is still in its topic's stream, and for a day at most (the keys' memory bound).
pub(super) const PUBLISHER_ID_TTL: u64 = 86_400;

pub(super) fn stream_key(topic: &Topic) -> String {
    format!("{KEY_PREFIX}{}", topic.as_str())
}

/// The stream id of hub position `seq` (`0-0` for 0: before everything).
pub(super) fn stream_id(seq: u64) -> String {
    format!("{}-{}", seq / SEQ_SCALE, seq % SEQ_SCALE)
}

/// The hub position of stream id `<ms>-<n>`: ordered as the ids are, for any `n` below
/// a million per millisecond.
fn seq_of(id: &str) -> Option<u64> {
    let (ms, n) = id.split_once('-')?;
    let ms: u64 = ms.parse().ok()?;
    let n: u64 = n.parse().ok()?;
    if n >= SEQ_SCALE {
        return None;
    }
    ms.checked_mul(SEQ_SCALE)?.checked_add(n)
}

pub(super) fn as_string(value: Value) -> Option<String> {
    match value {
        Value::BulkString(b) => String::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

/// The items of an array reply (nothing for nil or anything else).
pub(super) fn list(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) | Value::Set(items) => items,
        _ => Vec::new(),
    }
}

/// The (key, value) pairs of a map reply, or of an array of two-element arrays (RESP2).
pub(super) fn pairs(value: Value) -> Vec<(Value, Value)> {
    match value {
        Value::Map(pairs) => pairs,
        other => list(other)
            .into_iter()
            .filter_map(|pair| {
                let mut it = list(pair).into_iter();
                Some((it.next()?, it.next()?))
            })
            .collect(),
    }
}

/// One stream entry, `[id, [field, value, ...]]`, as a position and an event.
pub(super) fn parse_entry(entry: Value) -> Result<(u64, Event), String> {
    let mut parts = list(entry).into_iter();
    let id = parts.next().and_then(as_string).ok_or("no id")?;
    let seq = seq_of(&id).ok_or_else(|| format!("{id:?} is not a stream id"))?;
    let event_id = EventId::new(id.clone()).map_err(|e| format!("{id}: id {e}"))?;
    let mut fields = list(parts.next().unwrap_or(Value::Nil)).into_iter();
    let (mut data, mut event_type, mut retry, mut wire_id) = (None, None, None, None);
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        let (Some(name), Some(value)) = (as_string(name), as_string(value)) else {
            return Err(format!("{id}: a field is not UTF-8"));
        };
        match name.as_str() {
            "data" => data = Some(value),
            // The publisher's own id: the event's id on the wire (its position stays `seq`).
            "id" => wire_id = Some(EventId::new(value).map_err(|e| format!("{id}: id {e}"))?),
            "event" => {
                event_type = Some(EventType::new(value).map_err(|e| format!("{id}: event {e}"))?)
            }
            "retry" => {
                retry = Some(
                    value
                        .parse::<u64>()
                        .map_err(|e| format!("{id}: retry {e}"))?,
                )
            }
            _ => {}
        }
    }
    let mut event = Event::new(data.ok_or_else(|| format!("{id}: no data field"))?)
        .with_id(wire_id.unwrap_or(event_id));
    if let Some(t) = event_type {
        event = event.with_type(t);
    }
    if let Some(ms) = retry {
        event = event.with_retry(Millis(ms));
    }
    Ok((seq, event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_and_positions_map_both_ways_in_order() {
        for (id, seq) in [
            ("0-0", Some(0)),
            ("1-0", Some(1_000_000)),
            ("1700000000123-7", Some(1_700_000_000_123_000_007)),
        ] {
            assert_eq!(seq_of(id), seq, "{id}");
            assert_eq!(stream_id(seq.unwrap()), id);
        }
        for bad in [
            "",
            "1",
            "1-",
            "-1",
            "a-1",
            "1-1000000",
            "18446744073709551615-0",
        ] {
            assert_eq!(seq_of(bad), None, "{bad:?}");
        }
        assert!(seq_of("5-999999") < seq_of("6-0"));
    }

    #[test]
    fn entries_become_events_or_are_refused() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let entry = |id: &str, fields: &[&str]| {
            Value::Array(vec![
                bulk(id),
                Value::Array(fields.iter().map(|f| bulk(f)).collect()),
            ])
        };
        let (seq, event) = parse_entry(entry(
            "2-1",
            &["data", "hi\nthere", "event", "note", "retry", "50"],
        ))
        .unwrap();
        assert_eq!(seq, 2_000_001);
        assert_eq!(event.id().map(EventId::as_str), Some("2-1"));
        assert_eq!(event.data(), "hi\nthere");
        assert_eq!(event.event_type().map(EventType::as_str), Some("note"));
        assert_eq!(event.retry(), Some(Millis(50)));
        // A publisher's id is the wire id; the position is still the stream id's.
        let (seq, event) = parse_entry(entry("3-0", &["data", "x", "id", "order-42"])).unwrap();
        assert_eq!(seq, 3_000_000);
        assert_eq!(event.id().map(EventId::as_str), Some("order-42"));
        assert!(parse_entry(entry("3-0", &["data", "x", "id", "a\nb"])).is_err());
        assert!(parse_entry(entry("2-1", &["event", "x"])).is_err());
        assert!(parse_entry(entry("2-1", &["data", "x", "event", "a\nb"])).is_err());
        assert!(parse_entry(entry("2-1", &["data", "x", "retry", "soon"])).is_err());
        assert!(parse_entry(entry("nope", &["data", "x"])).is_err());
        assert!(parse_entry(Value::Nil).is_err());
    }
}
