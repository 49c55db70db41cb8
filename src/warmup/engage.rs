//! The receiving side of one message, over IMAP: find it by its
//! Message-ID in every folder and record where it landed before touching
//! it; then rescue it from Junk, mark it read, flag some, answer some in
//! thread and file it in the Warmup folder; and expunge filed warmup mail
//! past its retention. Nothing else in the mailbox is read or changed.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use uuid::Uuid;

use super::engine::{Engine, FOLDER, SEND, enqueue, fault, mailbox_of};
use super::imap::{self, Actions};
use super::{MemberId, Placement, ramp, slots};
use crate::jobs::{JobResult, Next};
use crate::store::StoreError;
use crate::store::warmup::{self as repo, Counter, messages::Message};

/// Mail not found yet is looked for again this often…
const LOOK_AGAIN: Duration = Duration::minutes(15);
/// …until this long after it was sent; then it is missing.
const LOOK_FOR: Duration = Duration::hours(3);
/// A recipient whose server cannot be read is retried until this long
/// after the send, then the message counts as failed, not as a placement.
const READ_FOR: Duration = Duration::hours(12);
/// Share of received warmup mail flagged important (Warmbly's 30 %).
const FLAG_RATE: f64 = 0.3;

impl Engine {
    pub async fn engage_job(&self, id: Uuid) -> JobResult {
        let Some(msg) = self.message(id).await? else {
            return Ok(Next::Done);
        };
        let (Some(message_id), Some(sent_at)) = (msg.message_id.clone(), msg.sent_at) else {
            return Ok(Next::Done);
        };
        if msg.status != "sent" || msg.placement.is_some() {
            return Ok(Next::Done);
        }
        let now = self.now();
        let recipient = match self.contact(msg.recipient).await {
            Ok(r) => r,
            Err(super::access::AccessError::Store(e)) => return Err(e.to_string()),
            Err(e) => return self.fail(&msg, &e.to_string()).await,
        };
        let mut session = match imap::connect(&self.trust, &recipient.imap, &recipient.login).await
        {
            Ok(s) => s,
            Err(e) => {
                if let MemberId::Peer(p) = msg.recipient {
                    self.peer_failing(p, &e.to_string()).await;
                }
                if now - sent_at < READ_FOR {
                    return Ok(Next::At(now + LOOK_AGAIN));
                }
                return self
                    .fail(
                        &msg,
                        &format!("the recipient's mailbox could not be read: {e}"),
                    )
                    .await;
            }
        };
        let found = session.locate(&message_id).await.map_err(fault)?;
        let Some(found) = found else {
            session.logout().await;
            if now - sent_at < LOOK_FOR {
                return Ok(Next::At(now + LOOK_AGAIN));
            }
            // A delivery failure KumoMTA logged (a refused certificate, a
            // full mailbox) is a failure and says why, never a placement.
            if let Some(error) = &msg.error {
                return self.fail(&msg, &format!("never delivered: {error}")).await;
            }
            self.record(&msg, Placement::Missing, now)
                .await
                .map_err(fault)?;
            return Ok(Next::Done);
        };
        if found.folder == FOLDER {
            session.logout().await;
            return Ok(Next::Done);
        }
        // Recorded first: whatever happens next, the placement is known.
        if !self
            .record(&msg, found.placement, now)
            .await
            .map_err(fault)?
        {
            session.logout().await;
            return Ok(Next::Done);
        }
        let spam = found.placement == Placement::Spam;
        let flag = self.with_rng(|rng| rng.gen_bool(FLAG_RATE));
        let actions = Actions {
            rescue: spam,
            seen: true,
            flag,
            file_into: Some(FOLDER),
        };
        let engaged = session.engage(&found, &actions).await;
        let reply = engaged.is_ok()
            && self
                .answers(&msg, recipient.can_send)
                .await
                .map_err(fault)?;
        let expired = self.expire(&mut session, msg.recipient, now).await;
        session.logout().await;
        engaged.map_err(fault)?;
        if let Err(e) = expired {
            tracing::warn!(error = %e, "warmup: retention expunge failed; tried again at the next visit");
        }
        let m = msg.clone();
        let reply_at = now + self.with_rng(slots::reply_delay);
        self.store
            .write(move |tx| {
                repo::messages::set_engaged(tx, m.id, spam, flag, reply)?;
                if let Some(owner) = m.counts_for {
                    repo::bump(tx, owner, m.day, Counter::Opens)?;
                    if spam {
                        repo::bump(tx, owner, m.day, Counter::Rescued)?;
                    }
                }
                if reply {
                    plan_reply(tx, &m, reply_at, now)?;
                }
                Ok::<_, StoreError>(())
            })
            .await
            .map_err(fault)?;
        self.waker.wake();
        Ok(Next::Done)
    }

