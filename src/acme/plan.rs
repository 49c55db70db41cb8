//! Which names go into which bundle, and which bundles are due. Plain
//! functions over what the store holds, so the rules are unit-tested
//! without a CA.
//!
//! Bundles keep their ids and their names: a new name joins the first
//! bundle with room (that bundle is re-issued with the longer list), a
//! name no longer wanted leaves its bundle at the bundle's next renewal,
//! and past [`MAX_NAMES`] a new bundle `mail-<n+1>` starts.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::store::certificates::{BundleRow, BundleStatus};
use crate::tls::MAX_NAMES;

/// The bundle of the admin host (the host of `public_url`).
pub const ADMIN: &str = "admin";
const MAIL_PREFIX: &str = "mail-";

/// What each bundle should cover: `(id, names)`, the admin bundle first,
/// then the mail bundles in id order. A bundle whose names all went away
/// is kept with none (it is not renewed).
pub fn assign(
    existing: &[BundleRow],
    admin_host: Option<&str>,
    mail_hosts: &[String],
) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let had_admin = existing.iter().any(|b| b.id == ADMIN);
    if admin_host.is_some() || had_admin {
        out.push((
            ADMIN.to_owned(),
            admin_host.map(str::to_owned).into_iter().collect(),
        ));
    }
    let mut wanted: BTreeSet<&str> = mail_hosts
        .iter()
        .map(String::as_str)
        .filter(|h| Some(*h) != admin_host)
        .collect();
    let mut mail: Vec<(u32, Vec<String>)> = existing
        .iter()
        .filter_map(|b| Some((mail_index(&b.id)?, b)))
        .map(|(n, b)| {
            let kept = b
                .names
                .iter()
                .filter(|name| wanted.remove(name.as_str()))
                .cloned()
                .collect();
            (n, kept)
        })
        .collect();
    mail.sort_by_key(|(n, _)| *n);
    for name in wanted {
        match mail.iter_mut().find(|(_, names)| names.len() < MAX_NAMES) {
            Some((_, names)) => names.push(name.to_owned()),
            None => {
                let next = mail.last().map_or(1, |(n, _)| n + 1);
                mail.push((next, vec![name.to_owned()]));
            }
        }
    }
    out.extend(
        mail.into_iter()
            .map(|(n, names)| (format!("{MAIL_PREFIX}{n}"), names)),
    );
    out
}

fn mail_index(id: &str) -> Option<u32> {
    id.strip_prefix(MAIL_PREFIX)?
        .parse()
        .ok()
        .filter(|n| *n > 0)
}

/// Whether `bundle` needs an order now: it has names and no certificate,
/// a name its certificate lacks, a failed last order, or its renewal
/// time has come. A name that only went away waits for the renewal.
pub fn due(bundle: &BundleRow, now: DateTime<Utc>) -> bool {
    if bundle.names.is_empty() {
        return false;
    }
    bundle.chain_pem.is_none()
        || bundle.status == BundleStatus::Failed
        || bundle
            .names
            .iter()
            .any(|n| !bundle.issued_names.contains(n))
        || bundle.renew_after.is_none_or(|at| at <= now)
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn row(id: &str, names: &[&str]) -> BundleRow {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        BundleRow {
            id: id.into(),
            names: names.clone(),
            status: BundleStatus::Valid,
            issued_names: names,
            chain_pem: Some("CHAIN".into()),
            serial: Some("01".into()),
            not_after: None,
            issued_at: None,
            renew_after: DateTime::from_timestamp(2_000_000_000, 0),
            last_error: None,
            needs_reload: false,
        }
    }

    fn hosts(n: std::ops::Range<usize>) -> Vec<String> {
        n.map(|i| format!("mail.d{i:03}.test")).collect()
    }

    #[test]
    fn first_plan_packs_names_by_the_hundred_and_keeps_admin_apart() {
        let plan = assign(&[], Some("admin.example.com"), &hosts(0..150));
        let ids: Vec<&str> = plan.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["admin", "mail-1", "mail-2"]);
        assert_eq!(plan[0].1, ["admin.example.com"]);
        assert_eq!(plan[1].1.len(), MAX_NAMES);
        assert_eq!(plan[2].1.len(), 50);
    }

    #[test]
    fn a_new_name_joins_a_bundle_with_room_and_removed_ones_leave() {
        let mut full = row("mail-1", &[]);
        full.names = hosts(0..100);
        let existing = [full, row("mail-2", &["mail.d100.test", "mail.gone.test"])];
        let mut wanted = hosts(0..101);
        wanted.push("mail.new.test".into());
        let plan = assign(&existing, None, &wanted);
        assert_eq!(plan.len(), 2, "{plan:?}");
        assert_eq!(
            plan[0],
            ("mail-1".to_owned(), hosts(0..100)),
            "full, unchanged"
        );
        assert_eq!(plan[1].1, ["mail.d100.test", "mail.new.test"]);

        // Once d000 goes, mail-1 has room again and takes the next new name.
        wanted.retain(|h| h != "mail.d000.test");
        wanted.push("mail.newer.test".into());
        let existing: Vec<BundleRow> = plan
            .iter()
            .map(|(id, names)| {
                let mut b = row(id, &[]);
                b.names = names.clone();
                b
            })
            .collect();
        let plan = assign(&existing, None, &wanted);
        assert_eq!(plan[0].1.len(), 100);
        assert_eq!(
            plan[0].1.last().map(String::as_str),
            Some("mail.newer.test")
        );
        assert_eq!(plan[1].1, ["mail.d100.test", "mail.new.test"]);
    }

    #[test]
    fn the_admin_host_is_not_also_a_mail_name_and_an_emptied_bundle_stays() {
        let existing = [
            row("admin", &["old.example.com"]),
            row("mail-1", &["a.test"]),
        ];
        let plan = assign(&existing, None, &["admin.test".into()]);
        assert_eq!(
            plan,
            [
                ("admin".to_owned(), vec![]),
                ("mail-1".to_owned(), vec!["admin.test".to_owned()])
            ]
        );
        let plan = assign(&[], Some("mail.a.test"), &["mail.a.test".into()]);
        assert_eq!(plan, [("admin".to_owned(), vec!["mail.a.test".to_owned()])]);
    }

    #[test]
    fn due_when_new_failed_grown_or_time_to_renew() {
        let at = DateTime::from_timestamp(2_000_000_000, 0).unwrap();
        let b = row("mail-1", &["a.test", "b.test"]);
        assert!(!due(&b, at - Duration::seconds(1)));
        assert!(due(&b, at), "renewal time reached");
        let mut shrunk = b.clone();
        shrunk.names.pop();
        assert!(!due(&shrunk, at - Duration::days(1)), "removal waits");
        let mut grown = b.clone();
        grown.names.push("c.test".into());
        assert!(due(&grown, at - Duration::days(1)));
        let mut failed = b.clone();
        failed.status = BundleStatus::Failed;
        assert!(due(&failed, at - Duration::days(1)));
        let mut new = b.clone();
        new.chain_pem = None;
        assert!(due(&new, at - Duration::days(1)));
        let mut empty = new;
        empty.names.clear();
        assert!(!due(&empty, at), "nothing to cover");
    }
}
