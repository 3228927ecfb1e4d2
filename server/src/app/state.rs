//! Everything behind the app's one lock: the core [`Hub`] and the I/O state of each
//! subscriber (its waker, why it ended, its socket), and the outputs drained after every
//! input to the hub ([`State::pump`]), so no wake-up is ever lost.

use std::collections::VecDeque;
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
        if let Some(next) = self.hub.poll_timeout() {
            if self.timer_deadline.is_none_or(|current| next < current) {
                self.timer_nudge = true;
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
