//! Where argon2 runs: one thread per core, at a lowered scheduling priority.
//!
//! A hash is ~20 ms of one core's time and 19 MiB of memory, so the login rate is bounded
//! by the cores: one hash per core at a time reaches it (more at once only thrash the
//! caches). Hashing threads at normal priority would then take the cores from every other
//! request, which is why this pool used to stop one core short (half the login rate on two
//! cores). Its threads run at nice [`HASHING_NICENESS`] instead: when requests are waiting
//! the scheduler gives them the cores first (a nice-10 thread weighs about a tenth of a
//! normal one), and when none are, logins have every core.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use anyhow::anyhow;
use tokio::sync::oneshot;

/// How much lower than the process's other threads the hashing threads run (Linux nice).
pub const HASHING_NICENESS: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of low-priority threads that run password hashes in order of arrival.
pub struct HashingPool {
    jobs: mpsc::Sender<Job>,
}

impl HashingPool {
    /// Starts `threads` hashing threads (at least one); they stop when the pool is dropped.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    lower_this_threads_priority();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let next = queue
                            .lock()
                            .map_err(|_| ())
                            .and_then(|q| q.recv().map_err(|_| ()));
                        let Ok(job) = next else { return };
                        // A panicking hash fails its own login, not the thread.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    }
                })?;
        }
        Ok(Self { jobs })
    }

    /// Runs `work` on a hashing thread and waits for its answer without blocking the caller's
    /// async worker.
    pub async fn run<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = answer.send(work());
            }))
            .map_err(|_| anyhow!("the password hashing threads have stopped"))?;
        answered
            .await
            .map_err(|_| anyhow!("password hashing failed unexpectedly"))
    }
}

/// Lowers the calling thread's priority (Linux: `setpriority` on the thread id changes that
/// thread only). Elsewhere, or if refused, the thread keeps the normal priority.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread's own id; no memory is passed.
        let refused = unsafe {
            let tid = libc::gettid() as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, HASHING_NICENESS) != 0
        };
        if refused {
            tracing::warn!("password hashing runs at normal priority: setpriority was refused");
        }
    }
}

/// The calling thread's niceness (Linux), for tests.
#[cfg(all(test, target_os = "linux"))]
fn this_threads_niceness() -> i32 {
    // SAFETY: as above.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_a_lowered_thread_and_answers() {
        let pool = HashingPool::new(2).unwrap();
        let (name, niceness) = pool
            .run(|| {
                let name = std::thread::current().name().map(str::to_string);
                #[cfg(target_os = "linux")]
                let niceness = this_threads_niceness();
                #[cfg(not(target_os = "linux"))]
                let niceness = HASHING_NICENESS;
                (name, niceness)
            })
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("argon2-"));
        assert_eq!(niceness, HASHING_NICENESS);
    }

    #[tokio::test]
    async fn at_most_one_job_per_thread_runs_at_once() {
        let pool = Arc::new(HashingPool::new(2).unwrap());
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let jobs = (0..12).map(|_| {
            let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
            async move {
                pool.run(move || {
                    use std::sync::atomic::Ordering::SeqCst;
                    let now = running.fetch_add(1, SeqCst) + 1;
                    most.fetch_max(now, SeqCst);
                    // Long enough for the other jobs to be queued meanwhile.
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    running.fetch_sub(1, SeqCst);
                })
                .await
                .unwrap()
            }
        });
        let done = tokio::task::JoinSet::from_iter(jobs).join_all().await;
        assert_eq!(done.len(), 12);
        let most = most.load(std::sync::atomic::Ordering::SeqCst);
        assert!((1..=2).contains(&most), "{most} at once on two threads");
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone() {
        let pool = HashingPool::new(1).unwrap();
        assert!(pool.run(|| panic!("boom")).await.is_err());
        assert_eq!(pool.run(|| 7).await.unwrap(), 7, "the thread survived");
    }
}
