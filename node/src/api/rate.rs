//! Per-principal rate limits: a token bucket per key (a participant for signed reads, a signer
//! key for submitted transactions). A request that finds too few tokens is refused with 429 and
//! a Retry-After saying when enough will be back.

use crate::limits::RATE_BUCKETS_MAX;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets refilled at `rate` per second up to `burst`.
pub struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// Buckets of `burst` tokens refilled at `rate` per second (both at least 1).
    pub fn new(rate: u64, burst: u64) -> Self {
        Self {
            rate: rate.max(1) as f64,
            burst: burst.max(1) as f64,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `cost` tokens from each key's bucket, all or none; on refusal, how long until
    /// the emptiest bucket holds enough. A cost above the burst is granted from a full bucket
    /// and leaves it in debt, so a large batch waits its turn instead of never fitting.
    pub fn take(&self, costs: &[(K, u64)], now: Instant) -> Result<(), Duration> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() > RATE_BUCKETS_MAX {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, bucket| {
                bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * rate < burst
            });
        }
        let mut wait = Duration::ZERO;
        for (key, cost) in costs {
            let bucket = buckets.entry(key.clone()).or_insert(Bucket {
                tokens: self.burst,
                updated: now,
            });
            let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
            bucket.updated = now;
            let needed = (*cost as f64).min(self.burst);
            if needed > bucket.tokens {
                let missing = needed - bucket.tokens;
                wait = wait.max(Duration::from_secs_f64(missing / self.rate));
            }
        }
        if wait > Duration::ZERO {
            return Err(wait);
        }
        for (key, cost) in costs {
            if let Some(bucket) = buckets.get_mut(key) {
                bucket.tokens -= *cost as f64;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        // Proves the burst is granted at once, the next request is refused with the time until
        // a token is back, tokens return at the rate, and keys do not share buckets.
        let limiter = RateLimiter::new(10, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take(&[(1u64, 1)], start).is_ok());
        }
        let wait = limiter.take(&[(1, 1)], start).unwrap_err();
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100));
        assert!(limiter.take(&[(2, 1)], start).is_ok());
        assert!(limiter
            .take(&[(1, 1)], start + Duration::from_millis(100))
            .is_ok());
        assert!(limiter
            .take(&[(1, 2), (2, 1)], start + Duration::from_millis(100))
            .is_err());
        assert!(
            limiter
                .take(&[(2, 1)], start + Duration::from_millis(100))
                .is_ok(),
            "a refused request took nothing"
        );
        // A batch over the burst fits a full bucket and leaves it in debt.
        assert!(limiter.take(&[(3, 5)], start).is_ok());
        let wait = limiter.take(&[(3, 1)], start).unwrap_err();
        assert!(wait > Duration::from_millis(290) && wait <= Duration::from_millis(300));
    }
}
