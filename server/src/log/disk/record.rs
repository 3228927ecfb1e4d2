//! The log's records: `[MAGIC][len][crc32][payload]` (older logs without the magic are still
//! read), an event or a topic's eviction mark each, and reading a log back: intact records,
//! damaged stretches skipped and resynchronised, a torn tail.

use ssecast::{Event, EventId, EventType, Millis, Topic, Update};

use super::{HEADER, KIND_EVENT, KIND_EVICTED, MAGIC, MAX_RECORD, OLD_HEADER};

/// `[MAGIC][len u32][crc32 u32][payload]`, little-endian.
pub(super) fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + HEADER);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// A record read back.
#[derive(Debug)]
pub(super) struct Record {
    pub(super) payload: std::ops::Range<usize>,
    pub(super) parsed: Parsed,
}

/// A stretch of the log skipped as damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Damage {
    pub(super) offset: usize,
    pub(super) len: usize,
    /// The `seq` of the first event after it (`None`: none follows).
    pub(super) next_seq: Option<u64>,
}

/// A log read back: its records, the damage skipped, and where a torn tail starts.
#[derive(Debug, Default)]
pub(super) struct Scan {
    pub(super) records: Vec<Record>,
    pub(super) damaged: Vec<Damage>,
    /// The offset of an incomplete last record.
    pub(super) torn: Option<usize>,
}

impl Scan {
    /// The eviction mark that makes every resume from before the damage a miss: an event lost
    /// in it has a `seq` below the next event's, or above every `seq` when none follows.
    pub(super) fn damage_mark(&self, last_seq: u64) -> u64 {
        self.damaged
            .iter()
            .map(|d| d.next_seq.map_or(last_seq.saturating_add(1), |s| s - 1))
            .max()
            .unwrap_or(0)
    }
}

/// Why no record starts at an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bad {
    /// The file ends before the record does; `end` is where its header says it ends, if
    /// the header is whole.
    Incomplete,
    /// A bad length, checksum or payload; the record would end at `end` if its length is
    /// right.
    Invalid { end: Option<usize> },
}

/// The record at `at` and where it ends.
pub(super) fn record_at(bytes: &[u8], at: usize) -> Result<(Record, usize), Bad> {
    let rest = &bytes[at..];
    let (header, len_at) = if rest.starts_with(&MAGIC) {
        (HEADER, 4)
    } else if rest.len() < MAGIC.len() && MAGIC.starts_with(rest) {
        return Err(Bad::Incomplete);
    } else {
        (OLD_HEADER, 0)
    };
    let word = |i: usize| -> Option<u32> {
        Some(u32::from_le_bytes(rest.get(i..i + 4)?.try_into().ok()?))
    };
    let (Some(len), Some(crc)) = (word(len_at), word(len_at + 4)) else {
        return Err(Bad::Incomplete);
    };
    let len = len as usize;
    if len > MAX_RECORD {
        return Err(Bad::Invalid { end: None });
    }
    let end = at + header + len;
    if end > bytes.len() {
        return Err(Bad::Incomplete);
    }
    let payload = at + header..end;
    if crc32fast::hash(&bytes[payload.clone()]) != crc {
        return Err(Bad::Invalid { end: Some(end) });
    }
    match parse(&bytes[payload.clone()]) {
        Some(parsed) => Ok((Record { payload, parsed }, end)),
        None => Err(Bad::Invalid { end: Some(end) }),
    }
}

