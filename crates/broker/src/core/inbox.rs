//! A connection's inbox: a bounded many-producer, one-consumer queue of deliveries, with the
//! part of `tokio::sync::mpsc`'s API the broker uses (`try_send`, `reserve_owned`, `recv`,
//! `try_recv`, `close`); the connection's [`Kick`], the request to close it, which travels in
//! the same allocation (a oneshot channel of its own would be one more allocation per
//! connection); and its timer, the instant its session next has timed work
//! ([`Receiver::set_timer`]), which the broker's one timer loop checks for every connection,
//! but only at a tick when one may be due ([`Timers`]), instead of a tokio timer per
//! connection (which would grow every task, and register with the timer wheel at every turn
//! of its loop).
//!
//! Why not tokio's channel: it allocates its first block of slots and a cache-padded channel
//! state up front, for every connection whether a message ever arrives or not, a large share
//! of an idle connection's memory. This one is one small allocation until a message arrives;
//! its queue grows only when messages wait, and gives back what a burst made it grow once it
//! is empty. Every operation takes a short `parking_lot` lock that is never held across an
//! `.await`.

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};

use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;
use tokio::sync::Notify;

/// Why a connection is told to close from outside its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kick {
    /// A newer connection took the client id over.
    Takeover,
    /// The HTTP API's `CloseConnection` (or the embedding API) asked for it.
    Closed,
    /// Its login token expired or was revoked (`auth.disconnect_on_token_invalid`).
    TokenInvalid,
    /// Its client id was put on the connect blacklist.
    Blacklisted,
    /// The broker shuts down.
    Shutdown,
    /// The broker sends its clients to another server (server redirection).
    Redirect,
}

/// Slots an empty queue keeps once it was used (larger ones are released when it empties).
const KEEP_SLOTS: usize = 8;

/// The earliest timer set on any inbox of a group (a broker's connections) since its last
/// sweep, so that the one loop waking due receivers looks at every inbox only when one may be
/// due, not at every tick: with keep-alive deadlines tens of seconds away, an idle broker's
/// timer loop reads one atomic per tick instead of every connection's.
///
/// A sweep ([`begin_sweep`](Self::begin_sweep), then [`Sender::due_waker`] on every inbox,
/// then [`end_sweep`](Self::end_sweep) with the earliest timer not yet due) misses no timer:
/// every operation on the floor and on the inboxes' timers is `SeqCst`, so a timer set before
/// the sweep began is seen by the sweep, and one set after it lowers the floor again (or
/// finds it lower already, which makes a sweep come sooner anyway).
#[derive(Debug)]
pub(crate) struct Timers {
    /// ms since the Unix epoch; `u64::MAX`: none known.
    earliest: AtomicU64,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            earliest: AtomicU64::new(u64::MAX),
        }
    }
}

impl Timers {
    /// Lowers the floor to `at` if it is earlier. Loads first: the floor's cache line is
    /// written only when a timer is earlier than every other one, not by every connection
    /// every time it sets its timer.
    fn note(&self, at: u64) {
        if at < self.earliest.load(Ordering::SeqCst) {
            self.earliest.fetch_min(at, Ordering::SeqCst);
        }
    }

    /// Whether some timer of the group may be due at `now`.
    pub(crate) fn may_be_due(&self, now: u64) -> bool {
        self.earliest.load(Ordering::SeqCst) <= now
    }

    /// Starts a sweep: the floor is forgotten, and the sweep and the timers set from now on
    /// make it again.
    pub(crate) fn begin_sweep(&self) {
        self.earliest.store(u64::MAX, Ordering::SeqCst);
    }

    /// Ends a sweep that found `pending` the earliest timer not yet due.
    pub(crate) fn end_sweep(&self, pending: u64) {
        self.earliest.fetch_min(pending, Ordering::SeqCst);
    }
}

/// Why [`Sender::try_send`] gave the value back.
#[derive(Debug)]
pub(crate) enum TrySendError<T> {
    /// The inbox holds its capacity (queued plus reserved).
    Full(T),
    /// The receiver closed or went away.
    Closed(T),
}

/// [`Sender::reserve_owned`] failed: the receiver closed or went away.
#[derive(Debug)]
pub(crate) struct SendError;

struct State<T> {
    queue: VecDeque<T>,
    /// The receiver's waker while it waits on an empty queue: a sender wakes it only then,
    /// so a burst of values costs one wake-up, not one per value.
    receiver: Option<Waker>,
    /// Slots promised to [`OwnedPermit`]s not yet used.
    reserved: u32,
    /// A sender found no room and waits on `room`: the receiver notifies only then, so
    /// taking a value costs no atomic operation beyond the lock when nobody waits.
    room_wanted: bool,
    senders: u32,
    closed: bool,
    /// Why the receiver is asked to close, once a sender asked.
    kick: Option<Kick>,
}

