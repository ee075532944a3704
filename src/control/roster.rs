//! The replicas sharing a lease table, and who holds what there (docs/leader-election.md#sharing).
//!
//! Each replica writes a small item of its own into the lease table, `replica#<owner>`, with a
//! new random `version` every heartbeat, so that a replica holding no lease yet is counted too,
//! and reads the whole table every standby poll. Liveness is judged as the lease is: by when
//! *this* replica first saw an item's version, on its own monotonic clock, never by another
//! host's clock. A replica is live while one of its items changed within the last lease, and
//! none of its lease items stood unchanged for a whole lease (a live replica renews every lease
//! it holds every third of a lease). A lease of this replica that finds its holder's item run
//! out says so at once ([`Roster::gone`]), before the table's next read.
//!
//! From that view the roster tells each of this replica's leases whether to claim a free lease
//! now ([`crate::reconcile::share::take`]), and hands one lease over at a time while this replica
//! holds more than its share ([`crate::reconcile::share::hand_over`]). Safety stays with the
//! lease: every claim is a conditional write, every hand-over closes the fence first.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::aws::AwsError;
use crate::aws::dynamodb::{Condition, Dynamo};
use crate::control::lease_table::{HandOver, KEY_ATTRIBUTE, heartbeat, new_version, standby_poll};
use crate::model::item::{AttrValue, Item};
use crate::reconcile::share::{self, Standing, Take};

/// The key prefix of the replica items; no target may be named so.
pub use crate::runtime::config::REPLICA_ITEM_PREFIX as REPLICA_PREFIX;

/// A replica item not seen to change for this many leases is deleted (conditional on the
/// version seen), so the items of replicas killed long ago do not pile up.
const FORGET_AFTER_LEASES: u32 = 10;

/// How long a replica at or above its share leaves a free lease to a live replica below its
/// share before it claims it itself: two standby polls, so that the other has had a read of it.
pub fn head_start(lease: Duration) -> Duration {
    standby_poll(lease) * 2
}

/// One item of the lease table as the roster reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct RosterItem {
    pub key: String,
    pub owner: String,
    pub version: String,
    pub released: bool,
}

impl RosterItem {
    fn from_item(item: &Item) -> Option<RosterItem> {
        let text = |key: &str| item.get(key).and_then(AttrValue::as_s).map(str::to_string);
        Some(RosterItem {
            key: text(KEY_ATTRIBUTE)?,
            owner: text("owner").unwrap_or_default(),
            version: text("version").unwrap_or_default(),
            released: matches!(item.get("released"), Some(AttrValue::Bool(true))),
        })
    }

    fn is_replica(&self) -> bool {
        self.key.starts_with(REPLICA_PREFIX)
    }
}

/// What one read of the table showed, judged against what earlier reads showed.
#[derive(Debug, Default)]
pub struct View {
    /// Each item's version and when this replica first saw it.
    seen: HashMap<String, (String, Instant)>,
    /// Leases held (not released), target to owner.
    holders: BTreeMap<String, String>,
    /// Live replicas, this one excluded.
    live: BTreeSet<String>,
    /// Replica items that stood unchanged long enough to forget: key and version.
    forgotten: Vec<(String, String)>,
    /// Owners of the items whose version this read saw first.
    changed: BTreeSet<String>,
    /// Owners of any item in the table.
    present: BTreeSet<String>,
}

