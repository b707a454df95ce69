//! Ledger time that no clock jump can move: what a leader stamps on the blocks it proposes.
//!
//! Every node keeps an estimate of ledger time: the time of the latest block it applied (or
//! stamped) plus its own monotonic time since, so the estimate runs on between blocks and
//! survives a change of leader. A leader stamps its estimate, corrected toward its wall clock
//! by at most [`CORRECTION_PER_MILLE`] per mille of the monotonic time that passed (with at
//! most [`CORRECTION_BURST_MS`] saved up): a wall clock that jumps an hour forward or back
//! moves ledger time by at most 5% of the time the jump lasts. A leader that has no estimate
//! yet (it applied no block since it started) starts from the head's time, stepping toward its
//! wall clock by at most `first_step_max_ms`.
//!
//! Ledger time therefore trails real time after an outage of every node and catches up at the
//! correction rate; it never runs ahead of it by more than the correction allows.

/// How fast a leader corrects ledger time toward its wall clock: per mille of the monotonic
/// time that passed (50: ledger time runs at 0.95 to 1.05 times real time).
pub const CORRECTION_PER_MILLE: u64 = 50;

/// Most correction a leader saves up while it proposes nothing (so a jump after a quiet hour
/// moves ledger time by at most this at once).
pub const CORRECTION_BURST_MS: u64 = 1_000;

/// A node's estimate of ledger time and, as leader, its correction budget.
#[derive(Debug, Clone, Default)]
pub struct LedgerClock {
    /// (monotonic ms, ledger ms) of the latest block applied or stamped.
    anchor: Option<(u64, u64)>,
    /// Monotonic ms up to which the correction budget was granted.
    budget_at_ms: Option<u64>,
    /// Correction not yet spent, in thousandths of a millisecond.
    budget_micros: u64,
}

impl LedgerClock {
    /// Ledger time now (monotonic `now_ms`), if the node has applied or stamped a block since
    /// it started.
    pub fn estimate(&self, now_ms: u64) -> Option<u64> {
        self.anchor
            .map(|(at, ledger)| ledger.saturating_add(now_ms.saturating_sub(at)))
    }

    /// A block with time `time_ms` was applied at monotonic `now_ms`: ledger time is at least
    /// that from now on.
    pub fn observe(&mut self, now_ms: u64, time_ms: u64) {
        if self
            .estimate(now_ms)
            .is_none_or(|estimate| estimate < time_ms)
        {
            self.anchor = Some((now_ms, time_ms));
        }
    }

    /// The time a leader stamps on a block it proposes at monotonic `now_ms` with wall clock
    /// `wall_ms` on a head of time `head_ms`: its estimate corrected toward the wall clock
    /// within the budget, never before `head_ms + 1`.
    pub fn stamp(
        &mut self,
        now_ms: u64,
        wall_ms: u64,
        head_ms: u64,
        first_step_max_ms: u64,
    ) -> u64 {
        let since = self.budget_at_ms.map_or(0, |at| now_ms.saturating_sub(at));
        self.budget_at_ms = Some(now_ms);
        self.budget_micros = self
            .budget_micros
            .saturating_add(since.saturating_mul(CORRECTION_PER_MILLE))
            .min(CORRECTION_BURST_MS * 1_000);
        let stamp = match self.estimate(now_ms) {
            None => wall_ms.clamp(head_ms, head_ms.saturating_add(first_step_max_ms)),
            Some(estimate) => {
                let budget_ms = self.budget_micros / 1_000;
                let step = wall_ms.abs_diff(estimate).min(budget_ms);
                self.budget_micros -= step * 1_000;
                if wall_ms >= estimate {
                    estimate + step
                } else {
                    estimate - step
                }
            }
        }
        .max(head_ms.saturating_add(1));
        self.anchor = Some((now_ms, stamp));
        stamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stamps a block every `every_ms` for `for_ms` with the wall clock off by `offset`,
    /// returning the last stamp minus real time.
    fn drift(
        clock: &mut LedgerClock,
        start_ms: u64,
        every_ms: u64,
        for_ms: u64,
        offset: i64,
    ) -> i64 {
        let mut head = 0;
        let mut now = start_ms;
        while now < start_ms + for_ms {
            now += every_ms;
            head = clock.stamp(now, now.saturating_add_signed(offset), head, 60_000);
        }
        head as i64 - now as i64
    }

    #[test]
    fn a_jump_of_the_leaders_clock_moves_ledger_time_at_five_percent() {
        // Proves an hour's jump forward moves ledger time by at most 5% of the time it lasts
        // (plus the saved-up burst), that a jump back never moves it back, and that with an
        // honest clock ledger time follows real time.
        let mut clock = LedgerClock::default();
        clock.observe(0, 0);
        assert_eq!(drift(&mut clock, 0, 10, 10_000, 0), 0);
        // 500 ms saved up over the honest 10 s, then 5% of the 20 s the jump lasts.
        let ahead = drift(&mut clock, 10_000, 10, 20_000, 3_600_000);
        assert!((1_490..=1_510).contains(&ahead), "{ahead}");
        let mut behind = LedgerClock::default();
        behind.observe(0, 0);
        let late = drift(&mut behind, 0, 10, 20_000, -3_600_000);
        assert!((-1_010..=-990).contains(&late), "{late}");
    }

    #[test]
    fn a_quiet_leader_saves_up_at_most_the_burst() {
        // Proves that after an idle hour a jumped clock moves ledger time by the burst only.
        let mut clock = LedgerClock::default();
        clock.stamp(0, 0, 0, 0);
        let stamp = clock.stamp(3_600_000, 7_200_000, 0, 0);
        assert_eq!(stamp, 3_600_001 + CORRECTION_BURST_MS);
    }

    #[test]
    fn ledger_time_runs_on_between_blocks_and_never_goes_back() {
        // Proves a follower's estimate runs on its monotonic clock after the last block, that
        // an older block does not pull it back, and that a stamp is after the head.
        let mut clock = LedgerClock::default();
        assert_eq!(clock.estimate(5), None);
        clock.observe(100, 1_000);
        assert_eq!(clock.estimate(600), Some(1_500));
        clock.observe(700, 1_100);
        assert_eq!(clock.estimate(700), Some(1_600));
        assert_eq!(clock.stamp(700, 0, 5_000, 0), 5_001);
    }

    #[test]
    fn a_leader_without_an_estimate_steps_toward_its_clock_by_the_bound() {
        // Proves the first stamp of a node that applied nothing since it started starts from
        // the head, moving toward the wall clock by at most the bound.
        let mut clock = LedgerClock::default();
        assert_eq!(clock.stamp(0, 10_000_000, 1_000, 60_000), 61_000);
        let mut clock = LedgerClock::default();
        assert_eq!(clock.stamp(0, 2_000, 1_000, 60_000), 2_000);
    }
}