struct Chan<T> {
    state: Mutex<State<T>>,
    /// When the receiver's timer is due (ms since the Unix epoch); `u64::MAX`: none.
    wake_at: AtomicU64,
    capacity: usize,
    /// Wakes a sender waiting for room.
    room: Notify,
}

impl<T> Chan<T> {
    fn has_room(&self, state: &State<T>) -> bool {
        state.queue.len() + (state.reserved as usize) < self.capacity
    }
}

/// Creates an inbox holding at most `capacity` (at least 1) values.
pub(crate) fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            receiver: None,
            reserved: 0,
            room_wanted: false,
            senders: 1,
            closed: false,
            kick: None,
        }),
        wake_at: AtomicU64::new(u64::MAX),
        // At most u32::MAX, so `reserved` (never above it) fits its u32.
        capacity: capacity.clamp(1, u32::MAX as usize),
        room: Notify::new(),
    });
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// The sending side; clone it for every producer.
pub(crate) struct Sender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.chan.capacity)
            .finish_non_exhaustive()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.state.lock().senders += 1;
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waiting = {
            let mut state = self.chan.state.lock();
            state.senders -= 1;
            if state.senders == 0 {
                state.receiver.take()
            } else {
                None
            }
        };
        if let Some(waker) = waiting {
            waker.wake();
        }
    }
}

impl<T> Sender<T> {
    /// Values waiting in the inbox now.
    pub(crate) fn len(&self) -> usize {
        self.chan.state.lock().queue.len()
    }

    /// Queues `value` if there is room, without waiting.
    ///
    /// # Errors
    /// [`TrySendError::Full`] or [`TrySendError::Closed`], with the value.
    #[cfg(test)]
    pub(crate) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        if let Some(waker) = self.try_send_deferred(value)? {
            waker.wake();
        }
        Ok(())
    }

    /// Like [`try_send`](Self::try_send), but hands back the receiver's waker (when it was
    /// waiting) instead of waking it: a caller holding a lock of its own wakes it after
    /// letting that go.
    ///
    /// # Errors
    /// As [`try_send`](Self::try_send).
    pub(crate) fn try_send_deferred(&self, value: T) -> Result<Option<Waker>, TrySendError<T>> {
        let mut state = self.chan.state.lock();
        if state.closed {
            return Err(TrySendError::Closed(value));
        }
        if !self.chan.has_room(&state) {
            return Err(TrySendError::Full(value));
        }
        state.queue.push_back(value);
        Ok(state.receiver.take())
    }

    /// Asks the receiver to close, for `why`; `false` when it is already closing or was
    /// asked before (the first reason stands).
    pub(crate) fn kick(&self, why: Kick) -> bool {
        let waiting = {
            let mut state = self.chan.state.lock();
            if state.closed || state.kick.is_some() {
                return false;
            }
            state.kick = Some(why);
            state.receiver.take()
        };
        if let Some(waker) = waiting {
            waker.wake();
        }
        true
    }

    /// When the receiver's timer is due at `now` (ms since the Unix epoch): `Ok` with its
    /// waker, taken if it waits (wake it once the caller lets its own locks go). When it is
    /// not due yet: `Err` with when it will be (`u64::MAX`: no timer).
    pub(crate) fn due_waker(&self, now: u64) -> Result<Option<Waker>, u64> {
        // SeqCst: ordered with the `Timers` sweep (see there).
        let at = self.chan.wake_at.load(Ordering::SeqCst);
        if at > now {
            return Err(at);
        }
        Ok(self.chan.state.lock().receiver.take())
    }

    /// Waits for room and keeps it for one value (cancel-safe: nothing is reserved unless
    /// this returns).
    ///
    /// # Errors
    /// [`SendError`] when the receiver closed.
    pub(crate) async fn reserve_owned(self) -> Result<OwnedPermit<T>, SendError> {
        loop {
            let notified = self.chan.room.notified();
            tokio::pin!(notified);
            // Registered before the check, so room made in between is not missed.
            notified.as_mut().enable();
            {
                let mut state = self.chan.state.lock();
                if state.closed {
                    return Err(SendError);
                }
                if self.chan.has_room(&state) {
                    state.reserved += 1;
                    drop(state);
                    return Ok(OwnedPermit {
                        chan: self.chan.clone(),
                        used: false,
                    });
                }
                state.room_wanted = true;
            }
            notified.await;
        }
    }
}