impl View {
    /// Takes in one read of the table at `now`. `me`: this replica's owner name; `targets`:
    /// the targets shared (leases of others in the table are not counted).
    pub fn update(
        &mut self,
        entries: &[RosterItem],
        me: &str,
        targets: &BTreeSet<String>,
        now: Instant,
        lease: Duration,
    ) {
        let mut seen = HashMap::new();
        for entry in entries {
            let since = match self.seen.get(&entry.key) {
                Some((version, since)) if *version == entry.version => *since,
                _ => now,
            };
            seen.insert(entry.key.clone(), (entry.version.clone(), since));
        }
        self.seen = seen;
        self.changed = entries
            .iter()
            .filter(|entry| self.seen[&entry.key].1 == now)
            .map(|entry| entry.owner.clone())
            .collect();
        self.present = entries.iter().map(|entry| entry.owner.clone()).collect();
        let fresh = |entry: &RosterItem| now.duration_since(self.seen[&entry.key].1) < lease;
        let mut live = BTreeSet::new();
        let mut stale = BTreeSet::new();
        for entry in entries.iter().filter(|entry| !entry.released) {
            if fresh(entry) {
                live.insert(entry.owner.clone());
            } else if !entry.is_replica() {
                // A lease it no longer renews: it is gone, whatever else of it is fresh.
                stale.insert(entry.owner.clone());
            }
        }
        live.retain(|owner| !stale.contains(owner) && owner != me && !owner.is_empty());
        self.live = live;
        self.holders = entries
            .iter()
            .filter(|entry| !entry.released && targets.contains(&entry.key))
            .map(|entry| (entry.key.clone(), entry.owner.clone()))
            .collect();
        self.forgotten = entries
            .iter()
            .filter(|entry| entry.is_replica() && entry.owner != me)
            .filter(|entry| {
                now.duration_since(self.seen[&entry.key].1) >= lease * FORGET_AFTER_LEASES
            })
            .map(|entry| (entry.key.clone(), entry.version.clone()))
            .collect();
    }

    /// Leases each other live replica holds.
    pub fn others(&self) -> Vec<usize> {
        self.others_but(&BTreeSet::new())
    }

    /// Leases each other live replica holds, but those in `gone`.
    pub fn others_but(&self, gone: &BTreeSet<String>) -> Vec<usize> {
        self.live
            .iter()
            .filter(|owner| !gone.contains(*owner))
            .map(|owner| {
                self.holders
                    .values()
                    .filter(|holder| *holder == owner)
                    .count()
            })
            .collect()
    }

    /// Who holds `target`'s lease, if anyone.
    pub fn holder(&self, target: &str) -> Option<&str> {
        self.holders.get(target).map(String::as_str)
    }

    /// Live replicas seen, this one included.
    pub fn live(&self) -> usize {
        self.live.len() + 1
    }
}

#[derive(Debug, Default)]
struct State {
    view: View,
    /// When the table was last read successfully.
    read_at: Option<Instant>,
    /// Targets whose lease this replica holds.
    held: BTreeSet<String>,
    /// Targets this replica is claiming right now.
    claiming: BTreeSet<String>,
    /// When this replica first found each free lease it left to others.
    free_since: HashMap<String, Instant>,
    /// The lease handed over last, and when, until another replica holds it.
    handing: Option<(String, Instant)>,
    /// Replicas a lease of which stood unchanged for a whole lease, as this replica's leases
    /// found before the table's next read: not counted as live until an item of theirs changes.
    gone: BTreeSet<String>,
}

/// The replicas of one lease table, as this replica sees them; shared by the leases of the
/// targets whose leases live there.
#[derive(Debug)]
pub struct Roster {
    dynamodb: Dynamo,
    table: String,
    owner: String,
    duration: Duration,
    /// The targets whose leases live in the table.
    targets: BTreeSet<String>,
    state: Mutex<State>,
    ready: watch::Sender<bool>,
}

