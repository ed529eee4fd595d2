//! The bounded buffer between the pipeline (which calls `publish`) and the sender
//! thread. A sample leaves it only when the broker has confirmed the message holding
//! it; when it is full, the policy decides: block the pipeline, or drop the oldest.
//! With a spool, every sample is on disk before it is in the buffer.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ceilo_plugin_api::log_error;

use crate::config::Policy;
use crate::spool::{Replayed, Spool};

#[derive(Default)]
struct State {
    /// Signed samples, serialised; the first `in_flight` are being published.
    items: VecDeque<Vec<u8>>,
    /// With a spool: where each item's record ends in it.
    ends: VecDeque<u64>,
    spool: Option<Spool>,
    /// Samples on disk whose `push` is still waiting for room: the spool is not
    /// emptied under them.
    unbuffered: usize,
    in_flight: usize,
    published: u64,
    dropped: u64,
}

/// Shared by the plugin instance and its sender thread.
pub struct Buffer {
    state: Mutex<State>,
    changed: Condvar,
    capacity: usize,
    policy: Policy,
}

/// Counters for `stats`.
pub struct Counts {
    pub buffered: u64,
    pub published: u64,
    pub dropped: u64,
}

impl Buffer {
    #[cfg(test)]
    pub fn new(capacity: usize, policy: Policy) -> Self {
        Self::with_spool(capacity, policy, None)
    }