/// One slot kept for a value by [`Sender::reserve_owned`]; given back if dropped unused.
pub(crate) struct OwnedPermit<T> {
    chan: Arc<Chan<T>>,
    used: bool,
}

impl<T> fmt::Debug for OwnedPermit<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit").finish_non_exhaustive()
    }
}

impl<T> OwnedPermit<T> {
    /// Queues `value` in the kept slot. As with tokio's permits, a receiver that closed after
    /// the reservation still finds it with `try_recv`.
    pub(crate) fn send(mut self, value: T) {
        self.used = true;
        let waiting = {
            let mut state = self.chan.state.lock();
            state.reserved -= 1;
            state.queue.push_back(value);
            state.receiver.take()
        };
        if let Some(waker) = waiting {
            waker.wake();
        }
    }
}

impl<T> Drop for OwnedPermit<T> {
    fn drop(&mut self) {
        if !self.used {
            self.chan.state.lock().reserved -= 1;
            self.chan.room.notify_one();
        }
    }
}

/// The receiving side: one per inbox.
pub(crate) struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.chan.capacity)
            .finish_non_exhaustive()
    }
}

impl<T> Receiver<T> {
    /// The next value; `None` once the inbox is closed or every sender left, and it is
    /// empty. Cancel-safe.
    pub(crate) async fn recv(&self) -> Option<T> {
        poll_fn(|cx| match self.take(Some(cx.waker())) {
            Taken::Value(value) => Poll::Ready(Some(value)),
            Taken::Over => Poll::Ready(None),
            Taken::Empty => Poll::Pending,
        })
        .await
    }

    /// Sets the timer to `at` (ms since the Unix epoch; `None`: no timer), and tells
    /// `timers`, the group whose sweeps look at this inbox. Whoever calls
    /// [`Sender::due_waker`] from then on finds the receiver's waker once `at` has passed.
    pub(crate) fn set_timer(&self, at: Option<u64>, timers: &Timers) {
        let at = at.unwrap_or(u64::MAX);
        // SeqCst: ordered with the `Timers` sweep (see there).
        self.chan.wake_at.store(at, Ordering::SeqCst);
        timers.note(at);
    }

