//! The tick: each mailbox's day is planned once, at the first tick of its
//! local day (recipients, volume, send times, all in one transaction with
//! their send jobs, so a restart neither loses nor repeats a plan), past
//! days are closed, and a mailbox whose ramp is done and whose mail lands
//! in the inbox leaves `warming`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use uuid::Uuid;

use super::engine::{Engine, SEND, WarmupError, enqueue};
use super::pairing::{self, History, Member};
use super::{MemberId, Provider, ramp, slots};
use crate::inboxes::sync::Refresh;
use crate::store::warmup::messages::{Exchange, NewMessage};
use crate::store::warmup::{self as repo, Enrolled};
use crate::store::{self, StoreError};

/// A message still `sending` this long after its time was interrupted.
const INTERRUPTED_AFTER: Duration = Duration::minutes(30);

/// Placement is judged over this many recent days to leave `warming`.
const READY_WINDOW_DAYS: i64 = 7;
/// …and over at least this many placed messages.
const READY_MIN_PLACED: u32 = 10;

/// The pool as the pairing sees it, and what it looks back at.
struct Pool {
    members: Vec<Member>,
    suppressed: HashMap<Uuid, HashSet<String>>,
    history: Vec<Exchange>,
}

fn member_of(e: &Enrolled) -> Member {
    Member {
        id: MemberId::Mailbox(e.state.mailbox_id),
        email: e.email.clone(),
        domain: e.domain.to_ascii_lowercase(),
        provider: Provider::Appliance,
        owner: e.user_id,
        shared: false,
        can_send: true,
        available: e.available(),
    }
}

impl Engine {
    pub async fn tick(&self) -> Result<(), WarmupError> {
        let now = self.now();
        self.recover_interrupted(now).await?;
        let enrolled = self.store.read(|c| repo::enrolled(c, None)).await?;
        let mut pool: Option<Pool> = None;
        for e in &enrolled {
            let tz = e.state.settings.tz(self.server_tz());
            let today = now.with_timezone(&tz).date_naive();
            let id = e.state.mailbox_id;
            self.store
                .write(move |tx| repo::close_days_before(tx, id, today))
                .await?;
            self.graduate(e, today).await?;
            if !e.available() {
                continue;
            }
            if self
                .store
                .read(move |c| repo::day(c, id, today))
                .await?
                .is_some()
            {
                continue;
            }
            if pool.is_none() {
                pool = Some(self.pool(&enrolled, now).await?);
            }
            if let Some(p) = pool.as_mut() {
                self.plan_day(e, today, now, p).await?;
            }
        }
        Ok(())
    }

    /// Sends a crash interrupted are looked for at the recipient, never
    /// submitted again (at most once).
    async fn recover_interrupted(&self, now: DateTime<Utc>) -> Result<(), WarmupError> {
        let before = now - INTERRUPTED_AFTER;
        let n = self
            .store
            .write(move |tx| {
                let ids = repo::messages::interrupted(tx, before, now)?;
                for id in &ids {
                    super::engine::enqueue(tx, super::engine::ENGAGE, *id, now, now)?;
                }
                Ok::<_, StoreError>(ids.len())
            })
            .await?;
        if n > 0 {
            tracing::warn!(
                messages = n,
                "warmup: sends interrupted by a stop are looked for, not sent again"
            );
            self.waker.wake();
        }
        Ok(())
    }