/// Reads every record of a log. After a bad record it looks for the next good one: first
/// where the bad record's length says it ends (one damaged record whose length is intact),
/// else at every later offset, or, once the log has shown a record of this version, only at
/// offsets holding [`MAGIC`]. A position passes only if its length fits, its CRC-32 matches
/// (1 in 4 billion by chance) and its payload parses, so a false start is very unlikely.
/// If no good record follows, a bad record whose end lies past the end of the file is a
/// torn tail; anything else is damage.
pub(super) fn scan(bytes: &[u8]) -> Scan {
    let mut scan = Scan::default();
    let mut at = 0;
    let mut current = false;
    while at < bytes.len() {
        match record_at(bytes, at) {
            Ok((record, end)) => {
                current |= bytes[at..].starts_with(&MAGIC);
                scan.records.push(record);
                at = end;
            }
            Err(bad) => {
                let exact = match bad {
                    Bad::Invalid { end: Some(end) } if end < bytes.len() => {
                        record_at(bytes, end).ok().map(|_| end)
                    }
                    _ => None,
                };
                let next = exact.or_else(|| {
                    (at + 1..bytes.len()).find(|&p| {
                        (!current || bytes[p..].starts_with(&MAGIC)) && record_at(bytes, p).is_ok()
                    })
                });
                match next {
                    Some(next) => {
                        scan.damaged.push(Damage {
                            offset: at,
                            len: next - at,
                            next_seq: None,
                        });
                        at = next;
                    }
                    None if bad == Bad::Incomplete || bytes[at..].iter().all(|&b| b == 0) => {
                        // Zeros: a file extended by a write the crash interrupted.
                        scan.torn = Some(at);
                        break;
                    }
                    None => {
                        scan.damaged.push(Damage {
                            offset: at,
                            len: bytes.len() - at,
                            next_seq: None,
                        });
                        break;
                    }
                }
            }
        }
    }
    // The first event after each stretch.
    let mut records = scan.records.iter().peekable();
    for damage in &mut scan.damaged {
        while records
            .next_if(|r| r.payload.start < damage.offset)
            .is_some()
        {}
        damage.next_seq = records.clone().find_map(|r| match r.parsed {
            Parsed::Event(_, seq) => Some(seq),
            Parsed::Evicted(..) => None,
        });
    }
    scan
}

pub(super) fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Most alternate topics a record holds (an update has at most this many; see the routes).
const MAX_ALTERNATES: usize = 255;

/// An update's record: its canonical topic, `seq`, a flag byte (bits: id, type, retry,
/// private, alternates), the fields the flags name, the alternate topics (a count byte then
/// each topic) and the data.
pub(super) fn encode_event(update: &Update, seq: u64) -> Vec<u8> {
    let (topic, event) = (&update.topics()[0], update.event());
    let alternates = &update.topics()[1..];
    let mut p = Vec::with_capacity(32 + topic.as_str().len() + event.data().len());
    p.push(KIND_EVENT);
    p.extend_from_slice(&seq.to_le_bytes());
    put_str(&mut p, topic.as_str());
    let flags = u8::from(event.id().is_some())
        | u8::from(event.event_type().is_some()) << 1
        | u8::from(event.retry().is_some()) << 2
        | u8::from(update.is_private()) << 3
        | u8::from(!alternates.is_empty()) << 4;
    p.push(flags);
    if let Some(id) = event.id() {
        put_str(&mut p, id.as_str());
    }
    if let Some(t) = event.event_type() {
        put_str(&mut p, t.as_str());
    }
    if let Some(r) = event.retry() {
        p.extend_from_slice(&r.0.to_le_bytes());
    }
    if !alternates.is_empty() {
        let alternates = &alternates[..alternates.len().min(MAX_ALTERNATES)];
        p.push(alternates.len() as u8);
        for t in alternates {
            put_str(&mut p, t.as_str());
        }
    }
    put_str(&mut p, event.data());
    frame(&p)
}

pub(super) fn evicted_payload(topic: &Topic, seq: u64) -> Vec<u8> {
    let mut p = Vec::new();
    p.push(KIND_EVICTED);
    p.extend_from_slice(&seq.to_le_bytes());
    put_str(&mut p, topic.as_str());
    p
}

#[derive(Debug)]
pub(super) enum Parsed {
    Event(Update, u64),
    Evicted(Topic, u64),
}

/// Reads fields off the front of a payload.
pub(super) struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    pub(super) fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    pub(super) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    pub(super) fn str(&mut self) -> Option<&'a str> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        std::str::from_utf8(self.take(len)?).ok()
    }
}

