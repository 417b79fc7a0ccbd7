//! Dashboard passwords: argon2id at m=19456 KiB, t=2, p=1 (OWASP's minimum), in PHC form.
//!
//! [`hash`] and [`verify`] are slow on purpose and hold 19 MiB each while they run. The
//! command line calls them directly; the web server goes through [`Argon2Pool`], which
//! bounds how many run at once and how many may wait.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::domain::Password;
use crate::error::AppError;

fn hasher() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("constant argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash(password: &Password) -> Result<String, AppError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::internal(format!("could not hash a password: {e}")))
}

/// A hash of nothing anyone knows, verified against when the email is unknown, so that
/// "no such user" takes as long as "wrong password".
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hash(&Password::for_sign_in(crate::domain::random_base62(32)))
        .unwrap_or_else(|_| String::from("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$invalid"))
});

/// True when `password` matches `stored`. With no stored hash, spends the same time and says no.
pub fn verify(stored: Option<&str>, password: &Password) -> bool {
    let known = stored.is_some();
    let Ok(parsed) = PasswordHash::new(stored.unwrap_or(DUMMY_HASH.as_str())) else {
        return false;
    };
    // Verify with the parameters recorded in the hash, so stronger future settings still check old hashes.
    Argon2::default()
        .verify_password(password.expose().as_bytes(), &parsed)
        .is_ok()
        && known
}

/// Jobs that may wait for a thread, per thread. Short: a queued sign-in waits at most
/// about this many hashes' time (some 25 ms each), and beyond it the answer is a quick
/// 503 rather than a wait nobody asked for.
const QUEUE_PER_THREAD: usize = 4;

/// What a person is told when the queue is full. Nothing was checked or changed.
const BUSY: &str =
    "Keyward is busy checking other passwords right now. Please try again in a few seconds.";

type Job = Box<dyn FnOnce() + Send>;

/// The web server's argon2: a fixed set of threads, and a short queue in front of them.
///
/// Run on the blocking pool instead (up to 512 threads, each hash holding 19 MiB), 160
/// concurrent sign-ups raised the server's resident memory from 14 MB to 2.68 GB. Here at
/// most `threads` hashes run at once and `threads × QUEUE_PER_THREAD` more wait; anything
/// beyond that is refused at once with a 503 and `Retry-After`, so memory stays near
/// `threads × 19 MiB` however many ask. (`main.rs` also has glibc hand each hash's memory
/// back when it is freed: otherwise its arenas keep a copy per arena the threads wander
/// through.)
///
/// Callers run it without holding a database connection, so a queue of sign-ins never
/// starves the pool that the rest of the dashboard needs.
pub struct Argon2Pool {
    jobs: crossbeam_channel::Sender<Job>,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    completed: AtomicU64,
    refused: AtomicU64,
}

/// How much work the pool has done and refused since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Stats {
    /// Hashes and checks that ran to the end.
    pub completed: u64,
    /// Requests turned away because the queue was full.
    pub refused: u64,
}

impl Argon2Pool {
    /// One thread per CPU unless `threads` says otherwise.
    pub fn new(threads: Option<usize>) -> Self {
        let threads = threads
            .or_else(|| std::thread::available_parallelism().ok().map(Into::into))
            .unwrap_or(1)
            .max(1);
        Self::with_capacity(threads, threads * QUEUE_PER_THREAD)
    }

    /// `threads` run jobs; `queue` more may wait for one.
    fn with_capacity(threads: usize, queue: usize) -> Self {
        let (jobs, waiting) = crossbeam_channel::bounded::<Job>(queue);
        for i in 0..threads {
            let waiting = waiting.clone();
            // Like `std::thread::spawn`, panics if the system can't start a thread: at
            // start-up, where a server with no one to hash passwords must not go on.
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                // Ends when the pool, the only sender, is dropped.
                .spawn(move || {
                    yield_to_other_work();
                    for job in waiting {
                        job();
                    }
                })
                .expect("the system should start an argon2 thread");
        }
        Self {
            jobs,
            counts: Arc::default(),
        }
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: &Password) -> Result<String, AppError> {
        let password = password.clone();
        self.run(move || hash(&password)).await?
    }

    /// True when `password` matches `stored`; with no stored hash, the same work and false.
    pub async fn verify(
        &self,
        stored: Option<&str>,
        password: &Password,
    ) -> Result<bool, AppError> {
        let stored = stored.map(str::to_owned);
        let password = password.clone();
        self.run(move || verify(stored.as_deref(), &password)).await
    }

    /// Hashes and checks waiting for a thread.
    pub fn queued(&self) -> usize {
        self.jobs.len()
    }

    pub fn stats(&self) -> Argon2Stats {
        Argon2Stats {
            completed: self.counts.completed.load(Ordering::Relaxed),
            refused: self.counts.refused.load(Ordering::Relaxed),
        }
    }

