//! Who a sender writes its warmup mail to on a day (issue 14 point 1,
//! reference §0.3 and §5.1). Hard rules first: never itself or its own
//! domain, only peers it may use, never an unavailable or suppressed
//! recipient, one message per sender→recipient a day. Then preferences:
//! a recipient not exchanged with in the last [`RECENT`] before a recent
//! one (Warmbly's `recentPartnerWindow`), and a recipient at another
//! provider before one at the sender's own (Gmail↔Outlook↔other).
//!
//! [`Provider::Appliance`] is a provider of its own: a mailbox of this
//! appliance writing to another is delivered locally and meets no outside
//! filter (reference §0.3), so that pair is the least useful and counts as
//! "same provider"; appliance↔Gmail, appliance↔Outlook and appliance↔other
//! are different. Two `Other` members count as the same provider, since
//! nothing tells their servers apart.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use uuid::Uuid;

use super::{MemberId, Provider};

/// No second exchange between two members within this while the pool
/// offers anyone else.
pub const RECENT: Duration = Duration::hours(72);

#[derive(Debug, Clone)]
pub struct Member {
    pub id: MemberId,
    /// Lower-case.
    pub email: String,
    pub domain: String,
    pub provider: Provider,
    /// The user the mailbox or the peer belongs to.
    pub owner: Uuid,
    /// Peers only: an admin lent it to every user.
    pub shared: bool,
    /// False for a receive-only peer.
    pub can_send: bool,
    /// Not paused, not failing, warmup enabled.
    pub available: bool,
}

/// What the pool has already done: the last exchange (either direction)
/// of each unordered pair of addresses, and the sender→recipient pairs
/// already planned or sent on the day being planned.
#[derive(Debug, Default)]
pub struct History {
    last: HashMap<(String, String), DateTime<Utc>>,
    today: HashSet<(String, String)>,
}

impl History {
    /// `a` and `b` exchanged a message at `at`; the latest one counts.
    pub fn exchanged(&mut self, a: &str, b: &str, at: DateTime<Utc>) {
        let last = self.last.entry(unordered(a, b)).or_insert(at);
        *last = (*last).max(at);
    }

    /// `from` writes (or wrote) to `to` on the day being planned.
    pub fn planned_today(&mut self, from: &str, to: &str) {
        self.today.insert((from.to_lowercase(), to.to_lowercase()));
    }

    fn last_exchange(&self, a: &str, b: &str) -> Option<DateTime<Utc>> {
        self.last.get(&unordered(a, b)).copied()
    }

    fn is_planned(&self, from: &str, to: &str) -> bool {
        self.today.contains(&(from.to_owned(), to.to_owned()))
    }
}

fn unordered(a: &str, b: &str) -> (String, String) {
    let (a, b) = (a.to_lowercase(), b.to_lowercase());
    if a <= b { (a, b) } else { (b, a) }
}

/// The domain part of an address, for members whose `domain` field and
/// address might disagree in case.
fn domain_of(email: &str) -> &str {
    email.rsplit_once('@').map_or("", |(_, d)| d)
}