/// A record's payload; `None` if it does not make sense (or has bytes left over).
pub(super) fn parse(payload: &[u8]) -> Option<Parsed> {
    let mut c = Cursor(payload);
    let kind = c.u8()?;
    let seq = c.u64()?;
    let topic = Topic::new(c.str()?).ok()?;
    let parsed = match kind {
        KIND_EVICTED => Parsed::Evicted(topic, seq),
        KIND_EVENT => {
            let flags = c.u8()?;
            if flags & !31 != 0 {
                return None;
            }
            let id = if flags & 1 != 0 {
                EventId::new(c.str()?).ok()?
            } else {
                // The hub's own id for it.
                EventId::from(seq)
            };
            let event_type = if flags & 2 != 0 {
                Some(EventType::new(c.str()?).ok()?)
            } else {
                None
            };
            let retry = if flags & 4 != 0 { Some(c.u64()?) } else { None };
            let mut alternates = Vec::new();
            if flags & 16 != 0 {
                for _ in 0..c.u8()? {
                    alternates.push(Topic::new(c.str()?).ok()?);
                }
            }
            let mut event = Event::new(c.str()?).with_id(id);
            if let Some(t) = event_type {
                event = event.with_type(t);
            }
            if let Some(ms) = retry {
                event = event.with_retry(Millis(ms));
            }
            let update = alternates
                .into_iter()
                .fold(Update::new(topic, event), Update::with_alternate)
                .with_private(flags & 8 != 0);
            Parsed::Event(update, seq)
        }
        _ => return None,
    };
    c.0.is_empty().then_some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str) -> Topic {
        Topic::new(name).unwrap()
    }

    fn event(seq: u64) -> Vec<u8> {
        let update = Update::new(topic("t"), Event::new(format!("event {seq}")));
        encode_event(&update, seq)
    }

    /// A record as the earlier format wrote it: `[len][crc][payload]`.
    fn old_event(seq: u64) -> Vec<u8> {
        let record = event(seq);
        let payload = &record[HEADER..];
        let mut out = (payload.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// What a scan finds: the seqs of its events, the (offset, len) of each damaged stretch,
    /// and where a torn tail starts.
    fn check(bytes: &[u8], seqs: &[u64], damaged: &[(usize, usize)], torn: Option<usize>) {
        let scan = scan(bytes);
        let found: Vec<u64> = scan
            .records
            .iter()
            .filter_map(|r| match r.parsed {
                Parsed::Event(_, seq) => Some(seq),
                Parsed::Evicted(..) => None,
            })
            .collect();
        let stretches: Vec<(usize, usize)> =
            scan.damaged.iter().map(|d| (d.offset, d.len)).collect();
        assert_eq!(
            (found.as_slice(), stretches.as_slice(), scan.torn),
            (seqs, damaged, torn)
        );
    }

    fn log(records: &[Vec<u8>]) -> Vec<u8> {
        records.concat()
    }

    #[test]
    fn records_round_trip() {
        let event = Event::new("a\nb")
            .with_type(EventType::new("note").unwrap())
            .with_retry(Millis(7));
        let record = encode_event(&Update::new(topic("news"), event), 42);
        let (r, end) = record_at(&record, 0).unwrap();
        assert_eq!(end, record.len());
        let Parsed::Event(update, seq) = r.parsed else {
            panic!("not an event")
        };
        assert_eq!((update.topics(), seq), (&[topic("news")][..], 42));
        assert!(!update.is_private());
        let e = update.event();
        assert_eq!(e.id().map(EventId::as_str), Some("42"));
        assert_eq!(e.data(), "a\nb");
        assert_eq!(e.event_type().map(EventType::as_str), Some("note"));
        assert_eq!(e.retry(), Some(Millis(7)));
        let mercure = Update::new(
            topic("https://example.com/books/1"),
            Event::new("x").with_id(EventId::new("mine").unwrap()),
        )
        .with_alternate(topic("/users/7"))
        .with_alternate(topic("/users/8"))
        .with_private(true);
        let custom = encode_event(&mercure, 43);
        let Parsed::Event(update, 43) = record_at(&custom, 0).unwrap().0.parsed else {
            panic!("not an event")
        };
        assert_eq!(update, mercure);
        let Parsed::Evicted(t, 9) = record_at(&frame(&evicted_payload(&topic("x"), 9)), 0)
            .unwrap()
            .0
            .parsed
        else {
            panic!("not a mark")
        };
        assert_eq!(t, topic("x"));
    }

    #[test]
    fn intact_logs_of_both_formats() {
        let n = event(1).len();
        check(&[], &[], &[], None);
        check(&log(&[event(1), event(2), event(3)]), &[1, 2, 3], &[], None);
        check(&log(&[old_event(1), old_event(2)]), &[1, 2], &[], None);
        // An old log appended to by this version.
        check(
            &log(&[old_event(1), event(2), event(3)]),
            &[1, 2, 3],
            &[],
            None,
        );
        assert_eq!(old_event(1).len() + 4, n);
    }

    #[test]
    fn a_torn_tail_is_not_damage() {
        let whole = log(&[event(1), event(2), event(3)]);
        let n = event(1).len();
        // Every cut inside the last record, its header included.
        for cut in 2 * n + 1..3 * n {
            check(&whole[..cut], &[1, 2], &[], Some(2 * n));
        }
        // A record's beginning appended after whole ones (an interrupted group write).
        let mut torn = whole.clone();
        torn.extend_from_slice(&event(4)[..n / 2]);
        check(&torn, &[1, 2, 3], &[], Some(3 * n));
        // Zeros where a crash left the file longer than what was written.
        let mut zeros = whole.clone();
        zeros.extend_from_slice(&[0; 100]);
        check(&zeros, &[1, 2, 3], &[], Some(3 * n));
        // The same in an old log.
        let old = log(&[old_event(1), old_event(2)]);
        check(&old[..old.len() - 1], &[1], &[], Some(old.len() / 2));
    }

    #[test]
    fn a_flipped_byte_loses_one_record() {
        let records: Vec<Vec<u8>> = (1..=5).map(event).collect();
        let whole = log(&records);
        let n = records[0].len();
        // A flip at any byte of the third record loses that record alone, whether its
        // length still says where it ends or not.
        for i in 0..n {
            let mut bytes = whole.clone();
            bytes[2 * n + i] ^= 0x10;
            check(&bytes, &[1, 2, 4, 5], &[(2 * n, n)], None);
        }
        // In the last record: damage (a whole record fails its checksum), not a torn tail.
        let mut bytes = whole.clone();
        bytes[4 * n + HEADER + 2] ^= 1;
        check(&bytes, &[1, 2, 3, 4], &[(4 * n, n)], None);
        // Two damaged records far apart.
        let mut bytes = whole.clone();
        bytes[n + 20] ^= 1;
        bytes[3 * n + 5] ^= 1;
        check(&bytes, &[1, 3, 5], &[(n, n), (3 * n, n)], None);
        // Garbage in place of two whole records.
        let mut bytes = whole.clone();
        bytes[n..3 * n].fill(b'x');
        check(&bytes, &[1, 4, 5], &[(n, 2 * n)], None);
    }

    #[test]
    fn old_logs_resynchronise_too() {
        let records: Vec<Vec<u8>> = (1..=4).map(old_event).collect();
        let whole = log(&records);
        let n = records[0].len();
        for i in 0..n {
            let mut bytes = whole.clone();
            bytes[n + i] ^= 0x04;
            check(&bytes, &[1, 3, 4], &[(n, n)], None);
        }
    }

    #[test]
    fn the_damage_mark_covers_the_lost_event() {
        let records: Vec<Vec<u8>> = [10, 20, 30].into_iter().map(event).collect();
        let n = records[0].len();
        let mut bytes = log(&records);
        bytes[n + 20] ^= 1;
        // Event 20 is lost: a resume from 10 (or anything below 29) must be a miss.
        assert_eq!(scan(&bytes).damage_mark(30), 29);
        let mut bytes = log(&records);
        bytes[2 * n + 20] ^= 1;
        // The last one: every position up to the newest left is before it.
        assert_eq!(scan(&bytes).damage_mark(20), 21);
    }
}
