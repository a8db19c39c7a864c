//! How much work a role takes on at once.
//!
//! A job in flight first fetches (its spec, or its result), then computes. The
//! two are bounded apart, so a peer that drips its bytes holds a download, never
//! an inference slot:
//!
//! - [`Slots::enter`] admits at most `compute + waiting` jobs of a role at once;
//!   the rest stay where they are for a later poll.
//! - [`Slots::compute`] lets `compute` of them run inference at a time.
//! - Downloads of the whole agent share one semaphore (`[fetch]
//!   max_concurrent_downloads`, held by `Ctx::download`), so memory stays under
//!   that many times the largest cap.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A role's admission count and compute slots.
pub(crate) struct Slots {
    admitted: Arc<AtomicUsize>,
    cap: usize,
    compute: Arc<Semaphore>,
}

/// One admitted job; leaves when dropped.
pub(crate) struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Slots {
    /// `compute` inference slots, and room for `waiting` more jobs fetching or
    /// waiting for one.
    pub fn new(compute: usize, waiting: usize) -> Slots {
        Slots {
            admitted: Arc::new(AtomicUsize::new(0)),
            cap: compute + waiting,
            compute: Arc::new(Semaphore::new(compute)),
        }
    }

    /// Admits one more job, or `None` when the role is full.
    pub fn enter(&self) -> Option<Admitted> {
        self.admitted
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.cap).then_some(n + 1)
            })
            .ok()
            .map(|_| Admitted(self.admitted.clone()))
    }

    /// Waits for an inference slot.
    pub async fn compute(&self) -> OwnedSemaphorePermit {
        self.compute
            .clone()
            .acquire_owned()
            .await
            .expect("the compute semaphore is never closed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_stops_at_the_cap_and_reopens_when_a_job_leaves() {
        let slots = Slots::new(1, 2);
        let held: Vec<_> = (0..3).map(|_| slots.enter().expect("room")).collect();
        assert!(slots.enter().is_none());
        drop(held);
        assert!(slots.enter().is_some());
    }

    #[tokio::test]
    async fn compute_slots_are_held_until_dropped() {
        let slots = Slots::new(1, 0);
        let first = slots.compute().await;
        assert_eq!(slots.compute.available_permits(), 0);
        drop(first);
        assert_eq!(slots.compute.available_permits(), 1);
    }
}
