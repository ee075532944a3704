//! Leader election per target (docs/architecture.md#replicas): one lease item per target in a DynamoDB table, after
//! the protocol of the AWS DynamoDB lock client.
//!
//! The lease item is `{target, owner, version, lease_ms, renewed_at, released}`. The holder
//! rewrites it every third of the lease with a new random `version`, conditional on the version
//! it wrote last. A replica that wants the lease reads the item and notes when *it* first saw its
//! version; only when that same version has stood for a whole lease duration on the replica's own
//! monotonic clock does it claim the lease, conditional on that version. No two clocks are ever
//! compared, so clock skew between hosts cannot hand the lease to two replicas.
//!
//! The holder counts its lease from the moment it *sent* its last successful write, and stops
//! acting once that is older than the lease minus a safety margin. Since a rival counts from a
//! moment after that write, the holder has stopped before a rival can take over, even when the
//! holder was frozen (SIGSTOP) in between. Every write the holder makes to the control table is
//! also conditional on its lease version ([`Fence`]), so a replica that lost the lease cannot
//! write a pause even if it did not notice yet.
//!
//! On shutdown the holder marks the item released, and a rival claims it at its next read.
//!
//! With several targets the replicas share them ([`crate::control::roster`]): a free lease is
//! claimed only when the roster agrees, and a replica above its share hands a lease over
//! between two of its target's cycles, closing its fence before it releases the item.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, watch};

use crate::aws::AwsError;
use crate::aws::dynamodb::{Condition, Dynamo, ItemCheck};
use crate::control::roster::Roster;
use crate::model::item::{AttrValue, Item};

pub use crate::control::lease_table::{KEY_ATTRIBUTE, heartbeat, new_version, standby_poll};

pub use crate::aws::gate::{Gate, NotLeader};

/// A lease item as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub owner: String,
    pub version: String,
    pub released: bool,
}

/// A rival's lease version, and when this replica first saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub version: String,
    pub since: Instant,
}

/// What a replica without the lease does after reading the item.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// Nobody holds it: create the item.
    Create,
    /// Take it over, conditional on this version still being there.
    Over(String),
    /// Someone holds it: wait.
    Wait,
}

/// Whether to claim the lease, given what was read: an absent or released item at once, a
/// rival's version once it has stood unchanged for a whole lease on this replica's clock.
pub fn claim(
    seen: Option<&Seen>,
    observed: &mut Option<Observed>,
    now: Instant,
    lease: Duration,
) -> Claim {
    let Some(seen) = seen else {
        *observed = None;
        return Claim::Create;
    };
    if seen.released {
        return Claim::Over(seen.version.clone());
    }
    match observed {
        Some(old) if old.version == seen.version => {
            if now.duration_since(old.since) >= lease {
                Claim::Over(seen.version.clone())
            } else {
                Claim::Wait
            }
        }
        _ => {
            *observed = Some(Observed {
                version: seen.version.clone(),
                since: now,
            });
            Claim::Wait
        }
    }
}

/// How long before the lease ends the holder stops acting.
pub fn safety_margin(lease: Duration) -> Duration {
    lease / 5
}

/// One target's lease, shared by its loop and its election task.
#[derive(Debug)]
pub struct Lease {
    dynamodb: Dynamo,
    table: String,
    target: String,
    owner: String,
    duration: Duration,
    /// The version this replica wrote last, while it holds the lease; when it sent that write
    /// is kept in `gate`, the one place that says whether the lease is still young enough.
    holding: RwLock<Option<String>>,
    gate: Arc<Gate>,
    leader: watch::Sender<bool>,
    /// The replicas sharing the lease table, when the targets are shared.
    roster: Option<Arc<Roster>>,
    /// Held by the target's loop through each cycle, by a hand-over while it gives the lease
    /// up: a lease is handed over only between two cycles.
    cycle: Mutex<()>,
}

/// Proof, while held, that this replica holds the lease: writes made under it are conditional
/// on the lease version, and renewal waits for them.
pub struct Fence<'a> {
    lease: &'a Lease,
    holding: RwLockReadGuard<'a, Option<String>>,
}