    /// Waits until a sender [kicks](Sender::kick) the receiver, or until the timer is due by
    /// `clock` (which reads ms since the Unix epoch); a kick comes first. When every sender
    /// left without a word (the registry let go of this connection), that is a
    /// [`Kick::Takeover`]. One lock per poll for both, and the waker left for both.
    ///
    /// The timer wakes the receiver only through a caller of [`Sender::due_waker`]: it is as
    /// precise as that caller's rounds are frequent. Cancel-safe.
    pub(crate) async fn signal(&self, clock: impl Fn() -> u64) -> Signal {
        poll_fn(|cx| {
            let mut state = self.chan.state.lock();
            if let Some(why) = state.kick {
                return Poll::Ready(Signal::Kick(why));
            }
            if state.senders == 0 {
                return Poll::Ready(Signal::Kick(Kick::Takeover));
            }
            let at = self.chan.wake_at.load(Ordering::Relaxed);
            if at != u64::MAX && clock() >= at {
                return Poll::Ready(Signal::Timer);
            }
            // The same waker `recv` leaves: one task owns the receiver. A value arriving
            // wakes it at most once spuriously while it only waits for this.
            if !state
                .receiver
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                state.receiver = Some(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    /// The next value if one is queued.
    ///
    /// # Errors
    /// `Err(())` when none is (whether or not more may come).
    #[allow(clippy::result_unit_err)]
    pub(crate) fn try_recv(&mut self) -> Result<T, ()> {
        match self.take(None) {
            Taken::Value(value) => Ok(value),
            Taken::Empty | Taken::Over => Err(()),
        }
    }

    /// Refuses further values and reservations; what is queued can still be received.
    pub(crate) fn close(&mut self) {
        self.chan.state.lock().closed = true;
        self.chan.room.notify_waiters();
    }

    /// Moves queued values into `out` under one lock, while `out` has room and `accept`
    /// agrees to the next one (a value it refuses stays first in the queue). Returns how
    /// many were moved.
    pub(crate) fn try_recv_many<const N: usize>(
        &mut self,
        out: &mut SmallVec<[T; N]>,
        mut accept: impl FnMut(&T) -> bool,
    ) -> usize {
        let mut state = self.chan.state.lock();
        let before = out.len();
        while out.len() < N {
            match state.queue.front() {
                Some(next) if accept(next) => {}
                _ => break,
            }
            if let Some(value) = state.queue.pop_front() {
                out.push(value);
            }
        }
        let moved = out.len() - before;
        self.made_room(state, moved);
        moved
    }

    /// Lets the lock go, and wakes the senders waiting for room if `freed` slots were freed.
    fn made_room(&self, mut state: MutexGuard<'_, State<T>>, freed: usize) {
        let wanted = freed > 0 && std::mem::take(&mut state.room_wanted);
        drop(state);
        if wanted {
            // Every waiting sender re-checks (and says so again if there is still no room).
            self.chan.room.notify_waiters();
        }
    }

    /// Pops the next value; when there is none and `waker` is given, leaves it to be woken
    /// (under the same lock a sender pushes under, so no value slips in between unseen).
    fn take(&self, waker: Option<&Waker>) -> Taken<T> {
        let mut state = self.chan.state.lock();
        match state.queue.pop_front() {
            Some(value) => {
                self.made_room(state, 1);
                Taken::Value(value)
            }
            None if state.closed || state.senders == 0 => Taken::Over,
            None => {
                if state.queue.capacity() > KEEP_SLOTS {
                    // Grown by a burst: an empty inbox gives that memory back. A few slots
                    // stay, so a steady trickle of messages allocates nothing per message.
                    state.queue = VecDeque::new();
                }
                if let Some(waker) = waker {
                    if !state.receiver.as_ref().is_some_and(|w| w.will_wake(waker)) {
                        state.receiver = Some(waker.clone());
                    }
                }
                Taken::Empty
            }
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let queued = {
            let mut state = self.chan.state.lock();
            state.closed = true;
            std::mem::take(&mut state.queue)
        };
        self.chan.room.notify_waiters();
        drop(queued);
    }
}

/// What [`Receiver::signal`] waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// A sender asked the receiver to close, for this reason.
    Kick(Kick),
    /// The timer is due.
    Timer,
}

enum Taken<T> {
    Value(T),
    Empty,
    Over,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn values_arrive_in_order_and_capacity_holds() {
        let (tx, mut rx) = channel(2);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        assert_eq!(rx.recv().await, Some(1));
        tx.try_send(3).unwrap();
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Ok(3));
        assert_eq!(rx.try_recv(), Err(()));
    }

    #[tokio::test]
    async fn a_reservation_waits_for_room_and_keeps_it() {
        let (tx, rx) = channel(1);
        tx.try_send(1).unwrap();
        let waiting = tokio::spawn(tx.clone().reserve_owned());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "no room yet");
        assert_eq!(rx.recv().await, Some(1));
        let permit = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        // The kept slot is the only one: nobody else gets in meanwhile.
        assert!(matches!(tx.try_send(9), Err(TrySendError::Full(9))));
        permit.send(2);
        assert_eq!(rx.recv().await, Some(2));
    }

    #[tokio::test]
    async fn an_unused_permit_gives_its_slot_back() {
        let (tx, rx) = channel(1);
        let permit = tx.clone().reserve_owned().await.unwrap();
        assert!(matches!(tx.try_send(1), Err(TrySendError::Full(1))));
        drop(permit);
        tx.try_send(1).unwrap();
        assert_eq!(rx.recv().await, Some(1));
    }

    #[tokio::test]
    async fn close_refuses_new_values_and_wakes_waiting_senders() {
        let (tx, mut rx) = channel(1);
        tx.try_send(1).unwrap();
        let waiting = tokio::spawn(tx.clone().reserve_owned());
        tokio::time::sleep(Duration::from_millis(20)).await;
        rx.close();
        let refused = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
        assert!(refused.is_err());
        assert!(matches!(tx.try_send(2), Err(TrySendError::Closed(2))));
        assert_eq!(rx.try_recv(), Ok(1), "what was queued stays receivable");
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn recv_ends_when_every_sender_left() {
        let (tx, rx) = channel::<u8>(4);
        let other = tx.clone();
        drop(tx);
        other.try_send(7).unwrap();
        drop(other);
        assert_eq!(rx.recv().await, Some(7));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_kick_wakes_the_receiver_once_and_the_first_reason_stands() {
        let (tx, rx) = channel::<u8>(4);
        let waiting = tokio::spawn(async move {
            let why = rx.signal(|| 0).await;
            (why, rx)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "nobody kicked yet");
        tx.try_send(1).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "a value is no kick");
        assert!(tx.kick(Kick::Closed));
        assert!(!tx.kick(Kick::Shutdown), "asked before");
        let (why, mut rx) = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(why, Signal::Kick(Kick::Closed));
        rx.set_timer(Some(0), &Timers::default());
        let again = rx.signal(|| 1).await;
        assert_eq!(
            again,
            Signal::Kick(Kick::Closed),
            "it stays kicked, before any timer"
        );
        assert_eq!(rx.try_recv(), Ok(1), "values stay receivable");
        rx.close();
        let (tx, _rx) = channel::<u8>(1);
        drop(_rx);
        assert!(
            !tx.kick(Kick::Closed),
            "a receiver that went away cannot be told"
        );
    }

    #[tokio::test]
    async fn a_receiver_every_sender_left_counts_as_taken_over() {
        let (tx, rx) = channel::<u8>(1);
        drop(tx);
        assert_eq!(rx.signal(|| 0).await, Signal::Kick(Kick::Takeover));
    }

    #[tokio::test]
    async fn a_timer_fires_once_due_and_only_when_woken() {
        let now = Arc::new(AtomicU64::new(1_000));
        let (tx, rx) = channel::<u8>(1);
        let timers = Arc::new(Timers::default());
        assert_eq!(
            tx.due_waker(u64::MAX - 1).unwrap_err(),
            u64::MAX,
            "no timer set"
        );
        assert!(!timers.may_be_due(u64::MAX - 1), "nothing set");
        rx.set_timer(Some(1_500), &timers);
        assert!(!timers.may_be_due(1_499));
        assert!(timers.may_be_due(1_500), "the floor is the one timer");
        let clock = {
            let now = now.clone();
            move || now.load(Ordering::Relaxed)
        };
        let waiting = tokio::spawn(async move {
            assert_eq!(rx.signal(clock).await, Signal::Timer);
            rx
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(tx.due_waker(1_499).unwrap_err(), 1_500, "not due yet");
        now.store(1_500, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "due, but nobody woke it");
        tx.due_waker(1_500)
            .unwrap()
            .expect("due, and waiting")
            .wake();
        let rx = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
        rx.set_timer(None, &timers);
        assert_eq!(tx.due_waker(u64::MAX - 1).unwrap_err(), u64::MAX, "cleared");
    }

    #[test]
    fn a_sweep_keeps_the_timers_not_due_and_those_set_while_it_ran() {
        let timers = Timers::default();
        let (a_tx, a) = channel::<u8>(1);
        let (b_tx, b) = channel::<u8>(1);
        a.set_timer(Some(100), &timers);
        b.set_timer(Some(300), &timers);
        assert!(!timers.may_be_due(99));
        assert!(timers.may_be_due(100), "the earliest of the two");
        // A sweep at 100: `a` is due; `a` sets its next timer after the sweep passed it.
        timers.begin_sweep();
        assert!(a_tx.due_waker(100).is_ok(), "due");
        a.set_timer(Some(200), &timers);
        let pending = b_tx.due_waker(100).unwrap_err();
        assert_eq!(pending, 300);
        timers.end_sweep(pending);
        assert!(!timers.may_be_due(199));
        assert!(timers.may_be_due(200), "set while the sweep ran");
        timers.begin_sweep();
        assert!(a_tx.due_waker(200).is_ok());
        a.set_timer(None, &timers);
        timers.end_sweep(b_tx.due_waker(200).unwrap_err());
        assert!(!timers.may_be_due(299));
        assert!(timers.may_be_due(300), "b's, found by the sweep");
        // A later timer never raises the floor: a stale one only brings a sweep sooner.
        b.set_timer(Some(1_000), &timers);
        assert!(timers.may_be_due(300));
        timers.begin_sweep();
        timers.end_sweep(b_tx.due_waker(300).unwrap_err());
        assert!(!timers.may_be_due(999));
        assert!(timers.may_be_due(1_000));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_producers_lose_nothing() {
        const PRODUCERS: usize = 4;
        const EACH: usize = 2_000;
        let (tx, rx) = channel(3);
        let mut tasks = Vec::new();
        for p in 0..PRODUCERS {
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..EACH {
                    let value = p * EACH + i;
                    if let Err(TrySendError::Full(value)) = tx.try_send(value) {
                        tx.clone().reserve_owned().await.unwrap().send(value);
                    }
                }
            }));
        }
        drop(tx);
        let mut last = [None::<usize>; PRODUCERS];
        let mut count = 0;
        while let Some(value) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
        {
            let p = value / EACH;
            assert!(last[p].is_none_or(|l| l < value), "in order per producer");
            last[p] = Some(value);
            count += 1;
        }
        assert_eq!(count, PRODUCERS * EACH);
        for task in tasks {
            task.await.unwrap();
        }
    }
}
