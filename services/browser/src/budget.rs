//! The time a navigation may spend, shared by the async fetch and the
//! blocking extraction: one deadline for the whole request, and a flag the
//! request sets when it answers without waiting for the extraction (the
//! deadline passed, or the caller went away).
//!
//! Extraction runs on a blocking thread, which nothing can cancel from the
//! outside; so every loop that grows with the page (tokens, tree nodes,
//! passages) asks the budget now and then, and stops when it is spent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// How often (in loop iterations) the loops look at the clock: often enough
/// to stop within a millisecond or so, rarely enough to cost nothing.
const CHECK_EVERY: u32 = 256;

/// The extraction was stopped: its request has answered already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// A deadline and a cancel flag, cheap to clone into the blocking task.
#[derive(Clone, Debug)]
pub struct Budget {
    deadline: Instant,
    cancelled: Arc<AtomicBool>,
}

impl Budget {
    pub fn until(deadline: Instant) -> Self {
        Self {
            deadline,
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A budget without end, for tests and tools.
    pub fn unlimited() -> Self {
        Self::until(Instant::now() + std::time::Duration::from_secs(365 * 24 * 3600))
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Stops every loop that checks this budget.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// `Err(Stopped)` once cancelled or past the deadline.
    pub fn check(&self) -> Result<(), Stopped> {
        if self.cancelled.load(Ordering::Relaxed) || Instant::now() >= self.deadline {
            Err(Stopped)
        } else {
            Ok(())
        }
    }

    /// A counter for a loop: [`Ticker::tick`] checks the budget every
    /// [`CHECK_EVERY`] calls.
    pub fn ticker(&self) -> Ticker<'_> {
        Ticker {
            budget: self,
            count: std::cell::Cell::new(0),
        }
    }

    /// Cancels the budget when dropped: the request's future holds it, so
    /// an answer given early (the deadline, a caller gone) stops the work.
    pub fn cancel_on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(self.clone())
    }
}

/// See [`Budget::cancel_on_drop`].
#[derive(Debug)]
pub struct CancelOnDrop(Budget);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// See [`Budget::ticker`].
pub struct Ticker<'a> {
    budget: &'a Budget,
    count: std::cell::Cell<u32>,
}

impl Ticker<'_> {
    pub fn tick(&self) -> Result<(), Stopped> {
        let n = self.count.get().wrapping_add(1);
        self.count.set(n);
        if n.is_multiple_of(CHECK_EVERY) {
            self.budget.check()
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_budget_stops_at_its_deadline_or_when_cancelled() {
        let open = Budget::until(Instant::now() + Duration::from_secs(60));
        assert_eq!(open.check(), Ok(()));
        let guard = open.cancel_on_drop();
        assert_eq!(open.check(), Ok(()));
        drop(guard);
        assert_eq!(open.check(), Err(Stopped));

        let past = Budget::until(Instant::now());
        assert_eq!(past.check(), Err(Stopped));
        let ticker = past.ticker();
        let stopped_at = (1..=CHECK_EVERY).find(|_| ticker.tick().is_err());
        assert_eq!(
            stopped_at,
            Some(CHECK_EVERY),
            "checked every {CHECK_EVERY} ticks"
        );
    }
}