impl Fence<'_> {
    /// The check a fenced write carries: the lease item still holds our owner and version.
    pub fn check(&self) -> ItemCheck<'_> {
        let version = self
            .holding
            .as_ref()
            .map(String::as_str)
            .unwrap_or_default();
        ItemCheck {
            table: &self.lease.table,
            key_name: KEY_ATTRIBUTE,
            key: &self.lease.target,
            condition: self.lease.ours(version),
        }
    }
}

impl Lease {
    /// `dynamodb` must not be behind `gate`: the lease's own calls are what opens it.
    pub fn new(
        dynamodb: Dynamo,
        gate: Arc<Gate>,
        table: &str,
        target: &str,
        owner: &str,
        duration: Duration,
        roster: Option<Arc<Roster>>,
    ) -> Arc<Self> {
        let (leader, _) = watch::channel(false);
        Arc::new(Lease {
            dynamodb,
            table: table.to_string(),
            target: target.to_string(),
            owner: owner.to_string(),
            duration,
            holding: RwLock::new(None),
            gate,
            leader,
            roster,
            cycle: Mutex::new(()),
        })
    }

    /// The target this lease is for.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Held by the target's loop through a cycle: no hand-over happens meanwhile.
    pub async fn cycle(&self) -> MutexGuard<'_, ()> {
        self.cycle.lock().await
    }

    /// This replica's name in the lease item.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Follows whether this replica leads the target.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leader.subscribe()
    }

    /// Whether this replica may act now: it holds the lease and the lease is young enough.
    pub fn acting(&self) -> bool {
        self.gate.open()
    }

    /// A fence for a write, or `None` when this replica may not act.
    pub async fn fence(&self) -> Option<Fence<'_>> {
        let holding = self.holding.read().await;
        (holding.is_some() && self.gate.open()).then_some(Fence {
            lease: self,
            holding,
        })
    }

    fn item(&self, version: &str, released: bool) -> Item {
        [
            (KEY_ATTRIBUTE, AttrValue::S(self.target.clone())),
            ("owner", AttrValue::S(self.owner.clone())),
            ("version", AttrValue::S(version.to_string())),
            (
                "lease_ms",
                AttrValue::N(self.duration.as_millis().to_string()),
            ),
            (
                "renewed_at",
                AttrValue::S(crate::model::clock::now_rfc3339()),
            ),
            ("released", AttrValue::Bool(released)),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect()
    }

    fn version_is(version: &str) -> Condition {
        Condition {
            expression: "#version = :version".into(),
            names: vec![("#version".into(), "version".into())],
            values: vec![(":version".into(), AttrValue::S(version.to_string()))],
        }
    }

    /// The condition that the lease item is this replica's, at `version`.
    fn ours(&self, version: &str) -> Condition {
        Condition {
            expression: "#owner = :owner AND #version = :version".into(),
            names: vec![
                ("#owner".into(), "owner".into()),
                ("#version".into(), "version".into()),
            ],
            values: vec![
                (":owner".into(), AttrValue::S(self.owner.clone())),
                (":version".into(), AttrValue::S(version.to_string())),
            ],
        }
    }

    async fn read(&self) -> Result<Option<Seen>, AwsError> {
        let item = self
            .dynamodb
            .get(&self.table, KEY_ATTRIBUTE, &self.target)
            .await?;
        Ok(item.map(|item| {
            let text = |key: &str| item.get(key).and_then(AttrValue::as_s).unwrap_or("");
            Seen {
                owner: text("owner").to_string(),
                version: text("version").to_string(),
                released: matches!(item.get("released"), Some(AttrValue::Bool(true))),
            }
        }))
    }

    /// Writes a new version conditional on `condition`; on success this replica holds the lease
    /// from the moment the write was sent.
    async fn write(&self, condition: Condition) -> Result<(), AwsError> {
        let version = new_version();
        let sent = Instant::now();
        let mut holding = self.holding.write().await;
        let result = self
            .dynamodb
            .put(&self.table, &self.item(&version, false), Some(&condition))
            .await;
        match result {
            Ok(()) => {
                self.gate
                    .set(Some(sent + self.duration - safety_margin(self.duration)));
                *holding = Some(version);
                Ok(())
            }
            Err(err) => {
                if err.is_condition_failed() {
                    self.gate.set(None);
                    *holding = None;
                }
                Err(err)
            }
        }
    }

    fn set_leader(&self, leader: bool) {
        self.leader.send_if_modified(|current| {
            let changed = *current != leader;
            *current = leader;
            changed
        });
        crate::runtime::telemetry::leader(&self.target, leader);
    }

    /// One round: renew what is held, or read and perhaps claim. Returns whether this replica
    /// may act afterwards.
    pub async fn round(&self, observed: &mut Option<Observed>) -> bool {
        let held = self.holding.read().await.clone();
        let result = match held {
            Some(held) => self
                .write(self.ours(&held))
                .await
                .map_err(|err| ("renew", err)),
            None => match self.read().await {
                Err(err) => Err(("read", err)),
                Ok(seen) => {
                    let decision = claim(seen.as_ref(), observed, Instant::now(), self.duration);
                    let free = decision != Claim::Wait;
                    if let (Claim::Over(_), Some(seen), Some(roster)) =
                        (&decision, &seen, &self.roster)
                        && !seen.released
                    {
                        // Its holder let it stand a whole lease: it renews nothing any more.
                        roster.gone(&seen.owner);
                    }
                    let result = match decision {
                        Claim::Wait => {
                            if let Some(roster) = &self.roster {
                                roster.taken(&self.target);
                            }
                            Ok(())
                        }
                        // Free: claimed only if the roster agrees (a replica at its share
                        // leaves it to one below its share for a while).
                        _ if self
                            .roster
                            .as_ref()
                            .is_some_and(|roster| !roster.may_claim(&self.target)) =>
                        {
                            Ok(())
                        }
                        Claim::Create => self
                            .write(Condition {
                                expression: "attribute_not_exists(#key)".into(),
                                names: vec![("#key".into(), KEY_ATTRIBUTE.into())],
                                values: vec![],
                            })
                            .await
                            .map_err(|err| ("claim", err)),
                        Claim::Over(version) => self
                            .write(Self::version_is(&version))
                            .await
                            .map_err(|err| ("claim", err)),
                    };
                    if free && let Some(roster) = &self.roster {
                        roster.claimed(&self.target);
                    }
                    result
                }
            },
        };
        let acting = self.acting();
        match result {
            Err((step, err)) if err.is_condition_failed() => {
                *observed = None;
                if step == "renew" {
                    tracing::warn!(target_name = %self.target, "another replica took the lease: standing by");
                } else {
                    tracing::info!(target_name = %self.target, "another replica claimed the lease first: standing by");
                }
            }
            Err((step, err)) => {
                tracing::error!(target_name = %self.target, table = %self.table, step, error = %err, "the lease table cannot be read or written");
            }
            Ok(()) => {}
        }
        if acting && !*self.leader.borrow() {
            tracing::info!(target_name = %self.target, owner = %self.owner, "holding the lease: this replica acts for the target");
        }
        if !acting && *self.leader.borrow() {
            tracing::warn!(target_name = %self.target, "the lease is no longer held: this replica stops acting");
        }
        self.set_leader(acting);
        if let Some(roster) = &self.roster {
            roster.holding(&self.target, self.holding.read().await.is_some());
        }
        acting
    }

    /// Hands the lease over to another replica, if this replica holds it and the target's
    /// loop is between cycles: the fence closes first, then the item is marked released for a
    /// replica below its share to claim. Returns whether it did.
    pub async fn hand_over(&self) -> bool {
        let Ok(_between_cycles) = self.cycle.try_lock() else {
            return false;
        };
        if self.holding.read().await.is_none() {
            return false;
        }
        self.gate.set(None);
        self.release().await;
        true
    }

    /// Gives the lease up (on shutdown, after the loop has stopped acting), so a rival takes
    /// over at its next read instead of after a whole lease.
    pub async fn release(&self) {
        let mut holding = self.holding.write().await;
        self.gate.set(None);
        let Some(held) = holding.take() else {
            return;
        };
        if let Some(roster) = &self.roster {
            roster.holding(&self.target, false);
        }
        self.set_leader(false);
        let condition = Self::version_is(&held);
        match self
            .dynamodb
            .put(
                &self.table,
                &self.item(&new_version(), true),
                Some(&condition),
            )
            .await
        {
            Ok(()) => tracing::info!(target_name = %self.target, "released the lease"),
            Err(err) => {
                tracing::warn!(target_name = %self.target, error = %err, "cannot release the lease; it runs out by itself")
            }
        }
    }

    /// Runs rounds every heartbeat until `stop`, then releases the lease.
    pub async fn run(
        self: Arc<Self>,
        mut stop: watch::Receiver<bool>,
        loop_done: watch::Receiver<bool>,
    ) {
        let mut observed = None;
        let every = heartbeat(self.duration);
        if let Some(roster) = &self.roster {
            // The first claim waits for the first look at the other replicas.
            tokio::select! {
                biased;
                _ = stop.wait_for(|stopped| *stopped) => {}
                _ = roster.ready() => {}
            }
        }
        loop {
            let acting = self.round(&mut observed).await;
            let wait = if acting {
                every
            } else {
                standby_poll(self.duration)
            };
            tokio::select! {
                biased;
                _ = stop.wait_for(|stopped| *stopped) => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        // Renew until the target's loop has finished its cycle, so it never acts unfenced.
        let mut loop_done = loop_done;
        loop {
            let finished = tokio::select! {
                biased;
                _ = loop_done.wait_for(|done| *done) => true,
                _ = tokio::time::sleep(every) => false,
            };
            if finished {
                break;
            }
            self.round(&mut observed).await;
        }
        self.release().await;
    }
}

impl crate::control::lease_table::HandOver for Lease {
    fn target(&self) -> &str {
        Lease::target(self)
    }

    fn hand_over(&self) -> impl std::future::Future<Output = bool> + Send {
        Lease::hand_over(self)
    }
}

/// This replica's name: host, process and a random part (a restarted process is a new owner).
pub fn owner_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into());
    format!(
        "{host}/{}/{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(15);

    fn seen(version: &str, released: bool) -> Seen {
        Seen {
            owner: "other".into(),
            version: version.into(),
            released,
        }
    }

    #[test]
    fn an_absent_lease_is_created_and_a_released_one_taken_at_once() {
        let now = Instant::now();
        let mut observed = None;
        assert_eq!(claim(None, &mut observed, now, LEASE), Claim::Create);
        assert_eq!(
            claim(Some(&seen("v1", true)), &mut observed, now, LEASE),
            Claim::Over("v1".into())
        );
    }

    #[test]
    fn a_rival_version_is_taken_over_only_after_standing_a_whole_lease_on_our_clock() {
        let start = Instant::now();
        let mut observed = None;
        let held = seen("v1", false);
        assert_eq!(claim(Some(&held), &mut observed, start, LEASE), Claim::Wait);
        assert_eq!(
            claim(
                Some(&held),
                &mut observed,
                start + LEASE - Duration::from_millis(1),
                LEASE
            ),
            Claim::Wait
        );
        assert_eq!(
            claim(Some(&held), &mut observed, start + LEASE, LEASE),
            Claim::Over("v1".into())
        );
    }

    #[test]
    fn a_renewal_restarts_the_count() {
        let start = Instant::now();
        let mut observed = None;
        claim(Some(&seen("v1", false)), &mut observed, start, LEASE);
        // The holder renewed: a new version seen late restarts the wait from that moment.
        let later = start + LEASE + Duration::from_secs(1);
        assert_eq!(
            claim(Some(&seen("v2", false)), &mut observed, later, LEASE),
            Claim::Wait
        );
        assert_eq!(
            claim(
                Some(&seen("v2", false)),
                &mut observed,
                later + LEASE / 2,
                LEASE
            ),
            Claim::Wait
        );
        assert_eq!(
            claim(
                Some(&seen("v2", false)),
                &mut observed,
                later + LEASE,
                LEASE
            ),
            Claim::Over("v2".into())
        );
    }

    #[test]
    fn the_holder_stops_before_any_rival_can_start() {
        // The holder counts from when it sent its write; a rival from after it saw the write.
        // The holder's last moment to act is strictly before the rival's first.
        let sent = Instant::now();
        let holder_stops = sent + LEASE - safety_margin(LEASE);
        let rival_first_sees = sent + Duration::from_millis(1);
        let rival_starts = rival_first_sees + LEASE;
        assert!(holder_stops < rival_starts);
        assert!(heartbeat(LEASE) < LEASE - safety_margin(LEASE));
    }

    #[test]
    fn owner_ids_differ_between_calls() {
        assert_ne!(owner_id(), owner_id());
        assert_ne!(new_version(), new_version());
    }
}
