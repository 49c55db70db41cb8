//! Sending one planned message: checked again at send time (the plan may
//! have shrunk, a member may have paused since), composed, marked
//! `sending` with its Message-ID before the SMTP session, so a crash in
//! the middle never sends it twice, and submitted through the sender's
//! own server: the appliance's KumoMTA for its mailboxes.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::access::{AccessError, Contact};
use super::content::{self, Original, Party};
use super::engine::{ENGAGE, Engine, enqueue, fault};
use super::{MemberId, marker, slots};
use crate::jobs::{JobResult, Next};
use crate::store::StoreError;
use crate::store::warmup::{self as repo, Counter, messages::Message};

/// A refused-for-now submission is tried again this often, until 12 h
/// past its time (then it is skipped, see `refusal`).
const RETRY: Duration = Duration::minutes(10);

impl Engine {
    pub async fn send_job(&self, id: Uuid) -> JobResult {
        let Some(msg) = self.message(id).await? else {
            return Ok(Next::Done);
        };
        if msg.status != "planned" {
            return Ok(Next::Done);
        }
        if let Some(why) = self.refusal(&msg).await.map_err(fault)? {
            let id = msg.id;
            self.store
                .write(move |tx| repo::messages::end(tx, id, "skipped", &why))
                .await
                .map_err(fault)?;
            return Ok(Next::Done);
        }
        let (sender, recipient) = match (
            self.contact(msg.sender).await,
            self.contact(msg.recipient).await,
        ) {
            (Ok(s), Ok(r)) => (s, r),
            (Err(AccessError::Store(e)), _) | (_, Err(AccessError::Store(e))) => {
                return Err(e.to_string());
            }
            (Err(e), _) | (_, Err(e)) => {
                let (id, why) = (msg.id, e.to_string());
                self.store
                    .write(move |tx| repo::messages::end(tx, id, "skipped", &why))
                    .await
                    .map_err(fault)?;
                return Ok(Next::Done);
            }
        };
        let now = self.now();
        let composed = self.compose(&msg, &sender, &recipient, now).await?;
        let (id, mid, subject) = (
            msg.id,
            composed.message_id.clone(),
            composed.subject.clone(),
        );
        let body = composed.body.clone();
        let started = self
            .store
            .write(move |tx| repo::messages::start_sending(tx, id, &mid, &subject, &body))
            .await
            .map_err(fault)?;
        if !started {
            return Ok(Next::Done);
        }
        let mut raw = composed.raw;
        if sender.local {
            // The policy strips it before signing and tells send-check this
            // is warmup, counted apart from campaign mail.
            let mark = marker::make(&self.vault, &composed.message_id, &sender.party.email);
            let mut with = format!("{}: {mark}\r\n", marker::HEADER).into_bytes();
            with.append(&mut raw);
            raw = with;
        }
        let sent = self
            .submitter
            .send(
                &sender.smtp,
                &sender.login,
                &sender.party.email,
                &recipient.party.email,
                &raw,
            )
            .await;
        let now = self.now();
        match sent {
            Ok(()) => {
                let engage_at = now + self.with_rng(slots::dwell);
                let m = msg.clone();
                self.store
                    .write(move |tx| {
                        repo::messages::sent(tx, m.id, now, engage_at)?;
                        if let Some(owner) = m.counts_for
                            && m.reply_to.is_none()
                        {
                            repo::bump(tx, owner, m.day, Counter::ActualSends)?;
                        }
                        if let Some(original) = m.reply_to
                            && let Some(o) = repo::messages::get(tx, original)?
                            && let Some(owner) = o.counts_for
                        {
                            repo::bump(tx, owner, o.day, Counter::Replies)?;
                        }
                        enqueue(tx, ENGAGE, m.id, engage_at, now)
                    })
                    .await
                    .map_err(fault)?;
                self.waker.wake();
                Ok(Next::Done)
            }
            Err(e) if e.is_permanent() => {
                let (m, why) = (msg.clone(), e.to_string());
                if let MemberId::Peer(peer) = msg.sender {
                    self.peer_failing(peer, &why).await;
                }
                self.fail(&m, &why).await
            }
            Err(e) => {
                let (id, why) = (msg.id, e.to_string());
                tracing::warn!(message = %id, error = %why, "warmup send deferred");
                self.store
                    .write(move |tx| repo::messages::back_to_planned(tx, id))
                    .await
                    .map_err(fault)?;
                Ok(Next::At(now + RETRY))
            }
        }
    }