/// Up to `want` recipients for `sender` today, as indices into `pool`:
/// every eligible one before none, best tier first (not recent and at
/// another provider; not recent; recent and at another provider; recent),
/// in random order within a tier. Never more than the eligible recipients,
/// so a small pool lowers the day's volume instead of repeating pairs.
pub fn choose(
    sender: &Member,
    pool: &[Member],
    suppressed: &HashSet<String>,
    history: &History,
    now: DateTime<Utc>,
    want: u32,
    rng: &mut StdRng,
) -> Vec<usize> {
    if !sender.can_send || !sender.available {
        return Vec::new();
    }
    let from = sender.email.to_lowercase();
    let from_domains = [sender.domain.to_lowercase(), domain_of(&from).to_owned()];
    let mut seen = HashSet::new();
    let mut tiers: [Vec<usize>; 4] = Default::default();
    for (i, m) in pool.iter().enumerate() {
        let to = m.email.to_lowercase();
        let usable_peer = match m.id {
            MemberId::Mailbox(_) => true,
            MemberId::Peer(_) => m.shared || m.owner == sender.owner,
        };
        let same_domain = from_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(&m.domain) || d == domain_of(&to));
        if m.id == sender.id
            || to == from
            || same_domain
            || !usable_peer
            || !m.available
            || suppressed.contains(&to)
            || history.is_planned(&from, &to)
            || !seen.insert(to.clone())
        {
            continue;
        }
        let recent = history
            .last_exchange(&from, &to)
            .is_some_and(|at| now - at < RECENT);
        let same_provider = m.provider == sender.provider;
        tiers[usize::from(recent) * 2 + usize::from(same_provider)].push(i);
    }
    for tier in &mut tiers {
        tier.shuffle(rng);
    }
    tiers.into_iter().flatten().take(want as usize).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn uid(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn mailbox(n: u128, email: &str, provider: Provider, owner: u128) -> Member {
        Member {
            id: MemberId::Mailbox(uid(n)),
            email: email.to_owned(),
            domain: domain_of(email).to_owned(),
            provider,
            owner: uid(owner),
            shared: false,
            can_send: true,
            available: true,
        }
    }

    fn peer(n: u128, email: &str, provider: Provider, owner: u128, shared: bool) -> Member {
        Member {
            id: MemberId::Peer(uid(n)),
            shared,
            ..mailbox(n, email, provider, owner)
        }
    }

    fn pick(sender: &Member, pool: &[Member], history: &History, want: u32) -> Vec<String> {
        let mut rng = StdRng::seed_from_u64(1);
        choose(
            sender,
            pool,
            &HashSet::new(),
            history,
            now(),
            want,
            &mut rng,
        )
        .into_iter()
        .map(|i| pool[i].email.clone())
        .collect()
    }

    fn sender() -> Member {
        mailbox(1, "ann@a.test", Provider::Appliance, 100)
    }

    #[test]
    fn never_itself_nor_its_domain() {
        let s = sender();
        let pool = vec![
            s.clone(),
            mailbox(2, "bob@a.test", Provider::Appliance, 100),
            mailbox(3, "cat@A.TEST", Provider::Appliance, 200),
            mailbox(4, "dan@b.test", Provider::Appliance, 200),
        ];
        assert_eq!(pick(&s, &pool, &History::default(), 10), ["dan@b.test"]);
    }

    #[test]
    fn peers_only_when_shared_or_the_senders_owners() {
        let s = sender();
        let pool = vec![
            peer(2, "own@gmail.test", Provider::Gmail, 100, false),
            peer(3, "lent@outlook.test", Provider::Outlook, 300, true),
            peer(4, "theirs@zoho.test", Provider::Zoho, 300, false),
            mailbox(5, "box@c.test", Provider::Appliance, 300),
        ];
        let mut got = pick(&s, &pool, &History::default(), 10);
        got.sort();
        assert_eq!(got, ["box@c.test", "lent@outlook.test", "own@gmail.test"]);
    }

    #[test]
    fn never_unavailable_suppressed_or_already_planned() {
        let s = sender();
        let mut paused = mailbox(2, "paused@b.test", Provider::Gmail, 100);
        paused.available = false;
        let pool = vec![
            paused,
            mailbox(3, "gone@c.test", Provider::Gmail, 100),
            mailbox(4, "done@d.test", Provider::Gmail, 100),
            mailbox(5, "ok@e.test", Provider::Gmail, 100),
        ];
        let mut h = History::default();
        h.planned_today("ANN@a.test", "done@d.test");
        // The other direction planned today does not bar this one.
        h.planned_today("ok@e.test", "ann@a.test");
        let suppressed = HashSet::from(["gone@c.test".to_owned()]);
        let mut rng = StdRng::seed_from_u64(1);
        let got = choose(&s, &pool, &suppressed, &h, now(), 10, &mut rng);
        assert_eq!(got, [3]);
    }

    #[test]
    fn a_receive_only_or_unavailable_sender_sends_nothing() {
        let pool = vec![mailbox(2, "bob@b.test", Provider::Gmail, 100)];
        let mut s = peer(1, "ro@gmail.test", Provider::Gmail, 100, false);
        s.can_send = false;
        assert!(pick(&s, &pool, &History::default(), 5).is_empty());
        let mut s = sender();
        s.available = false;
        assert!(pick(&s, &pool, &History::default(), 5).is_empty());
    }

    #[test]
    fn each_recipient_once_and_the_result_capped_at_the_eligible() {
        let s = sender();
        let pool = vec![
            mailbox(2, "bob@b.test", Provider::Gmail, 100),
            peer(3, "bob@b.test", Provider::Gmail, 100, true),
            mailbox(4, "cat@c.test", Provider::Outlook, 100),
        ];
        let got = pick(&s, &pool, &History::default(), 40);
        assert_eq!(got.len(), 2);
        assert_eq!(pick(&s, &pool, &History::default(), 1).len(), 1);
        assert!(pick(&s, &pool, &History::default(), 0).is_empty());
    }

    #[test]
    fn recent_partners_only_when_nobody_else_is_left() {
        let s = sender();
        let pool = vec![
            mailbox(2, "old@b.test", Provider::Gmail, 100),
            mailbox(3, "new@c.test", Provider::Gmail, 100),
            mailbox(4, "never@d.test", Provider::Gmail, 100),
        ];
        let mut h = History::default();
        h.exchanged("new@c.test", "ann@a.test", now() - Duration::hours(5));
        h.exchanged("ann@a.test", "new@c.test", now() - Duration::hours(200));
        h.exchanged(
            "ann@a.test",
            "old@b.test",
            now() - RECENT - Duration::minutes(1),
        );
        let first_two = pick(&s, &pool, &h, 2);
        assert!(
            !first_two.contains(&"new@c.test".to_owned()),
            "{first_two:?}"
        );
        assert_eq!(pick(&s, &pool, &h, 3)[2], "new@c.test", "the fallback");
    }

    #[test]
    fn another_provider_first() {
        let s = mailbox(1, "ann@a.test", Provider::Gmail, 100);
        let pool = vec![
            peer(2, "g1@gmail.test", Provider::Gmail, 100, false),
            peer(3, "g2@googlemail.test", Provider::Gmail, 100, false),
            peer(4, "o1@outlook.test", Provider::Outlook, 100, false),
            mailbox(5, "box@b.test", Provider::Appliance, 100),
        ];
        for seed in 0..20 {
            let mut rng = StdRng::seed_from_u64(seed);
            let got = choose(
                &s,
                &pool,
                &HashSet::new(),
                &History::default(),
                now(),
                2,
                &mut rng,
            );
            let mut got: Vec<_> = got.into_iter().map(|i| pool[i].email.as_str()).collect();
            got.sort();
            assert_eq!(got, ["box@b.test", "o1@outlook.test"]);
        }
        // Between two appliance mailboxes the provider is the same.
        let s = sender();
        let got = pick(&s, &pool[2..], &History::default(), 1);
        assert_eq!(got, ["o1@outlook.test"]);
    }

    #[test]
    fn order_within_a_tier_follows_the_seed() {
        let s = sender();
        let pool: Vec<Member> = (0..12)
            .map(|n| mailbox(10 + n, &format!("m{n}@d{n}.test"), Provider::Gmail, 100))
            .collect();
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            choose(
                &s,
                &pool,
                &HashSet::new(),
                &History::default(),
                now(),
                12,
                &mut rng,
            )
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    /// Random pools, histories and seeds: every hard rule holds every time,
    /// and no better-tier recipient is left out for a worse one.
    #[test]
    fn the_rules_hold_over_random_pools() {
        let providers = [
            Provider::Gmail,
            Provider::Outlook,
            Provider::Other,
            Provider::Appliance,
        ];
        let mut g = StdRng::seed_from_u64(42);
        for round in 0..500 {
            let size = g.gen_range(0..25);
            let pool: Vec<Member> = (0..size)
                .map(|n| {
                    // Unique addresses (the dedupe has its own test), few domains.
                    let email = format!("u{n}@d{}.test", g.gen_range(0..6));
                    let provider = providers[g.gen_range(0..providers.len())];
                    let owner = g.gen_range(0..3);
                    let mut m = if g.gen_bool(0.5) {
                        mailbox(n, &email, provider, owner)
                    } else {
                        peer(n, &email, provider, owner, g.gen_bool(0.3))
                    };
                    m.available = g.gen_bool(0.85);
                    m.can_send = g.gen_bool(0.8);
                    m
                })
                .collect();
            let Some(sender) = pool.iter().find(|m| m.can_send && m.available).cloned() else {
                continue;
            };
            let mut history = History::default();
            let mut planned = HashSet::new();
            let mut last = HashMap::new();
            let mut suppressed = HashSet::new();
            for m in &pool {
                match g.gen_range(0..6) {
                    0 => {
                        history.planned_today(&sender.email, &m.email);
                        planned.insert(m.email.clone());
                    }
                    1 | 2 => {
                        let at = now() - Duration::hours(g.gen_range(1..200));
                        history.exchanged(&m.email, &sender.email, at);
                        let l = last.entry(m.email.clone()).or_insert(at);
                        *l = (*l).max(at);
                    }
                    3 => {
                        suppressed.insert(m.email.clone());
                    }
                    _ => {}
                }
            }
            let eligible = |m: &Member| {
                m.id != sender.id
                    && m.email != sender.email
                    && m.domain != sender.domain
                    && (matches!(m.id, MemberId::Mailbox(_)) || m.shared || m.owner == sender.owner)
                    && m.available
                    && !suppressed.contains(&m.email)
                    && !planned.contains(&m.email)
            };
            let tier = |m: &Member| {
                let recent = last.get(&m.email).is_some_and(|&at| now() - at < RECENT);
                usize::from(recent) * 2 + usize::from(m.provider == sender.provider)
            };
            let distinct: HashSet<&str> = pool
                .iter()
                .filter(|m| eligible(m))
                .map(|m| m.email.as_str())
                .collect();
            let want = g.gen_range(0..30);
            let mut rng = StdRng::seed_from_u64(round);
            let got = choose(&sender, &pool, &suppressed, &history, now(), want, &mut rng);
            assert_eq!(
                got.len(),
                distinct.len().min(want as usize),
                "round {round}"
            );
            let mut emails = HashSet::new();
            for &i in &got {
                assert!(eligible(&pool[i]), "round {round}: {:?}", pool[i]);
                assert!(
                    emails.insert(pool[i].email.as_str()),
                    "round {round}: twice"
                );
            }
            let worst = got.iter().map(|&i| tier(&pool[i])).max().unwrap_or(0);
            let left_out_better = pool
                .iter()
                .filter(|m| eligible(m) && !emails.contains(m.email.as_str()))
                .any(|m| tier(m) < worst);
            assert!(
                !left_out_better,
                "round {round}: a better recipient left out"
            );
        }
    }
}
