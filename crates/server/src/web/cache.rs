//! A small time-to-live cache for the dashboard's slowly changing, costly answers: which
//! countries have data (a scan of every measurement) and which domains a country measures (a
//! scan of the country's). A page shows them at most [`TtlCache`]'s `ttl` stale; everything
//! else a page shows is read fresh. The clock is passed in, so the rules are tested without
//! waiting.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most entries kept; past it the cache starts over (keys are countries, so this is never
/// reached in practice; it bounds memory against hostile URLs).
const MAX_ENTRIES: usize = 1024;

/// Values by key, each reused for `ttl` after it was computed.
pub(crate) struct TtlCache<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub(crate) fn new(ttl: Duration) -> TtlCache<K, V> {
        TtlCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value of `key` computed less than `ttl` before `now`, else `compute()`'s (kept
    /// only when it succeeds). The lock is not held while computing.
    pub(crate) fn get_or_try<E>(&self, key: &K, now: Instant, compute: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, v)) = entries.get(key)
                && now.saturating_duration_since(*at) < self.ttl
            {
                return Ok(v.clone());
            }
        }
        let v = compute()?;
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key.clone(), (now, v.clone()));
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_reused_until_they_expire_and_errors_are_not_kept() {
        let cache: TtlCache<&str, u32> = TtlCache::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let mut calls = 0;
        {
            let mut get = |now, value: Result<u32, ()>| {
                cache.get_or_try(&"PK", now, || {
                    calls += 1;
                    value
                })
            };
            assert_eq!(get(t0, Ok(1)), Ok(1));
            assert_eq!(get(t0 + Duration::from_secs(59), Ok(2)), Ok(1), "fresh: reused");
            assert_eq!(
                get(t0 + Duration::from_secs(60), Err(())),
                Err(()),
                "expired: recomputed"
            );
            assert_eq!(
                get(t0 + Duration::from_secs(61), Ok(3)),
                Ok(3),
                "the error was not kept"
            );
            assert_eq!(get(t0 + Duration::from_secs(62), Ok(4)), Ok(3));
        }
        assert_eq!(calls, 3);
        let other = cache.get_or_try(&"IR", t0, || Ok::<_, ()>(9));
        assert_eq!(other, Ok(9), "keys are apart");
    }
}