    /// Why a planned message is not sent now, checked at send time
    /// (Warmbly #592: a cap checked only when planning is no cap).
    async fn refusal(&self, msg: &Message) -> Result<Option<String>, StoreError> {
        let m = msg.clone();
        let now = self.now();
        self.store
            .read(move |c| {
                if let Some(owner) = m.counts_for {
                    let Some(e) = repo::enrolled(c, Some(owner))?.pop() else {
                        return Ok(Some("the mailbox left warmup".into()));
                    };
                    if !e.available() {
                        return Ok(Some(format!("{} is paused or cannot send now", e.email)));
                    }
                    if m.reply_to.is_none()
                        && let Some(day) = repo::day(c, owner, m.day)?
                    {
                        let taken = repo::messages::of_day(c, owner, m.day)?
                            .iter()
                            .filter(|x| {
                                x.reply_to.is_none()
                                    && matches!(x.status.as_str(), "sending" | "sent")
                            })
                            .count() as u32;
                        if taken >= day.scheduled_sends {
                            return Ok(Some(
                                "the day's plan was cut after a spam placement".into(),
                            ));
                        }
                    }
                }
                if let MemberId::Peer(p) = m.recipient
                    && let Some((peer, _)) = repo::peers::get(c, p)?
                    && peer.status != "active"
                {
                    return Ok(Some(format!("peer {} is {}", peer.email, peer.status)));
                }
                if let MemberId::Mailbox(r) = m.recipient
                    && let Some(e) = repo::enrolled(c, Some(r))?.pop()
                    && !e.available()
                {
                    return Ok(Some(format!("{} is paused or cannot receive now", e.email)));
                }
                // A day long gone is not sent late in a burst.
                if now.signed_duration_since(m.scheduled_at) > Duration::hours(12) {
                    return Ok(Some("its time passed while the engine was stopped".into()));
                }
                Ok(None)
            })
            .await
    }

    async fn compose(
        &self,
        msg: &Message,
        sender: &Contact,
        recipient: &Contact,
        now: DateTime<Utc>,
    ) -> Result<content::Composed, String> {
        let owner = msg.counts_for;
        let original = match msg.reply_to {
            Some(o) => self
                .store
                .read(move |c| repo::messages::get(c, o))
                .await
                .map_err(fault)?,
            None => None,
        };
        let tag = content::tag_for(&self.vault, sender.owner);
        let used = self.used_today(owner, msg).await?;
        let (from, to) = (sender.party.clone(), recipient.party.clone());
        self.with_rng(|rng| {
            let mut used = used;
            match &original {
                Some(o) => {
                    let them = Party {
                        name: to.name.clone(),
                        email: o.sender_email.clone(),
                    };
                    let original = Original {
                        message_id: o.message_id.as_deref().unwrap_or_default(),
                        subject: o.subject.as_deref().unwrap_or_default(),
                        from: &them,
                        date: o.sent_at.unwrap_or(o.scheduled_at),
                        body: o.body.as_deref().unwrap_or_default(),
                        references: None,
                    };
                    content::reply(&original, &from, &to, now, None, &mut used, rng)
                }
                None => content::compose(&from, &to, &tag, now, None, &mut used, rng),
            }
        })
        .map_err(fault)
    }

    /// Fingerprints of the subjects and bodies the sender already sent
    /// today, so no two messages of a day are the same.
    async fn used_today(&self, owner: Option<Uuid>, msg: &Message) -> Result<HashSet<u64>, String> {
        let Some(owner) = owner else {
            return Ok(HashSet::new());
        };
        let day = msg.day;
        let rows = self
            .store
            .read(move |c| repo::messages::of_day(c, owner, day))
            .await
            .map_err(fault)?;
        let mut used = HashSet::new();
        for m in &rows {
            if let (Some(subject), Some(body)) = (&m.subject, &m.body) {
                content::remember(&mut used, subject, body);
            }
        }
        Ok(used)
    }

    pub(super) async fn peer_failing(&self, peer: Uuid, why: &str) {
        let (why, now) = (why.to_owned(), self.now());
        let out = self
            .store
            .write(move |tx| repo::peers::set_status(tx, peer, "failing", Some(&why), now))
            .await;
        if let Err(e) = out {
            tracing::warn!(peer = %peer, error = %e, "warmup: peer status not saved");
        }
    }
}
