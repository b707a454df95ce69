//! Bringing Raft's configuration to the node set the ledger records. Governance decides the
//! node set in a block (every node alike); the leader then moves Raft's configuration toward it
//! one single-node change at a time, each committed and applied before the next, which keeps
//! every two consecutive configurations' majorities overlapping. A new voter first joins as a
//! learner and is promoted only once it has nearly caught up, so it never holds back commits;
//! a leader that must leave hands leadership over first (raft-rs does not step a removed
//! leader down cleanly).

use crate::limits::PROMOTION_LAG_MAX;
use raft::prelude::ConfState;
use std::collections::BTreeSet;

/// The node set Raft should have: the ledger's active voters and observers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    /// Voting nodes.
    pub voters: BTreeSet<u64>,
    /// Observers (Raft learners).
    pub learners: BTreeSet<u64>,
}

impl Membership {
    /// Raft's current configuration in this form.
    pub fn of(conf_state: &ConfState) -> Self {
        Self {
            voters: conf_state.voters.iter().copied().collect(),
            learners: conf_state.learners.iter().copied().collect(),
        }
    }
}

/// The next single change toward the wanted membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipChange {
    /// Add a node as a learner (an observer, or a voter-to-be catching up).
    AddLearner(u64),
    /// Make a caught-up learner a voter.
    Promote(u64),
    /// Remove a node.
    Remove(u64),
    /// The leader itself must leave: hand leadership to this voter first.
    TransferLeadership(u64),
}