    /// A buffer backed by `spool`, holding what it replayed.
    pub fn with_spool(capacity: usize, policy: Policy, spool: Option<(Spool, Replayed)>) -> Self {
        let mut state = State::default();
        if let Some((spool, replayed)) = spool {
            for (item, end) in replayed {
                state.items.push_back(item);
                state.ends.push_back(end);
            }
            state.spool = Some(spool);
        }
        Buffer {
            state: Mutex::new(state),
            changed: Condvar::new(),
            capacity,
            policy,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds samples; returns how many older samples were dropped to make room.
    pub fn push(&self, items: Vec<Vec<u8>>) -> u64 {
        let mut dropped = 0;
        let mut s = self.lock();
        let ends = match s.spool.as_mut().map(|sp| sp.append(&items)) {
            None => None,
            Some(Ok(ends)) => Some(ends),
            Some(Err(e)) => {
                // Kept in memory, as without a spool. Their confirm commits nothing
                // more on disk (the ends stay aligned with the items).
                log_error!(
                    "amqp publisher: cannot write {} sample(s) to the spool: {e}; they are kept in memory only",
                    items.len()
                );
                let last = s.ends.back().copied().unwrap_or(0);
                Some(vec![last; items.len()])
            }
        };
        if ends.is_some() {
            s.unbuffered += items.len();
        }
        for (i, item) in items.into_iter().enumerate() {
            while s.items.len() >= self.capacity {
                match self.policy {
                    Policy::Queue => {
                        s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
                    }
                    Policy::Drop => {
                        // The oldest sample not already on its way to the broker.
                        let victim = s.in_flight;
                        if victim < s.items.len() {
                            s.items.remove(victim);
                            if victim < s.ends.len() {
                                s.ends.remove(victim);
                            }
                        } else {
                            break;
                        }
                        s.dropped += 1;
                        dropped += 1;
                    }
                }
            }
            if s.items.len() < self.capacity {
                s.items.push_back(item);
                if let Some(end) = ends.as_ref().and_then(|e| e.get(i)) {
                    s.ends.push_back(*end);
                }
            } else {
                // Everything buffered is in flight and the buffer is full: the new
                // sample is the one that cannot be kept.
                s.dropped += 1;
                dropped += 1;
            }
            if ends.is_some() {
                s.unbuffered -= 1;
            }
        }
        drop(s);
        self.changed.notify_all();
        dropped
    }

    /// Waits up to `wait` for samples, then up to `linger` for a full batch; marks the
    /// batch in flight and returns it as one JSON array, with its size.
    pub fn take_batch(
        &self,
        max: usize,
        linger: Duration,
        wait: Duration,
    ) -> Option<(Vec<u8>, usize)> {
        let deadline = Instant::now() + wait;
        let mut s = self.lock();
        while s.items.len() <= s.in_flight {
            let left = deadline.checked_duration_since(Instant::now())?;
            s = self
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let full_by = Instant::now() + linger;
        while s.items.len() - s.in_flight < max {
            let Some(left) = full_by.checked_duration_since(Instant::now()) else {
                break;
            };
            s = self
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let n = (s.items.len() - s.in_flight).min(max);
        let start = s.in_flight;
        let mut payload = Vec::with_capacity(n * 400 + 2);
        payload.push(b'[');
        for (i, item) in s.items.range(start..start + n).enumerate() {
            if i > 0 {
                payload.push(b',');
            }
            payload.extend_from_slice(item);
        }
        payload.push(b']');
        s.in_flight += n;
        Some((payload, n))
    }

    /// The broker confirmed the oldest `n` samples in flight: forget them.
    pub fn commit(&self, n: usize) {
        let mut s = self.lock();
        let n = n.min(s.in_flight);
        s.items.drain(..n);
        s.in_flight -= n;
        s.published += n as u64;
        let last_end = if s.ends.len() >= n && n > 0 {
            s.ends.drain(..n).next_back()
        } else {
            None
        };
        let all_done = s.items.is_empty() && s.unbuffered == 0;
        let state = &mut *s;
        if let (Some(end), Some(spool)) = (last_end, state.spool.as_mut()) {
            match spool.commit(end, all_done) {
                Ok(0) => {}
                Ok(shift) => state.ends.iter_mut().for_each(|e| *e -= shift),
                Err(e) => log_error!(
                    "amqp publisher: cannot update the spool {}: {e}; confirmed samples may be sent again after a restart",
                    spool.path().display()
                ),
            }
        }
        drop(s);
        self.changed.notify_all();
    }

    /// The batches in flight were not all confirmed: they will be sent again.
    pub fn retry(&self) {
        self.lock().in_flight = 0;
        self.changed.notify_all();
    }

    /// Waits until every buffered sample is confirmed; false on timeout.
    pub fn wait_empty(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        while !s.items.is_empty() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            s = self
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }

    pub fn counts(&self) -> Counts {
        let s = self.lock();
        Counts {
            buffered: s.items.len() as u64,
            published: s.published,
            dropped: s.dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: u8) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![b'0' + i]).collect()
    }

    #[test]
    fn batches_are_json_arrays_and_leave_only_when_committed() {
        let b = Buffer::new(10, Policy::Queue);
        b.push(items(3));
        let (payload, n) = b.take_batch(2, Duration::ZERO, Duration::ZERO).unwrap();
        assert_eq!((payload.as_slice(), n), (b"[0,1]".as_slice(), 2));
        b.retry();
        let (payload, _) = b.take_batch(5, Duration::ZERO, Duration::ZERO).unwrap();
        assert_eq!(payload, b"[0,1,2]", "a failed batch is sent again");
        b.commit(3);
        assert_eq!(b.counts().published, 3);
        assert!(b
            .take_batch(5, Duration::ZERO, Duration::from_millis(10))
            .is_none());
        assert!(b.wait_empty(Duration::ZERO));
    }

    #[test]
    fn several_batches_in_flight_commit_in_order() {
        let b = Buffer::new(10, Policy::Queue);
        b.push(items(4));
        let (first, _) = b.take_batch(2, Duration::ZERO, Duration::ZERO).unwrap();
        let (second, _) = b.take_batch(2, Duration::ZERO, Duration::ZERO).unwrap();
        assert_eq!(
            (first.as_slice(), second.as_slice()),
            (b"[0,1]".as_slice(), b"[2,3]".as_slice())
        );
        b.commit(2);
        b.retry();
        let (again, _) = b.take_batch(9, Duration::ZERO, Duration::ZERO).unwrap();
        assert_eq!(again, b"[2,3]", "only the unconfirmed batch is sent again");
    }

    #[test]
    fn drop_policy_drops_the_oldest_not_in_flight_and_counts() {
        let b = Buffer::new(3, Policy::Drop);
        b.push(items(3));
        let _ = b.take_batch(1, Duration::ZERO, Duration::ZERO); // "0" in flight
        assert_eq!(b.push(items(2)), 2);
        b.commit(1);
        let (payload, _) = b.take_batch(9, Duration::ZERO, Duration::ZERO).unwrap();
        assert_eq!(
            payload, b"[0,1]",
            "1 and 2 were dropped for the new 0 and 1"
        );
        assert_eq!(b.counts().dropped, 2);
    }

    #[test]
    fn queue_policy_blocks_until_room() {
        let b = std::sync::Arc::new(Buffer::new(1, Policy::Queue));
        b.push(items(1));
        let b2 = b.clone();
        let pusher = std::thread::spawn(move || b2.push(items(1)));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!pusher.is_finished(), "blocked while full");
        let _ = b.take_batch(1, Duration::ZERO, Duration::ZERO);
        b.commit(1);
        assert_eq!(pusher.join().unwrap(), 0);
        assert_eq!(b.counts().dropped, 0);
    }

    #[test]
    fn with_a_spool_what_was_not_confirmed_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let open = || Some(Spool::open(dir.path(), "d").unwrap());
        let b = Buffer::with_spool(10, Policy::Queue, open());
        b.push(items(4));
        let _ = b.take_batch(2, Duration::ZERO, Duration::ZERO).unwrap();
        b.commit(2);
        drop(b); // the process dies with 2 and 3 unconfirmed
        let b = Buffer::with_spool(10, Policy::Queue, open());
        let (payload, n) = b.take_batch(9, Duration::ZERO, Duration::ZERO).unwrap();
        assert_eq!((payload.as_slice(), n), (b"[2,3]".as_slice(), 2));
        b.commit(2);
        drop(b);
        let b = Buffer::with_spool(10, Policy::Queue, open());
        assert_eq!(b.counts().buffered, 0, "all confirmed: nothing replayed");
    }
}
