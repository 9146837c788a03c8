//! A small refresh-ahead cache for the dashboard's slowly changing, costly answers: which
//! countries have data (a scan of every measurement) and which domains a country measures (a
//! scan of the country's).
//!
//! A value is reused as it is for `refresh_after`. After that, up to `max_age`, it is still
//! served at once while one refresh runs in the background (stale-while-revalidate), so once a
//! value exists no request waits for the scan again; only a value older than `max_age` (nobody
//! asked for that long) is computed while the request waits. Concurrent requests for a value
//! being computed wait for that one computation instead of starting their own (single flight),
//! so a burst after a start or an expiry costs one scan, not one per request.
//!
//! A value the cache is told not to keep (an empty list: a store just started, whose first
//! measurements should show at once, and whose scan costs nothing) is returned but not kept.
//!
//! The clock and the way a background refresh is started are passed in, so the rules are tested
//! without waiting or threads.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Most entries kept; past it the cache starts over (keys are countries, so this is never
/// reached in practice; it bounds memory against hostile URLs).
const MAX_ENTRIES: usize = 1024;

/// Longest a request waits for another request's computation of the same value before it
/// computes the value itself.
const WAIT_FOR_OTHERS: Duration = Duration::from_secs(30);

/// A background job: a refresh to run off the request's path.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

struct Slot<V> {
    /// The value and when it was computed.
    value: Option<(Instant, V)>,
    /// A computation (in the background or by a request) is running.
    computing: bool,
}

struct Shared<K, V> {
    entries: Mutex<HashMap<K, Slot<V>>>,
    /// Signalled when a computation ends.
    done: Condvar,
}

impl<K, V> Shared<K, V> {
    fn lock(&self) -> MutexGuard<'_, HashMap<K, Slot<V>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Values by key: fresh for `refresh_after`, then served while refreshed in the background up
/// to `max_age`.
pub(crate) struct TtlCache<K, V> {
    refresh_after: Duration,
    max_age: Duration,
    /// Whether a computed value is kept.
    keep: fn(&V) -> bool,
    shared: Arc<Shared<K, V>>,
}

impl<K, V> TtlCache<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// A cache that keeps the values `keep` accepts.
    pub(crate) fn new(refresh_after: Duration, max_age: Duration, keep: fn(&V) -> bool) -> TtlCache<K, V> {
        TtlCache {
            refresh_after,
            max_age: max_age.max(refresh_after),
            keep,
            shared: Arc::new(Shared {
                entries: Mutex::new(HashMap::new()),
                done: Condvar::new(),
            }),
        }
    }

    /// The value of `key` as of `now`: reused when younger than `refresh_after`; reused and
    /// refreshed by a job handed to `spawn` when younger than `max_age`; else computed by
    /// `compute()` while the caller waits (or waiting for a computation already running). An
    /// error is returned to the caller (or, from a background refresh, reported on stderr)
    /// and not kept.
    pub(crate) fn get_or_try<E, F>(&self, key: &K, now: Instant, compute: F, spawn: impl FnOnce(Job)) -> Result<V, E>
    where
        E: std::fmt::Display,
        F: FnOnce() -> Result<V, E> + Send + 'static,
    {
        let mut compute = Some(compute);
        let mut entries = self.shared.lock();
        loop {
            if entries.len() >= MAX_ENTRIES && !entries.contains_key(key) {
                entries.clear();
            }
            let slot = entries.entry(key.clone()).or_insert(Slot {
                value: None,
                computing: false,
            });
            if let Some((at, v)) = &slot.value {
                let age = now.saturating_duration_since(*at);
                if age < self.refresh_after {
                    return Ok(v.clone());
                }
                if age < self.max_age {
                    let v = v.clone();
                    if !slot.computing
                        && let Some(compute) = compute.take()
                    {
                        slot.computing = true;
                        drop(entries);
                        spawn(self.refresh_job(key.clone(), now, compute));
                    }
                    return Ok(v);
                }
            }
            if !slot.computing {
                break;
            }
            // Someone is computing it: wait for them, then look again.
            let (guard, timeout) = self
                .shared
                .done
                .wait_timeout(entries, WAIT_FOR_OTHERS)
                .unwrap_or_else(|p| p.into_inner());
            entries = guard;
            if timeout.timed_out() {
                break;
            }
        }
        if let Some(slot) = entries.get_mut(key) {
            slot.computing = true;
        }
        drop(entries);
        let compute = compute.take().expect("compute is only taken on the paths that return");
        let result = compute();
        let mut entries = self.shared.lock();
        let slot = entries.entry(key.clone()).or_insert(Slot {
            value: None,
            computing: false,
        });
        slot.computing = false;
        if let Ok(v) = &result
            && (self.keep)(v)
        {
            slot.value = Some((now, v.clone()));
        }
        drop(entries);
        self.shared.done.notify_all();
        result
    }

    fn refresh_job<E, F>(&self, key: K, now: Instant, compute: F) -> Job
    where
        E: std::fmt::Display,
        F: FnOnce() -> Result<V, E> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        let keep = self.keep;
        Box::new(move || {
            let result = compute();
            let mut entries = shared.lock();
            if let Some(slot) = entries.get_mut(&key) {
                slot.computing = false;
                match result {
                    // Not kept: the next request computes it (cheaply, as the cache refuses only
                    // what costs little).
                    Ok(v) if !keep(&v) => slot.value = None,
                    Ok(v) => slot.value = Some((now, v)),
                    Err(e) => eprintln!(
                        "censorwatch: refreshing a dashboard list failed ({e}); the previous one is shown until the next try"
                    ),
                }
            }
            drop(entries);
            shared.done.notify_all();
        })
    }
}