    /// Records the placement once (false: already recorded), and closes
    /// the loop on a spam placement: the rest of the sender's day is cut
    /// and its ramp frozen.
    async fn record(
        &self,
        msg: &Message,
        placement: Placement,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let m = msg.clone();
        self.store
            .write(move |tx| {
                if !repo::messages::placed(tx, m.id, placement, now)? {
                    return Ok(false);
                }
                let Some(owner) = m.counts_for else {
                    return Ok(true);
                };
                let counter = match placement {
                    Placement::Inbox => Counter::LandedInbox,
                    Placement::Spam => Counter::LandedSpam,
                    Placement::Other => Counter::LandedOther,
                    Placement::Missing => Counter::Missing,
                };
                repo::bump(tx, owner, m.day, counter)?;
                if placement == Placement::Spam {
                    cut_and_freeze(tx, owner, &m, now)?;
                }
                Ok(true)
            })
            .await
    }

    /// Ends a message as `failed` with `why`, counted on its day row.
    pub(super) async fn fail(&self, msg: &Message, why: &str) -> JobResult {
        let (m, why) = (msg.clone(), why.to_owned());
        self.store
            .write(move |tx| {
                repo::messages::end(tx, m.id, "failed", &why)?;
                if let Some(owner) = m.counts_for {
                    repo::bump(tx, owner, m.day, Counter::Failed)?;
                }
                Ok::<_, StoreError>(())
            })
            .await
            .map_err(fault)?;
        Ok(Next::Done)
    }

    /// Whether the recipient answers this one: never a reply to a reply,
    /// at the reply rate of the mailbox being warmed.
    async fn answers(&self, msg: &Message, can_send: bool) -> Result<bool, StoreError> {
        if msg.reply_to.is_some() || !can_send {
            return Ok(false);
        }
        let Some(owner) = msg.counts_for else {
            return Ok(false);
        };
        let rate = self
            .store
            .read(move |c| repo::get(c, owner))
            .await?
            .map_or(0, |s| s.settings.reply_rate_pct);
        Ok(self.with_rng(|rng| rng.gen_range(0..100) < rate))
    }

    /// Expunges the recipient's filed warmup mail past its retention.
    async fn expire(
        &self,
        session: &mut imap::Session,
        recipient: MemberId,
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        let retention = match mailbox_of(recipient) {
            Some(m) => self
                .store
                .read(move |c| repo::get(c, m))
                .await
                .map_err(fault)?
                .map_or(7, |s| s.settings.retention_days),
            None => 7,
        };
        let before = now - Duration::days(retention.into());
        let due = self
            .store
            .read(move |c| repo::messages::expired_at(c, recipient, before))
            .await
            .map_err(fault)?;
        if due.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = due.iter().map(|(_, mid)| mid.clone()).collect();
        session.expunge(FOLDER, &ids).await.map_err(fault)?;
        let rows: Vec<Uuid> = due.into_iter().map(|(id, _)| id).collect();
        self.store
            .write(move |tx| repo::messages::mark_expunged(tx, &rows))
            .await
            .map_err(fault)
    }
}

/// The spam placement's closed loop (Warmbly): what is left of the
/// sender's day shrinks to 0.75×, its ramp holds for 72 h.
fn cut_and_freeze(
    tx: &rusqlite::Connection,
    owner: Uuid,
    m: &Message,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let until = now + Duration::hours(ramp::FREEZE_HOURS);
    repo::freeze(tx, owner, until, now)?;
    let Some(day) = repo::day(tx, owner, m.day)? else {
        return Ok(());
    };
    let done = repo::messages::of_day(tx, owner, m.day)?
        .iter()
        .filter(|x| x.reply_to.is_none() && matches!(x.status.as_str(), "sending" | "sent"))
        .count() as u32;
    let left = day.scheduled_sends.saturating_sub(done);
    let keep = done + ramp::cut(left);
    let note = format!(
        "spam placement at {}: the rest of the day cut from {left} to {}, ramp frozen until {}",
        m.recipient_email,
        keep - done,
        until.format("%Y-%m-%d %H:%M UTC")
    );
    repo::messages::skip_beyond(
        tx,
        owner,
        m.day,
        keep,
        "the day was cut after a spam placement",
    )?;
    repo::replan(tx, owner, m.day, keep, &note)
}

/// The recipient answers in thread: a message from it to the original
/// sender, sent after a human-looking delay.
fn plan_reply(
    tx: &rusqlite::Connection,
    original: &Message,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let id = Uuid::new_v4();
    repo::messages::insert(
        tx,
        &repo::messages::NewMessage {
            id,
            day: original.day,
            counts_for: mailbox_of(original.recipient)
                .filter(|m| repo::get(tx, *m).ok().flatten().is_some()),
            sender: original.recipient,
            recipient: original.sender,
            sender_email: &original.recipient_email,
            recipient_email: &original.sender_email,
            reply_to: Some(original.id),
            scheduled_at: at,
        },
        now,
    )?;
    enqueue(tx, SEND, id, at, now)
}