    async fn pool(&self, enrolled: &[Enrolled], now: DateTime<Utc>) -> Result<Pool, WarmupError> {
        let mut members: Vec<Member> = enrolled.iter().map(member_of).collect();
        let since = now - pairing::RECENT - Duration::days(1);
        let (peers, suppressed, history) = self
            .store
            .read(move |c| {
                let peers = repo::peers::list(c, None)?;
                let mut stmt = c.prepare_cached(
                    "SELECT s.user_id, s.address FROM suppressions s
                     WHERE s.address IN (
                       SELECT lower(m.username || '@' || d.domain_name)
                       FROM warmup_mailboxes w JOIN mailboxes m ON m.id = w.mailbox_id
                       JOIN domains d ON d.id = m.domain_id
                       UNION SELECT lower(email) FROM warmup_peers)",
                )?;
                let rows =
                    stmt.query_map([], |r| Ok((store::uuid_at(r, 0)?, r.get::<_, String>(1)?)))?;
                let suppressed = rows.collect::<rusqlite::Result<Vec<_>>>()?;
                Ok((
                    peers,
                    suppressed,
                    repo::messages::exchanges_since(c, since)?,
                ))
            })
            .await?;
        members.extend(peers.iter().map(|p| {
            Member {
                id: MemberId::Peer(p.id),
                email: p.email.to_ascii_lowercase(),
                domain: p
                    .email
                    .rsplit_once('@')
                    .map(|(_, d)| d.to_ascii_lowercase())
                    .unwrap_or_default(),
                provider: p.provider,
                owner: p.user_id,
                shared: p.shared,
                can_send: !p.receive_only,
                available: p.status == "active",
            }
        }));
        let mut by_owner: HashMap<Uuid, HashSet<String>> = HashMap::new();
        for (owner, address) in suppressed {
            by_owner.entry(owner).or_default().insert(address);
        }
        Ok(Pool {
            members,
            suppressed: by_owner,
            history,
        })
    }

    /// Plans `e`'s day `today`: the ramp step, the volume, the recipients
    /// and the send times, written with their send jobs in one transaction.
    async fn plan_day(
        &self,
        e: &Enrolled,
        today: NaiveDate,
        now: DateTime<Utc>,
        pool: &mut Pool,
    ) -> Result<(), WarmupError> {
        let s = &e.state;
        let tz = s.settings.tz(self.server_tz());
        let steps = ramp::ramp_days(&s.settings.ramp);
        let frozen = s.frozen_until.is_some_and(|until| until > now);
        let sends = ramp::sends_on(&s.settings, today);
        let done = s.ramp_step >= steps;
        // A frozen ramp, or a day off, repeats the step reached.
        let step = if done || frozen || !sends {
            s.ramp_step.max(1).min(steps)
        } else {
            s.ramp_step + 1
        };
        let volume = ramp::day_volume(&s.settings, s.seed, step, today, done);
        let me = member_of(e);
        let mut history = History::default();
        for x in &pool.history {
            history.exchanged(&x.from, &x.to, x.at);
            if x.day == today && x.from == me.email {
                history.planned_today(&x.from, &x.to);
            }
        }
        let none = HashSet::new();
        let suppressed = pool.suppressed.get(&e.user_id).unwrap_or(&none);
        let (chosen, times) = self.with_rng(|rng| {
            let chosen =
                pairing::choose(&me, &pool.members, suppressed, &history, now, volume, rng);
            let times = slots::plan(
                &s.settings.send_centres,
                tz,
                today,
                chosen.len() as u32,
                now,
                rng,
            );
            (chosen, times)
        });
        let recipients: Vec<Member> = chosen
            .iter()
            .take(times.len())
            .map(|&i| pool.members[i].clone())
            .collect();
        let note = plan_note(volume, chosen.len(), times.len(), frozen, sends);
        let campaign_day = (today - s.started_on).num_days().max(0) as u32 + 1;
        // A day that sends nothing (started too late, an empty pool) is no
        // step of the ramp.
        let step = if times.is_empty() { s.ramp_step } else { step };
        let (id, advance) = (s.mailbox_id, step != s.ramp_step);
        let sender_email = e.email.clone();
        let planned: Vec<(Uuid, Member, DateTime<Utc>)> = recipients
            .into_iter()
            .zip(times)
            .map(|(r, at)| (Uuid::new_v4(), r, at))
            .collect();
        for (_, r, at) in &planned {
            pool.history.push(Exchange {
                from: sender_email.clone(),
                to: r.email.clone(),
                at: *at,
                day: today,
            });
        }
        let count = planned.len() as u32;
        self.store
            .write(move |tx| {
                // Another tick (a second server on a copy) may have planned it.
                if repo::day(tx, id, today)?.is_some() {
                    return Ok::<_, StoreError>(());
                }
                repo::open_day(tx, id, today, campaign_day, step, count, now)?;
                if let Some(n) = &note {
                    repo::replan(tx, id, today, count, n)?;
                }
                if advance {
                    repo::set_step(tx, id, step, now)?;
                }
                for (mid, r, at) in &planned {
                    repo::messages::insert(
                        tx,
                        &NewMessage {
                            id: *mid,
                            day: today,
                            counts_for: Some(id),
                            sender: MemberId::Mailbox(id),
                            recipient: r.id,
                            sender_email: &sender_email,
                            recipient_email: &r.email,
                            reply_to: None,
                            scheduled_at: *at,
                        },
                        now,
                    )?;
                    enqueue(tx, SEND, *mid, *at, now)?;
                }
                Ok(())
            })
            .await?;
        self.waker.wake();
        Ok(())
    }

