//! Caps on what one client holds at once: requests in flight per source address and per
//! signing key, and open event streams per participant. A place is held by a [`Held`] and
//! given back when it drops, however the request or stream ends.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// At most `max` places held per key.
pub struct Concurrency<K> {
    max: usize,
    held: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K: Hash + Eq + Clone> Concurrency<K> {
    /// A cap of `max` (at least 1) per key.
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            held: Arc::default(),
        }
    }

    /// Takes a place for `key`, or `None` when it holds `max` already.
    pub fn try_hold(&self, key: K) -> Option<Held<K>> {
        let mut held = lock(&self.held);
        let count = held.entry(key.clone()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Held {
            key,
            held: Arc::clone(&self.held),
        })
    }

    /// Places held for `key` now.
    pub fn held(&self, key: &K) -> usize {
        lock(&self.held).get(key).copied().unwrap_or(0)
    }
}

/// One place, given back on drop.
pub struct Held<K: Hash + Eq> {
    key: K,
    held: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K: Hash + Eq> Drop for Held<K> {
    fn drop(&mut self) {
        let mut held = lock(&self.held);
        if let Some(count) = held.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_capped_per_key_and_come_back_on_drop() {
        let caps = Concurrency::new(2);
        let first = caps.try_hold("a").unwrap();
        let _second = caps.try_hold("a").unwrap();
        assert!(caps.try_hold("a").is_none(), "the third place is refused");
        assert!(
            caps.try_hold("b").is_some(),
            "another key has its own places"
        );
        drop(first);
        assert_eq!(caps.held(&"a"), 1);
        assert!(caps.try_hold("a").is_some());
    }
}