/// Plans the next change from the `current` configuration toward `wanted`, as leader `me`
/// with commit index `commit`; `matched` gives the highest log index known replicated to a
/// node. Order: learners no longer wanted leave; new voters join (as learners, promoted once
/// caught up) and new observers join; only then do voters leave, so that replacing a voter
/// never shrinks the group's fault tolerance on the way. A leaving leader hands over to the
/// most up-to-date staying voter first. `None`: nothing to do now (done, or waiting for a
/// learner to catch up before the voters that leave can go).
pub fn plan(
    wanted: &Membership,
    current: &Membership,
    me: u64,
    commit: u64,
    matched: &dyn Fn(u64) -> Option<u64>,
) -> Option<MembershipChange> {
    let stays = |id: &u64| wanted.voters.contains(id) || wanted.learners.contains(id);
    if let Some(leaving) = current.learners.iter().find(|id| !stays(id)) {
        return Some(MembershipChange::Remove(*leaving));
    }
    let mut joining = false;
    for id in wanted.voters.difference(&current.voters) {
        if !current.learners.contains(id) {
            return Some(MembershipChange::AddLearner(*id));
        }
        // Caught up, and holding something: on a young log (commit below the lag) a learner
        // that has replicated nothing yet would otherwise be promoted at once, and learn only
        // afterwards, from a snapshot naming it a voter, that it joined (the simulator found
        // this; a joining node refuses such a snapshot).
        let caught_up = |index: u64| index > 0 && index.saturating_add(PROMOTION_LAG_MAX) >= commit;
        if matched(*id).is_some_and(caught_up) {
            return Some(MembershipChange::Promote(*id));
        }
        joining = true;
    }
    if let Some(id) = wanted
        .learners
        .iter()
        .find(|id| !current.learners.contains(id) && !current.voters.contains(id))
    {
        return Some(MembershipChange::AddLearner(*id));
    }
    if joining {
        return None;
    }
    let leaving = current.voters.iter().find(|id| !stays(id))?;
    if *leaving != me {
        return Some(MembershipChange::Remove(*leaving));
    }
    current
        .voters
        .iter()
        .filter(|id| **id != me && wanted.voters.contains(id))
        // The most caught-up voter; the id's complement breaks ties toward the lowest id.
        .max_by_key(|id| (matched(**id).unwrap_or(0), u64::MAX - **id))
        .map(|id| MembershipChange::TransferLeadership(*id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[u64]) -> BTreeSet<u64> {
        ids.iter().copied().collect()
    }

    fn members(voters: &[u64], learners: &[u64]) -> Membership {
        Membership {
            voters: set(voters),
            learners: set(learners),
        }
    }

    /// Every node's log is replicated up to 100.
    fn caught_up(_: u64) -> Option<u64> {
        Some(100)
    }

    /// Carries out one planned change on `current`, as Raft would once it is applied.
    fn apply(current: &mut Membership, step: MembershipChange) {
        match step {
            MembershipChange::AddLearner(id) => {
                current.learners.insert(id);
            }
            MembershipChange::Promote(id) => {
                current.learners.remove(&id);
                current.voters.insert(id);
            }
            MembershipChange::Remove(id) => {
                current.voters.remove(&id);
                current.learners.remove(&id);
            }
            MembershipChange::TransferLeadership(_) => unreachable!("the leader stays"),
        }
    }

    #[test]
    fn the_steps_add_and_promote_before_a_voter_leaves_and_end_at_the_wanted_set() {
        // Proves that a voter joins as a learner first, that additions and promotions come
        // before a voter leaves, and that applying the steps one by one ends at the wanted
        // membership.
        let wanted = members(&[1, 2, 4], &[5]);
        let mut current = members(&[1, 2, 3], &[]);
        let mut steps = Vec::new();
        while let Some(step) = plan(&wanted, &current, 1, 100, &caught_up) {
            steps.push(step);
            apply(&mut current, step);
            assert!(steps.len() < 10);
        }
        assert_eq!(
            steps,
            vec![
                MembershipChange::AddLearner(4),
                MembershipChange::Promote(4),
                MembershipChange::AddLearner(5),
                MembershipChange::Remove(3),
            ]
        );
        assert_eq!(current, wanted);
    }

    #[test]
    fn a_learner_that_holds_nothing_is_not_promoted_on_a_short_log() {
        // Proves a learner that has replicated nothing stays a learner even when the commit
        // index is below the promotion lag.
        let joining = members(&[1, 2, 3], &[4]);
        assert_eq!(
            plan(&members(&[1, 2, 3, 4], &[]), &joining, 1, 10, &|_| Some(0)),
            None
        );
    }

    #[test]
    fn a_lagging_learner_is_not_promoted_and_the_leaving_voter_waits_for_it() {
        // Proves a learner far behind the commit index is not promoted yet, and that no voter
        // leaves while it catches up.
        let joining = members(&[1, 2, 3], &[4]);
        let lagging = |_: u64| Some(10);
        assert_eq!(
            plan(&members(&[1, 2, 4], &[]), &joining, 1, 100, &lagging),
            None
        );
    }

    #[test]
    fn a_leader_whose_voter_set_is_replaced_hands_over_to_the_new_voter() {
        // Proves the last old voter, the leader, hands leadership to the new voter rather than
        // removing itself.
        assert_eq!(
            plan(
                &members(&[4], &[]),
                &members(&[1, 4], &[]),
                1,
                100,
                &caught_up
            ),
            Some(MembershipChange::TransferLeadership(4))
        );
    }

    #[test]
    fn a_learner_no_longer_wanted_leaves_first() {
        // Proves an unwanted learner is removed before anything else is planned.
        assert_eq!(
            plan(
                &members(&[1, 2], &[]),
                &members(&[1, 2], &[7]),
                1,
                100,
                &caught_up
            ),
            Some(MembershipChange::Remove(7))
        );
    }

    #[test]
    fn a_leaving_leader_hands_over_to_the_most_caught_up_staying_voter() {
        // Proves a leader that must leave hands leadership to the staying voter with the
        // highest replicated index.
        let matched = |id: u64| Some(if id == 3 { 99 } else { 50 });
        assert_eq!(
            plan(
                &members(&[2, 3], &[]),
                &members(&[1, 2, 3], &[]),
                1,
                100,
                &matched
            ),
            Some(MembershipChange::TransferLeadership(3))
        );
    }

    #[test]
    fn nothing_is_planned_once_the_configuration_is_the_wanted_set() {
        // Proves the planner stops when the current membership is the wanted one.
        let wanted = members(&[1, 2, 4], &[5]);
        assert_eq!(plan(&wanted, &wanted, 1, 100, &caught_up), None);
    }
}