    /// `warming` → `active` once the ramp is done and recent mail lands in
    /// the inbox at the mailbox's threshold.
    async fn graduate(&self, e: &Enrolled, today: NaiveDate) -> Result<(), WarmupError> {
        let steps = ramp::ramp_days(&e.state.settings.ramp);
        if e.status != "warming" || e.state.ramp_step < steps || !e.state.enabled {
            return Ok(());
        }
        let id = e.state.mailbox_id;
        let since = today - Duration::days(READY_WINDOW_DAYS);
        let (inbox, placed) = self
            .store
            .read(move |c| repo::placement_since(c, id, since))
            .await?;
        if !ready(inbox, placed, e.state.settings.ready_placement_pct) {
            return Ok(());
        }
        let now = self.now();
        self.store
            .write(move |tx| {
                repo::mark_ready(tx, id, now)?;
                store::mailboxes::update(
                    tx,
                    id,
                    &store::mailboxes::Changes {
                        daily_limit: None,
                        status: Some("active"),
                        first_name: None,
                        last_name: None,
                        password: None,
                    },
                    now,
                )
            })
            .await?;
        if let Err(err) = self.sync.refresh(Refresh::Mailboxes(vec![id])).await {
            // The database has it; the datasource is repaired at the next
            // start or refresh.
            tracing::warn!(mailbox = %id, error = %err, "warmup: datasource not refreshed");
        }
        tracing::info!(mailbox = %id, inbox, placed, "warmup done: mailbox is active");
        Ok(())
    }
}

/// Whether `inbox` of `placed` messages reach `threshold_pct`, over enough
/// messages to mean something.
pub fn ready(inbox: u32, placed: u32, threshold_pct: u32) -> bool {
    placed >= READY_MIN_PLACED
        && u64::from(inbox) * 100 >= u64::from(threshold_pct) * u64::from(placed)
}

/// Why a day sends less than its ramp says, in the owner's words.
fn plan_note(
    volume: u32,
    eligible: usize,
    fits: usize,
    frozen: bool,
    sends: bool,
) -> Option<String> {
    if !sends {
        return Some("day off (weekdays only)".into());
    }
    let mut notes = Vec::new();
    if frozen {
        notes.push("ramp frozen after a spam placement".to_owned());
    }
    if eligible < volume as usize {
        notes.push(format!(
            "the pool has {eligible} eligible recipients for {volume} planned messages; add peer accounts to send more"
        ));
    }
    if fits < eligible.min(volume as usize) {
        notes.push(format!(
            "only {fits} sends fit in the rest of today's window"
        ));
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_needs_the_threshold_over_enough_mail() {
        assert!(ready(9, 10, 90));
        assert!(!ready(8, 10, 90));
        assert!(!ready(5, 5, 90), "too few placed to judge");
        assert!(ready(90, 100, 90));
        assert!(ready(0, 10, 0));
    }

    #[test]
    fn a_short_day_says_why() {
        assert_eq!(plan_note(10, 10, 10, false, true), None);
        assert!(
            plan_note(10, 3, 3, false, true)
                .unwrap()
                .contains("3 eligible")
        );
        assert!(
            plan_note(10, 10, 4, false, true)
                .unwrap()
                .contains("only 4")
        );
        assert!(
            plan_note(10, 10, 10, true, true)
                .unwrap()
                .contains("frozen")
        );
        assert!(
            plan_note(0, 0, 0, false, false)
                .unwrap()
                .contains("day off")
        );
    }
}