    /// Queues `work`, or refuses at once with a 503 when the queue is full.
    async fn run<T, F>(&self, work: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let counts = self.counts.clone();
        let job: Job = Box::new(move || {
            // A visitor who gave up while queued (closed the tab, timed out) costs nothing more.
            if answer.is_closed() {
                return;
            }
            // A panic ends this job, not the thread: the caller sees its answer go missing.
            if let Ok(result) = catch_unwind(AssertUnwindSafe(work)) {
                counts.completed.fetch_add(1, Ordering::Relaxed);
                let _ = answer.send(result);
            }
        });
        if self.jobs.try_send(job).is_err() {
            self.counts.refused.fetch_add(1, Ordering::Relaxed);
            return Err(AppError::Unavailable {
                retry_after_secs: 1,
                message: BUSY.into(),
            });
        }
        answered
            .await
            .map_err(|_| AppError::internal("an argon2 job ended without an answer"))
    }
}

/// Lowers the calling thread's scheduling priority (nice 10). argon2 keeps a core busy
/// for every thread in the pool; at the default priority a flood of sign-ins takes the CPU
/// from the HTTP workers, and the API's guarded requests, which never hash, wait behind
/// it. At nice 10 those workers run first and argon2 gets what is left: sign-ins slow
/// down under a flood, the API does not.
fn yield_to_other_work() {
    #[cfg(target_os = "linux")]
    {
        // On Linux the nice value belongs to the thread, and raising it needs no privilege.
        // SAFETY: setpriority and gettid only read their arguments and the calling thread.
        let failed =
            unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10) != 0 };
        if failed {
            tracing::warn!(
                error = %std::io::Error::last_os_error(),
                "could not lower the argon2 thread's priority"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_at_the_required_cost_and_verify() {
        let password = Password::parse("correct horse battery staple".into()).unwrap();
        let stored = hash(&password).unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(verify(Some(&stored), &password));
        assert!(!verify(
            Some(&stored),
            &Password::for_sign_in("wrong horse battery".into())
        ));
    }

    #[test]
    fn unknown_users_never_verify() {
        let password = Password::for_sign_in("anything at all".into());
        assert!(!verify(None, &password));
    }
}

#[cfg(test)]
mod pool_tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// A job that holds its thread until the test lets it go, and says when it has started.
    fn held(
        started: tokio::sync::oneshot::Sender<()>,
        release: mpsc::Receiver<()>,
    ) -> impl FnOnce() -> u32 + Send {
        move || {
            let _ = started.send(());
            let _ = release.recv_timeout(Duration::from_secs(10));
            7
        }
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once_with_retry_after_and_the_rest_still_run() {
        let pool = Arc::new(Argon2Pool::with_capacity(1, 2));
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let (release, release_rx) = mpsc::channel();

        // One job takes the only thread...
        let running = tokio::spawn({
            let pool = pool.clone();
            let job = held(started_tx, release_rx);
            async move { pool.run(job).await }
        });
        started.await.unwrap();
        // ...two more fill the queue...
        let queued: Vec<_> = (0..2u32)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.run(move || i).await })
            })
            .collect();
        tokio::time::timeout(Duration::from_secs(10), async {
            while pool.jobs.len() < 2 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the two jobs should be queued");
        // ...and the next is turned away without waiting.
        match pool.run(|| 99).await {
            Err(AppError::Unavailable {
                retry_after_secs,
                message,
            }) => {
                assert!(retry_after_secs >= 1);
                assert!(message.contains("try again"), "{message}");
            }
            other => panic!("expected a 503, got {other:?}"),
        }
        assert_eq!(pool.stats().refused, 1);

        release.send(()).unwrap();
        assert_eq!(running.await.unwrap().unwrap(), 7);
        let mut answers = Vec::new();
        for job in queued {
            answers.push(job.await.unwrap().unwrap());
        }
        assert_eq!(answers, vec![0, 1]);
        assert_eq!(
            pool.stats(),
            Argon2Stats {
                completed: 3,
                refused: 1
            }
        );
        // With the queue drained, work is taken again.
        assert_eq!(pool.run(|| 5).await.unwrap(), 5);
    }

    #[tokio::test]
    async fn a_job_that_panics_leaves_the_thread_working() {
        let pool = Argon2Pool::with_capacity(1, 1);
        let failed = pool.run(|| -> u32 { panic!("boom") }).await;
        assert!(matches!(failed, Err(AppError::Internal(_))), "{failed:?}");
        assert_eq!(pool.run(|| 3).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn the_pool_hashes_and_verifies_like_the_plain_functions() {
        let pool = Argon2Pool::new(Some(2));
        let password = Password::parse("correct horse battery staple".into()).unwrap();
        let stored = pool.hash(&password).await.unwrap();
        assert!(verify(Some(&stored), &password));
        assert!(pool.verify(Some(&stored), &password).await.unwrap());
        let wrong = Password::for_sign_in("wrong horse battery".into());
        assert!(!pool.verify(Some(&stored), &wrong).await.unwrap());
        assert!(!pool.verify(None, &password).await.unwrap());
        assert_eq!(pool.stats().completed, 4);
    }
}
