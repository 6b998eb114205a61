//! Load shedding for the scoring endpoints: a bounded number of answers are
//! computed at once, and a request that cannot start within its queue
//! deadline is refused at once with the managed service's
//! `ThrottlingException`, which its SDKs retry with backoff.
//!
//! Without it, every request went to tokio's blocking pool (up to 512
//! threads on 2 cores): under overload, answers queued for more than a
//! minute instead of being refused (`recflow bench serve` at 750k items
//! measured a p99 of 87 s). With it, the work in flight is bounded by the
//! cores, the wait by the deadline, and the excess is counted as shed.
//!
//! tokio's `Semaphore` gives the bounded, fair (FIFO) admission; what it
//! lacks — a bound on how many wait, and a deadline — is the thin layer
//! here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::error::ApiError;

/// How the scoring endpoints shed load (`recflow serve --scoring-threads`,
/// `--max-queue-ms`, `--max-queued`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateConfig {
    /// Answers computed at once (default: the machine's cores).
    pub threads: usize,
    /// Longest a request waits for a scoring thread before it is shed.
    pub deadline: Duration,
    /// Requests that may wait at once; more are shed without waiting.
    pub max_queued: usize,
}

impl GateConfig {
    pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(50);
    pub const DEFAULT_MAX_QUEUED: usize = 1024;

    pub fn default_threads() -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            threads: Self::default_threads(),
            deadline: Self::DEFAULT_DEADLINE,
            max_queued: Self::DEFAULT_MAX_QUEUED,
        }
    }
}

/// Admission to the scoring threads; see the module documentation.
pub struct ScoringGate {
    config: GateConfig,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    shed: AtomicU64,
}

impl ScoringGate {
    pub fn new(config: GateConfig) -> ScoringGate {
        ScoringGate {
            config,
            permits: Arc::new(Semaphore::new(config.threads.max(1))),
            waiting: AtomicUsize::new(0),
            shed: AtomicU64::new(0),
        }
    }

    /// Requests shed since the server started.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Runs `work` on a blocking thread once one of the scoring threads is
    /// free, or refuses with `ThrottlingException` if none frees up within
    /// the deadline (or too many already wait).
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.config.max_queued {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(self.throttled());
                }
                let waited = tokio::time::timeout(
                    self.config.deadline,
                    self.permits.clone().acquire_owned(),
                )
                .await;
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                match waited {
                    Ok(Ok(p)) => p,
                    _ => return Err(self.throttled()),
                }
            }
        };
        tokio::task::spawn_blocking(move || {
            let _held = permit;
            work()
        })
        .await
        .map_err(ApiError::internal)
    }

    fn throttled(&self) -> ApiError {
        self.shed.fetch_add(1, Ordering::Relaxed);
        ApiError::Throttled(format!(
            "Rate exceeded: no scoring thread was free within {} ms; retry with backoff",
            self.config.deadline.as_millis()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(threads: usize, deadline_ms: u64, max_queued: usize) -> Arc<ScoringGate> {
        Arc::new(ScoringGate::new(GateConfig {
            threads,
            deadline: Duration::from_millis(deadline_ms),
            max_queued,
        }))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_that_cannot_start_within_its_deadline_is_throttled() {
        let g = gate(1, 20, 8);
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let busy = {
            let g = g.clone();
            tokio::spawn(async move {
                g.run(move || {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    1
                })
                .await
            })
        };
        tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
            .await
            .unwrap();
        // The one thread is busy until released: the next request is shed.
        let err = g.run(|| 2).await.unwrap_err();
        assert_eq!(err.code(), "ThrottlingException");
        assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST);
        assert!(err.message().contains("within 20 ms"), "{}", err.message());
        assert_eq!(g.shed(), 1);
        release_tx.send(()).unwrap();
        assert_eq!(busy.await.unwrap().unwrap(), 1);
        // Free again: answered.
        assert_eq!(g.run(|| 3).await.unwrap(), 3);
        assert_eq!(g.shed(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_requests_are_served_in_turn_and_the_queue_is_bounded() {
        // Two threads, a long deadline, at most 4 waiting: of 20 requests
        // that each hold a thread for 30 ms, 2 run and 4 wait (and are
        // served); the other 14 are shed at once.
        let g = gate(2, 5_000, 4);
        let all = futures::future::join_all((0..20).map(|i| {
            let g = g.clone();
            async move {
                g.run(move || {
                    std::thread::sleep(Duration::from_millis(30));
                    i
                })
                .await
            }
        }))
        .await;
        let served = all.iter().filter(|r| r.is_ok()).count();
        assert_eq!(served, 6, "{all:?}");
        assert_eq!(g.shed(), 14);
        assert!(
            all.iter()
                .filter_map(|r| r.as_ref().err())
                .all(|e| e.code() == "ThrottlingException")
        );
    }
}
