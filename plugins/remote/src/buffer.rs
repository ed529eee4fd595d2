//! The bounded buffer between the pipeline (which calls `publish`) and a publisher's
//! sender thread. Samples leave it only once the endpoint took the request holding
//! them (or refused it for good); when it is full, the policy decides: block the
//! pipeline, or drop the oldest samples not already being sent. Samples are kept as
//! they are (cloning one costs a few reference counts) and encoded by the sender, off
//! the pipeline's thread.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ceilo_plugin_api::Sample;

use crate::options::Policy;

#[derive(Default)]
struct State {
    /// The first `in_flight` are being sent.
    items: VecDeque<Sample>,
    in_flight: usize,
    published: u64,
    dropped: u64,
    rejected: u64,
}

/// Shared by the plugin instance and its sender thread.
pub struct Buffer {
    state: Mutex<State>,
    changed: Condvar,
    capacity: usize,
    policy: Policy,
}

/// Counters for `stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub buffered: u64,
    pub published: u64,
    pub dropped: u64,
    pub rejected: u64,
}

impl Buffer {
    pub fn new(capacity: usize, policy: Policy) -> Self {
        Buffer {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            capacity,
            policy,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds samples; returns how many older samples were dropped to make room.
    pub fn push(&self, batch: &[Sample]) -> u64 {
        let mut dropped = 0;
        let mut s = self.lock();
        for sample in batch {
            while s.items.len() >= self.capacity {
                match self.policy {
                    Policy::Queue => s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner()),
                    Policy::Drop => {
                        let victim = s.in_flight;
                        if victim >= s.items.len() {
                            break;
                        }
                        s.items.remove(victim);
                        s.dropped += 1;
                        dropped += 1;
                    }
                }
            }
            if s.items.len() < self.capacity {
                s.items.push_back(sample.clone());
            } else {
                // Everything buffered is being sent: the new sample cannot be kept.
                s.dropped += 1;
                dropped += 1;
            }
        }
        drop(s);
        self.changed.notify_all();
        dropped
    }

    /// Waits up to `wait` for samples; marks up to `max` in flight and returns them.
    pub fn take_batch(&self, max: usize, wait: Duration) -> Option<Vec<Sample>> {
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
        let start = s.in_flight;
        let n = (s.items.len() - start).min(max);
        let batch = s.items.range(start..start + n).cloned().collect();
        s.in_flight += n;
        Some(batch)
    }

    /// The oldest `n` samples in flight are done with: `rejected` of them were refused
    /// by the endpoint, the rest taken.
    pub fn commit(&self, n: usize, rejected: usize) {
        let mut s = self.lock();
        let n = n.min(s.in_flight);
        s.items.drain(..n);
        s.in_flight -= n;
        let rejected = rejected.min(n);
        s.rejected += rejected as u64;
        s.published += (n - rejected) as u64;
        drop(s);
        self.changed.notify_all();
    }

    /// Every buffered sample is given up (the publisher is gone and the endpoint
    /// still away): counted as dropped. Returns how many.
    pub fn abandon(&self) -> u64 {
        let mut s = self.lock();
        let n = s.items.len();
        s.items.clear();
        s.in_flight = 0;
        s.dropped += n as u64;
        drop(s);
        self.changed.notify_all();
        n as u64
    }

    /// Waits until every buffered sample is sent; false on timeout.
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
            rejected: s.rejected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ceilo_plugin_api::SampleType;

    fn samples(n: usize) -> Vec<Sample> {
        (0..n)
            .map(|i| Sample::new("m", SampleType::Gauge, "u", i as f64, "r"))
            .collect()
    }

    fn volumes(batch: &[Sample]) -> Vec<f64> {
        batch.iter().map(Sample::volume).collect()
    }

    #[test]
    fn samples_leave_only_when_committed() {
        let b = Buffer::new(10, Policy::Queue);
        b.push(&samples(3));
        assert_eq!(
            volumes(&b.take_batch(2, Duration::ZERO).unwrap()),
            [0.0, 1.0]
        );
        assert_eq!(volumes(&b.take_batch(5, Duration::ZERO).unwrap()), [2.0]);
        b.commit(3, 1);
        let c = b.counts();
        assert_eq!((c.published, c.rejected, c.buffered), (2, 1, 0));
        assert!(b.take_batch(5, Duration::from_millis(5)).is_none());
        assert!(b.wait_empty(Duration::ZERO));
    }

    #[test]
    fn drop_policy_drops_the_oldest_not_in_flight() {
        let b = Buffer::new(3, Policy::Drop);
        b.push(&samples(3));
        let _ = b.take_batch(1, Duration::ZERO); // 0 in flight
        assert_eq!(b.push(&samples(2)), 2);
        b.commit(1, 0);
        let rest = b.take_batch(9, Duration::ZERO).unwrap();
        assert_eq!(
            volumes(&rest),
            [0.0, 1.0],
            "1 and 2 were dropped for the new 0 and 1"
        );
        assert_eq!(b.counts().dropped, 2);
    }

    #[test]
    fn queue_policy_blocks_until_room() {
        let b = std::sync::Arc::new(Buffer::new(1, Policy::Queue));
        b.push(&samples(1));
        let b2 = b.clone();
        let pusher = std::thread::spawn(move || b2.push(&samples(1)));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!pusher.is_finished(), "blocked while full");
        let _ = b.take_batch(1, Duration::ZERO);
        b.commit(1, 0);
        assert_eq!(pusher.join().unwrap(), 0);
        assert_eq!(b.counts().dropped, 0);
    }

    #[test]
    fn abandoned_samples_count_as_dropped() {
        let b = Buffer::new(5, Policy::Queue);
        b.push(&samples(3));
        let _ = b.take_batch(2, Duration::ZERO);
        assert_eq!(b.abandon(), 3);
        assert_eq!(
            b.counts(),
            Counts {
                buffered: 0,
                published: 0,
                dropped: 3,
                rejected: 0
            }
        );
    }
}
