//! Noticing the events `ferry audit tail` never saw: the stream is trimmed (`XADD … MAXLEN ~ N`),
//! so a tail that was stopped, cut off or slower than the replicas can find the events after the
//! last one it printed already gone. `XREAD` then simply goes on from the oldest one left, and
//! without this the operator would not know that anything was missing.
//!
//! Stream ids say nothing about how many entries lay between two of them, but Redis 7 counts
//! every entry ever added (`entries-added` in `XINFO STREAM`), which gives each entry a
//! *position*: the oldest entry kept is at `entries-added - length + 1` when nothing was deleted
//! with `XDEL` (trimming removes the oldest entries first; `max-deleted-entry-id` stays `0-0`
//! until an `XDEL`). The tail knows the position of the last event it printed and, after each
//! read, asks `XINFO STREAM`:
//!
//! - The oldest entry kept is no newer than the last one printed: nothing after it was trimmed.
//! - Otherwise, if the read began at the oldest entry kept (or ended at the newest entry added),
//!   the read's positions are known, and the difference from the last printed one is the number
//!   of events trimmed unread. A position that goes backwards means the stream was deleted and
//!   started again (a flush).
//! - Anything else (an `XDEL` after the last event printed, or a read trimmed away itself before
//!   `XINFO` was asked) can only say that events may be missing.
//!
//! Before Redis 7 there is no `entries-added`, and the tail says nothing about gaps.

use std::cmp::Ordering;

/// A stream entry id, `MILLISECONDS-SEQUENCE`, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct EntryId(u64, u64);

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

impl EntryId {
    pub fn parse(id: &str) -> Option<EntryId> {
        let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
        Some(EntryId(ms.parse().ok()?, seq.parse().ok()?))
    }
}

/// The fields of `XINFO STREAM` this needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamInfo {
    pub length: u64,
    /// Redis 7 and later.
    pub entries_added: Option<u64>,
    pub last_generated: EntryId,
    pub max_deleted: EntryId,
    /// The oldest entry kept; none when the stream is empty.
    pub first: Option<EntryId>,
}

/// One read: the ids of its first and last entries and how many it held (at least one).
#[derive(Debug, Clone, Copy)]
pub struct Read {
    pub first: EntryId,
    pub last: EntryId,
    pub count: u64,
}

/// What a read left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gap {
    None,
    /// This many events were trimmed before the tail read them.
    Trimmed(u64),
    /// Some may have been; the count cannot be known.
    Unknown,
    /// The stream's count went backwards: it was deleted and began again, or the server
    /// restored an older copy (a flush, a restart without persistence, a failover); events
    /// may be missing.
    Restarted,
}

/// Where the tail is: the last event printed and, when known, its position.
#[derive(Debug, Clone, Copy, Default)]
pub struct Place {
    pub last: EntryId,
    pub position: Option<u64>,
}

impl Place {
    /// The live end, from `XINFO STREAM` (a stream that does not exist yet: `0-0`, position 0).
    pub fn at_end(info: Option<&StreamInfo>) -> Place {
        match info {
            Some(info) => Place {
                last: info.last_generated,
                position: info.entries_added,
            },
            None => Place {
                last: EntryId::default(),
                position: Some(0),
            },
        }
    }

    /// Moves past `read`, printed, and says what was left out before it (`info` asked after it).
    /// `None` for `info`: no `XINFO` answer, nothing is judged and the position is forgotten.
    pub fn advance(&mut self, read: Read, info: Option<&StreamInfo>) -> Gap {
        let before = *self;
        self.last = read.last;
        let Some(info) = info else {
            self.position = None;
            return Gap::None;
        };
        let Some(added) = info.entries_added else {
            self.position = None;
            return Gap::None;
        };
        // An `XDEL` after the last event printed breaks the count between positions and ids.
        let counts_hold = info.max_deleted <= before.last;
        // Trimming removes the oldest entries first: while one no newer than the last event
        // printed is kept, nothing after it was trimmed, and the read followed on from it.
        if info.first.is_some_and(|first| first <= before.last) {
            if !counts_hold {
                self.position = None;
                return Gap::None;
            }
            let counted = before.position.map(|p| p + read.count);
            if info.last_generated != read.last {
                self.position = counted;
                return Gap::None;
            }
            // The read ended at the newest entry, whose position is `entries-added`: that
            // pins the position down again after losing track, and checks the count kept. A
            // count that ran past it means the server serves an older copy than the one the
            // tail read (a failover to a replica that was behind, a restart from a lossy
            // AOF); one that fell short, another history.
            self.position = Some(added);
            return match counted.map(|c| c.cmp(&added)) {
                Some(Ordering::Greater) => Gap::Restarted,
                Some(Ordering::Less) => Gap::Unknown,
                _ => Gap::None,
            };
        }
        // The position of the read's first entry, when the answer pins it down.
        let first_position = if !counts_hold {
            None
        } else if info.first == Some(read.first) {
            Some((added + 1).saturating_sub(info.length))
        } else if info.last_generated == read.last {
            Some((added + 1).saturating_sub(read.count))
        } else {
            None
        };
        self.position = first_position.map(|f| f + read.count - 1);
        match (before.position, first_position) {
            (Some(p), Some(f)) => match f.cmp(&(p + 1)) {
                Ordering::Equal => Gap::None,
                Ordering::Greater => Gap::Trimmed(f - p - 1),
                Ordering::Less => Gap::Restarted,
            },
            // Nothing printed yet (`--from-start`): what was trimmed before is not missed.
            (None, _) if before.last == EntryId::default() => Gap::None,
            // Trimmed past the last event printed, by an unknown count.
            _ => Gap::Unknown,
        }
    }
}