impl Roster {
    /// `dynamodb` must not be behind any target's gate. `targets`: the targets that keep their
    /// lease in `table`.
    pub fn new(
        dynamodb: Dynamo,
        table: &str,
        owner: &str,
        duration: Duration,
        targets: BTreeSet<String>,
    ) -> Arc<Self> {
        let (ready, _) = watch::channel(false);
        Arc::new(Roster {
            dynamodb,
            table: table.to_string(),
            owner: owner.to_string(),
            duration,
            targets,
            state: Mutex::new(State::default()),
            ready,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn standing(&self, state: &State) -> Standing {
        Standing {
            targets: self.targets.len(),
            mine: state.held.len() + state.claiming.len(),
            others: state.view.others_but(&state.gone),
        }
    }

    /// Whether the view is recent enough to go by: read within the last lease.
    fn fresh(&self, state: &State) -> bool {
        state.read_at.is_some_and(|at| at.elapsed() < self.duration)
    }

    /// `owner` let a lease stand unchanged for a whole lease: it is gone.
    pub fn gone(&self, owner: &str) {
        if owner != self.owner {
            self.state().gone.insert(owner.to_string());
        }
    }

    /// Waits until the roster has had its first look at the table (or failed to).
    pub async fn ready(&self) {
        let mut ready = self.ready.subscribe();
        let _ = ready.wait_for(|ready| *ready).await;
    }

    /// Whether to claim `target`'s free lease now. On `true` the claim counts as this
    /// replica's until [`Roster::claimed`].
    pub fn may_claim(&self, target: &str) -> bool {
        let now = Instant::now();
        let mut state = self.state();
        if !self.fresh(&state) {
            // No recent view of the others (the table cannot be read): the lease decides alone.
            state.claiming.insert(target.to_string());
            return true;
        }
        let standing = self.standing(&state);
        let since = *state.free_since.entry(target.to_string()).or_insert(now);
        match share::take(
            &standing,
            now.duration_since(since),
            head_start(self.duration),
        ) {
            Take::Now => {
                state.claiming.insert(target.to_string());
                true
            }
            Take::Wait => {
                tracing::debug!(
                    target_name = target,
                    held = standing.mine,
                    share = standing.share(),
                    "leaving a free lease to a replica below its share"
                );
                false
            }
        }
    }

    /// A claim ended.
    pub fn claimed(&self, target: &str) {
        self.state().claiming.remove(target);
    }

    /// Whether this replica holds `target`'s lease, after each round.
    pub fn holding(&self, target: &str, held: bool) {
        let mut state = self.state();
        if held {
            state.free_since.remove(target);
            state.held.insert(target.to_string())
        } else {
            state.held.remove(target)
        };
    }

    /// `target`'s lease is held by another replica: no longer free.
    pub fn taken(&self, target: &str) {
        self.state().free_since.remove(target);
    }

    fn key(&self) -> String {
        format!("{REPLICA_PREFIX}{}", self.owner)
    }

    async fn beat(&self) -> Result<(), AwsError> {
        let item: Item = [
            (KEY_ATTRIBUTE, AttrValue::S(self.key())),
            ("owner", AttrValue::S(self.owner.clone())),
            ("version", AttrValue::S(new_version())),
            (
                "lease_ms",
                AttrValue::N(self.duration.as_millis().to_string()),
            ),
            (
                "renewed_at",
                AttrValue::S(crate::model::clock::now_rfc3339()),
            ),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect();
        self.dynamodb.put(&self.table, &item, None).await
    }

    async fn look(&self) -> Result<(), AwsError> {
        let entries: Vec<RosterItem> = self
            .dynamodb
            .scan_table("lease table", &self.table, |item| {
                RosterItem::from_item(&item)
            })
            .await?
            .into_iter()
            .flatten()
            .collect();
        let now = Instant::now();
        let forgotten = {
            let mut state = self.state();
            let live_before = state.view.live();
            state
                .view
                .update(&entries, &self.owner, &self.targets, now, self.duration);
            state.read_at = Some(now);
            let State { view, gone, .. } = &mut *state;
            gone.retain(|owner| view.present.contains(owner) && !view.changed.contains(owner));
            let live = state.view.live();
            if live != live_before {
                tracing::info!(table = %self.table, live, share = share::share(self.targets.len(), live), "live replicas changed");
            }
            let view = &state.view;
            // A hand-over ends once another live replica holds the lease, or after a lease.
            if let Some((target, at)) = &state.handing
                && (view
                    .holder(target)
                    .is_some_and(|holder| holder != self.owner)
                    || now.duration_since(*at) >= self.duration)
            {
                state.handing = None;
            }
            std::mem::take(&mut state.view.forgotten)
        };
        for (key, version) in forgotten {
            let condition = Condition {
                expression: "#version = :version".into(),
                names: vec![("#version".into(), "version".into())],
                values: vec![(":version".into(), AttrValue::S(version))],
            };
            match self
                .dynamodb
                .delete(&self.table, KEY_ATTRIBUTE, &key, &condition)
                .await
            {
                Ok(()) => {
                    tracing::info!(table = %self.table, item = %key, "deleted the item of a replica gone long ago")
                }
                Err(err) if err.is_condition_failed() => {}
                Err(err) => {
                    tracing::warn!(table = %self.table, item = %key, error = %err, "cannot delete the item of a replica gone long ago")
                }
            }
        }
        Ok(())
    }

    /// Whether to hand a lease over now; on `true` a hand-over counts as under way.
    fn should_hand_over(&self) -> bool {
        let state = self.state();
        if !self.fresh(&state) {
            return false;
        }
        let busy = state.handing.is_some() || !state.claiming.is_empty();
        share::hand_over(&self.standing(&state), busy)
    }

    /// Hands over one lease whose target is between cycles, if any.
    async fn hand_over<L: HandOver>(&self, leases: &[Arc<L>]) {
        let held: BTreeSet<String> = self.state().held.clone();
        // From the last target of the config backwards, skipping any in the middle of a cycle.
        for lease in leases
            .iter()
            .rev()
            .filter(|lease| held.contains(lease.target()))
        {
            if lease.hand_over().await {
                let standing = self.standing(&self.state());
                tracing::info!(target_name = %lease.target(), now_held = standing.mine, share = standing.share(), live = standing.live(), "handed the lease over: this replica held more than its share");
                let mut state = self.state();
                state.handing = Some((lease.target().to_string(), Instant::now()));
                state
                    .free_since
                    .insert(lease.target().to_string(), Instant::now());
                return;
            }
        }
    }

    /// Writes this replica's item every heartbeat and reads the table every standby poll,
    /// handing a lease over when above the share, until `stop`; then deletes its item.
    pub async fn run<L: HandOver>(
        self: Arc<Self>,
        leases: Vec<Arc<L>>,
        mut stop: watch::Receiver<bool>,
    ) {
        let poll = standby_poll(self.duration);
        let beat_every = heartbeat(self.duration);
        let mut last_beat: Option<Instant> = None;
        let mut first = true;
        loop {
            if last_beat.is_none_or(|at| at.elapsed() + poll / 2 >= beat_every) {
                match self.beat().await {
                    Ok(()) => last_beat = Some(Instant::now()),
                    Err(err) => {
                        tracing::error!(table = %self.table, error = %err, "cannot write this replica's item in the lease table")
                    }
                }
            }
            if first {
                // Replicas started together see each other before any of them claims.
                first = false;
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|stopped| *stopped) => break,
                    _ = tokio::time::sleep(poll) => {}
                }
            }
            if let Err(err) = self.look().await {
                tracing::error!(table = %self.table, error = %err, "cannot read the lease table: each lease is claimed without regard to the others");
            }
            self.ready.send_replace(true);
            if self.should_hand_over() {
                self.hand_over(&leases).await;
            }
            tokio::select! {
                biased;
                _ = stop.wait_for(|stopped| *stopped) => break,
                _ = tokio::time::sleep(poll) => {}
            }
        }
        self.ready.send_replace(true);
        let condition = Condition {
            expression: "#owner = :owner".into(),
            names: vec![("#owner".into(), "owner".into())],
            values: vec![(":owner".into(), AttrValue::S(self.owner.clone()))],
        };
        match self
            .dynamodb
            .delete(&self.table, KEY_ATTRIBUTE, &self.key(), &condition)
            .await
        {
            Ok(()) => tracing::info!(table = %self.table, "deleted this replica's item"),
            Err(err) if err.is_condition_failed() => {}
            Err(err) => {
                tracing::warn!(table = %self.table, error = %err, "cannot delete this replica's item; the others stop counting it after a lease")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(6);

    fn lease(target: &str, owner: &str, version: &str) -> RosterItem {
        RosterItem {
            key: target.into(),
            owner: owner.into(),
            version: version.into(),
            released: false,
        }
    }

    fn targets() -> BTreeSet<String> {
        ["t1", "t2", "t3", "t4"].map(String::from).into()
    }

    fn replica(owner: &str, version: &str) -> RosterItem {
        RosterItem {
            key: format!("{REPLICA_PREFIX}{owner}"),
            owner: owner.into(),
            version: version.into(),
            released: false,
        }
    }

    #[test]
    fn a_replica_without_a_lease_is_counted_and_its_leases_by_holder() {
        let mut view = View::default();
        let now = Instant::now();
        view.update(
            &[
                replica("me", "1"),
                replica("b", "1"),
                replica("c", "1"),
                lease("t1", "b", "1"),
                lease("t2", "b", "1"),
                lease("t3", "me", "1"),
                RosterItem {
                    released: true,
                    ..lease("t4", "c", "1")
                },
            ],
            "me",
            &targets(),
            now,
            LEASE,
        );
        assert_eq!(view.live(), 3);
        assert_eq!(view.others(), vec![2, 0]);
        assert_eq!(view.holder("t1"), Some("b"));
        assert_eq!(view.holder("t4"), None);
    }

    #[test]
    fn only_the_leases_of_the_targets_shared_are_counted() {
        let mut view = View::default();
        view.update(
            &[
                replica("b", "1"),
                lease("t1", "b", "1"),
                lease("elsewhere", "b", "1"),
            ],
            "me",
            &targets(),
            Instant::now(),
            LEASE,
        );
        assert_eq!(view.others(), vec![1]);
        assert_eq!(view.holder("elsewhere"), None);
    }

    #[test]
    fn a_replica_whose_items_stand_still_for_a_lease_is_gone() {
        let mut view = View::default();
        let start = Instant::now();
        let entries = [replica("b", "1"), lease("t1", "b", "1")];
        view.update(&entries, "me", &targets(), start, LEASE);
        assert_eq!(view.live(), 2);
        view.update(
            &entries,
            "me",
            &targets(),
            start + LEASE - Duration::from_millis(1),
            LEASE,
        );
        assert_eq!(view.live(), 2);
        view.update(&entries, "me", &targets(), start + LEASE, LEASE);
        assert_eq!(view.live(), 1);
        assert!(view.others().is_empty());
        // Its lease is still its own until taken.
        assert_eq!(view.holder("t1"), Some("b"));
    }

    #[test]
    fn a_renewing_replica_stays_live_and_one_with_a_stale_lease_does_not() {
        let mut view = View::default();
        let start = Instant::now();
        view.update(
            &[
                replica("b", "1"),
                lease("t1", "b", "1"),
                lease("t2", "b", "1"),
            ],
            "me",
            &targets(),
            start,
            LEASE,
        );
        // Its item and one lease are renewed, the other lease not: it is no longer renewing.
        view.update(
            &[
                replica("b", "2"),
                lease("t1", "b", "2"),
                lease("t2", "b", "1"),
            ],
            "me",
            &targets(),
            start + LEASE,
            LEASE,
        );
        assert_eq!(view.live(), 1);
        // Everything renewed: live.
        view.update(
            &[
                replica("b", "3"),
                lease("t1", "b", "3"),
                lease("t2", "b", "3"),
            ],
            "me",
            &targets(),
            start + LEASE * 2,
            LEASE,
        );
        assert_eq!(view.live(), 2);
        assert_eq!(view.others(), vec![2]);
    }

    #[test]
    fn a_replica_found_gone_by_a_lease_stays_gone_until_an_item_of_it_changes() {
        let mut view = View::default();
        let start = Instant::now();
        let gone: BTreeSet<String> = ["b".to_string()].into();
        view.update(
            &[replica("b", "1"), lease("t1", "b", "1"), replica("c", "1")],
            "me",
            &targets(),
            start,
            LEASE,
        );
        assert_eq!(view.others(), vec![1, 0]);
        assert_eq!(view.others_but(&gone), vec![0]);
        // Nothing of it changed since: still gone. Its replica item changed: back.
        view.update(
            &[replica("b", "1"), lease("t1", "b", "1"), replica("c", "2")],
            "me",
            &targets(),
            start + LEASE / 2,
            LEASE,
        );
        assert!(!view.changed.contains("b"));
        view.update(
            &[replica("b", "2"), lease("t1", "b", "1"), replica("c", "2")],
            "me",
            &targets(),
            start + LEASE / 2 + LEASE / 6,
            LEASE,
        );
        assert!(view.changed.contains("b"));
    }

    #[test]
    fn replica_items_gone_long_ago_are_forgotten_but_never_our_own() {
        let mut view = View::default();
        let start = Instant::now();
        let entries = [replica("b", "1"), replica("me", "1")];
        view.update(&entries, "me", &targets(), start, LEASE);
        assert!(view.forgotten.is_empty());
        view.update(
            &entries,
            "me",
            &targets(),
            start + LEASE * FORGET_AFTER_LEASES,
            LEASE,
        );
        assert_eq!(
            view.forgotten,
            vec![(format!("{REPLICA_PREFIX}b"), "1".to_string())]
        );
    }
}
