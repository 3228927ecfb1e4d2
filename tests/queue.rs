//! The bounded subscriber queue: each overflow policy, its counts, and the smallest capacity.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ssecast::{Event, Frame, Overflow, Pushed, Queue};

fn frame(data: &str) -> Frame {
    Frame::event(&Event::new(data))
}

/// Pushes `pushes` into a queue of `capacity` under `policy`, checking what each push did,
/// then drains it and checks what remained and how many frames were dropped.
fn check(capacity: usize, policy: Overflow, pushes: &[(&str, Pushed)], left: &[&str]) {
    let mut queue = Queue::new(capacity, policy);
    for (data, expected) in pushes {
        assert_eq!(queue.push(frame(data)), *expected, "pushing {data:?}");
    }
    let expected_dropped = pushes
        .iter()
        .filter(|(_, p)| matches!(p, Pushed::DroppedNewest | Pushed::DroppedOldest))
        .count();
    assert_eq!(queue.dropped(), expected_dropped as u64);
    assert_eq!(queue.len(), left.len());
    assert_eq!(queue.is_empty(), left.is_empty());
    let drained: Vec<Frame> = std::iter::from_fn(|| queue.pop()).collect();
    let left: Vec<Frame> = left.iter().map(|d| frame(d)).collect();
    assert_eq!(drained, left);
    assert!(queue.is_empty());
    assert_eq!(queue.pop(), None);
}

use Pushed::{DroppedNewest, DroppedOldest, Overflowed, Queued};

#[test]
fn below_capacity_every_policy_queues_in_order() {
    for policy in [
        Overflow::DropNewest,
        Overflow::DropOldest,
        Overflow::Disconnect,
    ] {
        check(3, policy, &[("a", Queued), ("b", Queued)], &["a", "b"]);
        check(
            3,
            policy,
            &[("a", Queued), ("b", Queued), ("c", Queued)],
            &["a", "b", "c"],
        );
    }
}

#[test]
fn drop_newest_keeps_the_head() {
    check(
        2,
        Overflow::DropNewest,
        &[
            ("a", Queued),
            ("b", Queued),
            ("c", DroppedNewest),
            ("d", DroppedNewest),
        ],
        &["a", "b"],
    );
}

#[test]
fn drop_oldest_keeps_the_tail() {
    check(
        2,
        Overflow::DropOldest,
        &[
            ("a", Queued),
            ("b", Queued),
            ("c", DroppedOldest),
            ("d", DroppedOldest),
        ],
        &["c", "d"],
    );
}

#[test]
fn disconnect_refuses_and_drops_nothing() {
    check(
        2,
        Overflow::Disconnect,
        &[
            ("a", Queued),
            ("b", Queued),
            ("c", Overflowed),
            ("d", Overflowed),
        ],
        &["a", "b"],
    );
}

#[test]
fn capacity_one() {
    check(
        1,
        Overflow::DropNewest,
        &[("a", Queued), ("b", DroppedNewest)],
        &["a"],
    );
    check(
        1,
        Overflow::DropOldest,
        &[("a", Queued), ("b", DroppedOldest)],
        &["b"],
    );
    check(
        1,
        Overflow::Disconnect,
        &[("a", Queued), ("b", Overflowed)],
        &["a"],
    );
}

#[test]
fn capacity_zero_is_taken_as_one() {
    let queue = Queue::new(0, Overflow::DropOldest);
    assert_eq!(queue.capacity(), 1);
    check(
        0,
        Overflow::DropNewest,
        &[("a", Queued), ("b", DroppedNewest)],
        &["a"],
    );
}

#[test]
fn popping_makes_room_again() {
    let mut queue = Queue::new(1, Overflow::DropNewest);
    assert_eq!(queue.push(frame("a")), Queued);
    assert_eq!(queue.pop(), Some(frame("a")));
    assert_eq!(queue.push(frame("b")), Queued);
    assert_eq!(queue.push(frame("c")), DroppedNewest);
    assert_eq!(queue.pop(), Some(frame("b")));
    assert_eq!(queue.push(frame("d")), Queued);
    assert_eq!(queue.pop(), Some(frame("d")));
    assert_eq!(queue.dropped(), 1);
    assert_eq!(queue.policy(), Overflow::DropNewest);
}

#[test]
fn policies_parse_from_their_names() {
    for (text, policy) in [
        ("drop-newest", Overflow::DropNewest),
        ("drop-oldest", Overflow::DropOldest),
        ("disconnect", Overflow::Disconnect),
    ] {
        assert_eq!(text.parse::<Overflow>(), Ok(policy));
    }
    for text in ["", "DropNewest", "drop_newest", "disconnect "] {
        assert!(text.parse::<Overflow>().is_err(), "{text:?}");
    }
    assert_eq!(Overflow::default(), Overflow::DropNewest);
}