/// `XINFO STREAM`'s answer (a flat field/value list, or a map under RESP3).
pub fn parse_info(reply: redis::Value) -> Option<StreamInfo> {
    use redis::Value;
    let pairs: Vec<(Value, Value)> = match reply {
        Value::Array(items) => {
            let mut items = items.into_iter();
            std::iter::from_fn(|| Some((items.next()?, items.next()?))).collect()
        }
        Value::Map(pairs) => pairs,
        _ => return None,
    };
    let text = |v: &Value| match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok().map(str::to_string),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    let number = |v: &Value| match v {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => text(other)?.parse().ok(),
    };
    let mut info = StreamInfo::default();
    let mut has_length = false;
    for (field, value) in &pairs {
        match text(field).as_deref() {
            Some("length") => {
                info.length = number(value)?;
                has_length = true;
            }
            Some("entries-added") => info.entries_added = Some(number(value)?),
            Some("last-generated-id") => info.last_generated = EntryId::parse(&text(value)?)?,
            Some("max-deleted-entry-id") => info.max_deleted = EntryId::parse(&text(value)?)?,
            Some("first-entry") => {
                info.first = match value {
                    Value::Array(entry) => Some(EntryId::parse(&text(entry.first()?)?)?),
                    _ => None,
                }
            }
            _ => {}
        }
    }
    has_length.then_some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64) -> EntryId {
        EntryId(ms, 0)
    }

    /// A stream of entries with ids 1, 2, … `added` (position = id), keeping the newest `kept`.
    fn stream(added: u64, kept: u64) -> StreamInfo {
        StreamInfo {
            length: kept,
            entries_added: Some(added),
            last_generated: id(added),
            max_deleted: EntryId::default(),
            first: (kept > 0).then(|| id(added - kept + 1)),
        }
    }

    fn read(first: u64, last: u64) -> Read {
        Read {
            first: id(first),
            last: id(last),
            count: last - first + 1,
        }
    }

    #[test]
    fn ids_order_as_redis_orders_them() {
        assert!(EntryId::parse("10-2").unwrap() > EntryId::parse("9-7").unwrap());
        assert!(EntryId::parse("10-2").unwrap() < EntryId::parse("10-10").unwrap());
        assert_eq!(EntryId::parse("0"), Some(EntryId(0, 0)));
        assert_eq!(EntryId::parse("x-1"), None);
    }

    #[test]
    fn a_tail_that_keeps_up_sees_no_gap() {
        let mut place = Place::at_end(Some(&stream(10, 10)));
        assert_eq!(
            place.advance(read(11, 15), Some(&stream(15, 15))),
            Gap::None
        );
        // Trimmed, but only what was printed already.
        assert_eq!(place.advance(read(16, 20), Some(&stream(22, 8))), Gap::None);
        assert_eq!(place.position, Some(20));
        // Trimmed up to the read, which begins right after the last event printed.
        assert_eq!(place.advance(read(21, 22), Some(&stream(22, 2))), Gap::None);
    }

    #[test]
    fn events_trimmed_unread_are_counted() {
        let mut place = Place::at_end(Some(&stream(10, 10)));
        // 11..=17 trimmed while the tail was away; it reads 18..=20, the oldest kept.
        assert_eq!(
            place.advance(read(18, 20), Some(&stream(20, 3))),
            Gap::Trimmed(7)
        );
        assert_eq!(place.position, Some(20));
        // The read trimmed away itself before XINFO, but it ended at the newest entry.
        assert_eq!(
            place.advance(read(26, 30), Some(&stream(30, 2))),
            Gap::Trimmed(5)
        );
        // Neither end pinned down: the count cannot be known.
        assert_eq!(
            place.advance(read(40, 45), Some(&stream(50, 2))),
            Gap::Unknown
        );
        assert_eq!(place.position, None);
        // Trimmed past the last event printed (46..51 gone): still unknown, but said.
        assert_eq!(
            place.advance(read(52, 60), Some(&stream(60, 9))),
            Gap::Unknown
        );
        assert_eq!(place.position, Some(60), "pinned down again");
        assert_eq!(
            place.advance(read(70, 70), Some(&stream(70, 1))),
            Gap::Trimmed(9)
        );
        // Lost track, then a read that follows on (nothing trimmed past it): no gap, and the
        // newest entry pins the position down.
        assert_eq!(
            place.advance(read(80, 85), Some(&stream(90, 2))),
            Gap::Unknown
        );
        assert_eq!(place.position, None);
        assert_eq!(
            place.advance(read(86, 90), Some(&stream(90, 20))),
            Gap::None
        );
        assert_eq!(place.position, Some(90));
    }

    #[test]
    fn a_deletion_after_the_last_event_makes_the_count_unknown() {
        let mut place = Place::at_end(Some(&stream(10, 10)));
        let mut info = stream(20, 3);
        info.max_deleted = id(12);
        info.last_generated = id(21);
        assert_eq!(place.advance(read(18, 20), Some(&info)), Gap::Unknown);
        // A deletion in what a read followed on to: nothing missed, but the count is lost, so
        // a later gap is not miscounted.
        let mut place = Place::at_end(Some(&stream(10, 10)));
        let mut info = stream(15, 14);
        info.max_deleted = id(12);
        let deleted = Read {
            first: id(11),
            last: id(15),
            count: 4,
        };
        assert_eq!(place.advance(deleted, Some(&info)), Gap::None);
        assert_eq!(place.position, None);
        assert_eq!(
            place.advance(read(30, 31), Some(&stream(31, 2))),
            Gap::Unknown
        );
    }

    #[test]
    fn a_stream_that_began_again_is_told_apart() {
        let mut place = Place::at_end(Some(&stream(500, 100)));
        // After a flush: new, larger ids, but the count starts again.
        let info = StreamInfo {
            length: 2,
            entries_added: Some(2),
            last_generated: id(1001),
            max_deleted: EntryId::default(),
            first: Some(id(1000)),
        };
        assert_eq!(place.advance(read(1000, 1001), Some(&info)), Gap::Restarted);
        assert_eq!(place.position, Some(2));
    }

    #[test]
    fn a_copy_that_was_behind_is_told_apart_and_the_count_set_again() {
        // Printed up to 20; the server fails over to a replica that had only 1..=17, and the
        // new master appends 18' and 19' with ids after 20 (ids follow the clock).
        let mut place = Place::at_end(Some(&stream(20, 20)));
        let behind = StreamInfo {
            length: 19,
            entries_added: Some(19),
            last_generated: id(31),
            max_deleted: EntryId::default(),
            first: Some(id(1)),
        };
        assert_eq!(place.advance(read(30, 31), Some(&behind)), Gap::Restarted);
        assert_eq!(place.position, Some(19), "counted from the server again");
        // A later trim of events it never read is counted right.
        let trimmed = StreamInfo {
            length: 2,
            entries_added: Some(25),
            last_generated: id(45),
            max_deleted: EntryId::default(),
            first: Some(id(44)),
        };
        assert_eq!(place.advance(read(44, 45), Some(&trimmed)), Gap::Trimmed(4));
        // A count that falls short of the server's: another history, something may be missing.
        let mut place = Place::at_end(Some(&stream(20, 20)));
        let mut ahead = stream(25, 25);
        ahead.last_generated = id(22);
        ahead.first = Some(id(1));
        assert_eq!(place.advance(read(21, 22), Some(&ahead)), Gap::Unknown);
        assert_eq!(place.position, Some(25));
    }

    #[test]
    fn from_the_start_or_without_counts_nothing_is_judged() {
        let mut place = Place::default();
        assert_eq!(place.advance(read(5, 9), Some(&stream(9, 5))), Gap::None);
        assert_eq!(place.position, Some(9), "now known");
        let mut old_redis = stream(20, 3);
        old_redis.entries_added = None;
        assert_eq!(place.advance(read(18, 20), Some(&old_redis)), Gap::None);
        assert_eq!(place.position, None);
        // A stream that did not exist at the start: its first entry is position 1.
        let mut place = Place::at_end(None);
        assert_eq!(place.advance(read(1, 2), Some(&stream(2, 2))), Gap::None);
        let mut place = Place::at_end(None);
        assert_eq!(
            place.advance(read(4, 5), Some(&stream(5, 2))),
            Gap::Trimmed(3)
        );
    }

    #[test]
    fn xinfo_answers_are_read_in_either_protocol() {
        use redis::Value;
        let b = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let flat = Value::Array(vec![
            b("length"),
            Value::Int(2),
            b("last-generated-id"),
            b("1796234316057-0"),
            b("max-deleted-entry-id"),
            b("0-0"),
            b("entries-added"),
            Value::Int(4),
            b("first-entry"),
            Value::Array(vec![
                b("1796234316052-0"),
                Value::Array(vec![b("a"), b("2")]),
            ]),
        ]);
        let info = parse_info(flat).unwrap();
        assert_eq!(info.length, 2);
        assert_eq!(info.entries_added, Some(4));
        assert_eq!(info.first, EntryId::parse("1796234316052-0"));
        assert_eq!(Some(info.last_generated), EntryId::parse("1796234316057-0"));
        let map = Value::Map(vec![
            (b("length"), Value::Int(0)),
            (b("first-entry"), Value::Nil),
        ]);
        let info = parse_info(map).unwrap();
        assert_eq!(
            (info.length, info.first, info.entries_added),
            (0, None, None)
        );
        assert_eq!(parse_info(Value::Nil), None);
    }
}
