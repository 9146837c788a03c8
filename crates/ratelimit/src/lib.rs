//! Per-client rate limiting, one token bucket per client IP, for both servers that face the
//! public: the collector (`censorwatch-server`) and the control (`censorwatch-control`). A request
//! that finds its bucket empty is refused with the time until its next token (the servers answer
//! 429 with `Retry-After`). Full buckets are forgotten when the table grows large, so memory stays
//! bounded by the number of *active* clients. Pure: the caller passes the time.
//!
//! (Hand-rolled rather than the `governor` crate: it is forty lines and has no clock of its own,
//! so tests pass the time.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept before idle (full) buckets are pruned.
const PRUNE_AT: usize = 65_536;

/// `per_second` tokens are added to a client's bucket each second, up to `burst`; each request
/// takes one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second allowed per client.
    pub per_second: f64,
    /// Requests allowed at once (the bucket's size).
    pub burst: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets keyed by client IP.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    /// A limiter with `limit` per IP.
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit: RateLimit {
                per_second: limit.per_second.max(f64::MIN_POSITIVE),
                burst: limit.burst.max(1.0),
            },
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `ip` at `now`; `Err(wait)` when there is none, with the time until the
    /// next one.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let RateLimit { per_second, burst } = self.limit;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= PRUNE_AT {
            buckets
                .retain(|_, b| b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * per_second < burst);
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 2.0,
            burst: 3.0,
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(ip, t0).is_ok());
        }
        let wait = limiter.check(ip, t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        assert!(limiter.check(other, t0).is_ok(), "per IP");
        assert!(limiter.check(ip, t0 + Duration::from_millis(500)).is_ok(), "refilled");
    }
}
