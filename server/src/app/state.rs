//! Everything behind the app's one lock: the core [`Hub`] and the I/O state of each
//! subscriber (its waker, why it ended, its socket), and the outputs drained after every
//! input to the hub ([`State::pump`]), so no wake-up is ever lost.

use std::collections::{BTreeMap, VecDeque};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::task::Waker;

use async_io::Async;
use ssecast::{CloseReason, Hub, Millis, SubscriberId};

use super::feed::EndCause;

/// I/O state of one subscriber, indexed by `SubscriberId::index()`.
#[derive(Debug, Default)]
pub(super) struct Slot {
    pub(super) id: Option<SubscriberId>,
    pub(super) waker: Option<Waker>,
    pub(super) ended: Option<EndCause>,
    pub(super) socket: Option<Arc<Async<TcpStream>>>,
    /// When its token expires and its stream is ended.
    pub(super) expires: Option<Millis>,
}

/// Everything behind the one lock.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) hub: Hub,
    pub(super) slots: Vec<Slot>,
    /// The deadline the timer task sleeps until, so an earlier one can wake it.
    pub(super) timer_deadline: Option<Millis>,
    pub(super) timer_nudge: bool,
    /// Streams to wake once the lock is released (so they do not wake into a held lock).
    pub(super) to_wake: Vec<Waker>,
    /// Streams with new frames, woken a batch at a time by the waker task.
    pub(super) ready: VecDeque<Waker>,
    /// Subscribers whose token expires, by when (each listed under its slot's `expires`).
    pub(super) expiries: BTreeMap<Millis, Vec<SubscriberId>>,
}

impl State {
    pub(super) fn new(hub: Hub) -> State {
        State {
            hub,
            slots: Vec::new(),
            timer_deadline: None,
            timer_nudge: false,
            to_wake: Vec::new(),
            ready: VecDeque::new(),
            expiries: BTreeMap::new(),
        }
    }

    /// Drains the hub's outputs: wakes streams with frames, ends subscribers the hub closed.
    pub(super) fn pump(&mut self) {
        while let Some(id) = self.hub.poll_ready() {
            if let Some(waker) = self.slot_mut(id).and_then(|slot| slot.waker.take()) {
                self.ready.push_back(waker);
            }
        }
        let mut to_wake = Vec::new();
        while let Some((id, reason)) = self.hub.poll_close() {
            // `CloseReason` is non-exhaustive; overflow is its only reason so far.
            let cause = match reason {
                CloseReason::Overflow => EndCause::Overflow,
                _ => EndCause::Overflow,
            };
            if let Some(slot) = self.slot_mut(id) {
                slot.ended.get_or_insert(cause);
                // The subscriber stopped reading, so its response is likely stuck in a write:
                // shutting the socket down makes that write fail and the connection end.
                if let Some(socket) = &slot.socket {
                    let _ = socket.get_ref().shutdown(Shutdown::Both);
                }
                if let Some(waker) = slot.waker.take() {
                    to_wake.push(waker);
                }
            }
        }
        self.to_wake.append(&mut to_wake);
        if let Some(next) = self.next_deadline() {
            if self.timer_deadline.is_none_or(|current| next < current) {
                self.timer_nudge = true;
            }
        }
    }

    /// When the timer task must next run: the hub's next keep-alive or the first token
    /// expiry.
    pub(super) fn next_deadline(&self) -> Option<Millis> {
        let expiry = self.expiries.keys().next().copied();
        match (self.hub.poll_timeout(), expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Lists `id` to be ended at `at`.
    pub(super) fn expire_at(&mut self, id: SubscriberId, at: Millis) {
        if let Some(slot) = self.slot_mut(id) {
            slot.expires = Some(at);
            self.expiries.entry(at).or_default().push(id);
            if self.timer_deadline.is_none_or(|current| at < current) {
                self.timer_nudge = true;
            }
        }
    }

    /// Forgets `id`'s expiry (it left first).
    pub(super) fn forget_expiry(&mut self, id: SubscriberId, at: Millis) {
        if let Some(ids) = self.expiries.get_mut(&at) {
            ids.retain(|&other| other != id);
            if ids.is_empty() {
                self.expiries.remove(&at);
            }
        }
    }

    /// Ends the streams whose token has expired by `now`.
    pub(super) fn end_expired(&mut self, now: Millis) {
        while let Some(entry) = self.expiries.first_entry() {
            if *entry.key() > now {
                break;
            }
            for id in entry.remove() {
                self.end(id, EndCause::Expired);
            }
        }
    }

    pub(super) fn slot_mut(&mut self, id: SubscriberId) -> Option<&mut Slot> {
        self.slots
            .get_mut(id.index())
            .filter(|slot| slot.id == Some(id))
    }

    /// Whether `id` has ended (a stale id has).
    pub(super) fn ended(&mut self, id: SubscriberId) -> bool {
        self.slot_mut(id).is_none_or(|slot| slot.ended.is_some())
    }

    /// Registers the waker of `id`'s stream, to be woken when frames are queued or it ends.
    pub(super) fn set_waker(&mut self, id: SubscriberId, waker: &Waker) {
        if let Some(slot) = self.slot_mut(id) {
            match &mut slot.waker {
                Some(w) if w.will_wake(waker) => {}
                w => *w = Some(waker.clone()),
            }
        }
    }

    /// Ends `id` for `cause` (unless it already ended) and wakes its stream, which then ends
    /// its body. The stream unsubscribes when its feed drops: it owns the subscription, so
    /// the slot (and its cause) cannot be reused by a newer subscriber before that.
    pub(super) fn end(&mut self, id: SubscriberId, cause: EndCause) {
        if let Some(slot) = self.slot_mut(id) {
            slot.ended.get_or_insert(cause);
            if let Some(waker) = slot.waker.take() {
                self.to_wake.push(waker);
            }
        }
    }
}