/// Runs `job` on the tokio runtime's blocking threads (store calls block), or on a thread of
/// its own outside a runtime.
pub(crate) fn in_background(job: Job) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn_blocking(job)),
        Err(_) => drop(std::thread::spawn(job)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    const MINUTE: Duration = Duration::from_secs(60);

    /// A compute that counts its calls and returns `value`.
    fn counting(
        calls: &Arc<AtomicU32>,
        value: Result<u32, String>,
    ) -> impl FnOnce() -> Result<u32, String> + Send + use<> {
        let calls = Arc::clone(calls);
        move || {
            calls.fetch_add(1, Ordering::SeqCst);
            value
        }
    }

    #[test]
    fn fresh_values_are_reused_stale_ones_served_while_refreshed_in_the_background() {
        let cache: TtlCache<&str, u32> = TtlCache::new(MINUTE, 10 * MINUTE, |v| *v != 0);
        let t0 = Instant::now();
        let calls = Arc::new(AtomicU32::new(0));
        let jobs: Mutex<Vec<Job>> = Mutex::new(Vec::new());
        let keep = |job: Job| jobs.lock().unwrap().push(job);
        let no_spawn = |_: Job| panic!("nothing to refresh");

        assert_eq!(
            cache.get_or_try(&"PK", t0, counting(&calls, Ok(1)), no_spawn),
            Ok(1),
            "cold: computed"
        );
        assert_eq!(
            cache.get_or_try(&"PK", t0 + Duration::from_secs(59), counting(&calls, Ok(2)), no_spawn),
            Ok(1),
            "fresh: reused"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Past refresh_after: the old value at once, one refresh queued, not run on this path.
        let t1 = t0 + Duration::from_secs(61);
        assert_eq!(cache.get_or_try(&"PK", t1, counting(&calls, Ok(2)), keep), Ok(1));
        assert_eq!(
            cache.get_or_try(&"PK", t1, counting(&calls, Ok(3)), keep),
            Ok(1),
            "one refresh at a time"
        );
        assert_eq!((jobs.lock().unwrap().len(), calls.load(Ordering::SeqCst)), (1, 1));
        jobs.lock().unwrap().pop().unwrap()();
        assert_eq!(
            cache.get_or_try(&"PK", t1 + Duration::from_secs(1), counting(&calls, Ok(9)), no_spawn),
            Ok(2),
            "the refreshed value, fresh from when the refresh began"
        );
        // A refresh that fails keeps the old value and lets a later request try again.
        let t2 = t1 + Duration::from_secs(70);
        assert_eq!(
            cache.get_or_try(&"PK", t2, counting(&calls, Err("db".into())), keep),
            Ok(2)
        );
        jobs.lock().unwrap().pop().unwrap()();
        assert_eq!(cache.get_or_try(&"PK", t2, counting(&calls, Ok(4)), keep), Ok(2));
        jobs.lock().unwrap().pop().unwrap()();
        assert_eq!(cache.get_or_try(&"PK", t2, counting(&calls, Ok(5)), no_spawn), Ok(4));
        // Older than max_age: computed while the caller waits; an error is the caller's.
        let t3 = t2 + 11 * MINUTE;
        assert_eq!(
            cache.get_or_try(&"PK", t3, counting(&calls, Err("db".into())), no_spawn),
            Err("db".into())
        );
        assert_eq!(
            cache.get_or_try(&"PK", t3, counting(&calls, Ok(7)), no_spawn),
            Ok(7),
            "the error was not kept"
        );
        assert_eq!(
            cache.get_or_try(&"IR", t3, counting(&calls, Ok(8)), no_spawn),
            Ok(8),
            "keys are apart"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 7);
        // A value it is told not to keep (0 here) is returned, then computed again.
        assert_eq!(cache.get_or_try(&"RU", t3, counting(&calls, Ok(0)), no_spawn), Ok(0));
        assert_eq!(cache.get_or_try(&"RU", t3, counting(&calls, Ok(5)), no_spawn), Ok(5));
        // A refresh that finds nothing to keep drops the old value.
        let t4 = t3 + 2 * MINUTE;
        assert_eq!(cache.get_or_try(&"RU", t4, counting(&calls, Ok(0)), keep), Ok(5));
        jobs.lock().unwrap().pop().unwrap()();
        assert_eq!(cache.get_or_try(&"RU", t4, counting(&calls, Ok(6)), no_spawn), Ok(6));
        assert_eq!(calls.load(Ordering::SeqCst), 11);
    }

    #[test]
    fn concurrent_requests_for_a_missing_value_share_one_computation() {
        let cache: Arc<TtlCache<&str, u32>> = Arc::new(TtlCache::new(MINUTE, 10 * MINUTE, |_| true));
        let calls = Arc::new(AtomicU32::new(0));
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let t0 = Instant::now();
        let first = {
            let (cache, calls) = (Arc::clone(&cache), Arc::clone(&calls));
            std::thread::spawn(move || {
                cache.get_or_try(
                    &"PK",
                    t0,
                    move || {
                        calls.fetch_add(1, Ordering::SeqCst);
                        started_tx.send(()).unwrap();
                        release_rx.recv().unwrap();
                        Ok::<_, String>(1)
                    },
                    |_| {},
                )
            })
        };
        started_rx.recv().unwrap();
        let second = {
            let (cache, calls) = (Arc::clone(&cache), Arc::clone(&calls));
            std::thread::spawn(move || cache.get_or_try(&"PK", t0, counting(&calls, Ok(2)), |_| {}))
        };
        // Give the second request time to find the computation running, then finish it.
        std::thread::sleep(Duration::from_millis(100));
        release_tx.send(()).unwrap();
        assert_eq!(first.join().unwrap(), Ok(1));
        assert_eq!(second.join().unwrap(), Ok(1), "it waited for the first one's value");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
