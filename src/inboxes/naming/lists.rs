//! The embedded given-name and surname lists random mailboxes are drawn
//! from, and the check that keeps unlucky combinations out of them.

use std::sync::LazyLock;

static FIRST_NAMES: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| lines(include_str!("../data/first_names.txt")));
static LAST_NAMES: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| lines(include_str!("../data/last_names.txt")));

/// Common given names across the US, UK and EU, mixed genders, as written
/// (`Siobhan`, `Matteo`).
pub fn first_names() -> &'static [&'static str] {
    &FIRST_NAMES
}

/// Common surnames across the US, UK and EU, as written (`O'Brien`,
/// `McDonald`).
pub fn last_names() -> &'static [&'static str] {
    &LAST_NAMES
}

fn lines(text: &'static str) -> Vec<&'static str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Words no generated mailbox may contain. The lists themselves are clean,
/// but joining an initial to a surname can spell one (`t` + `watson`), and
/// a sender address like that ends a cold-email conversation before it
/// starts. Checked on generated usernames only: a custom name is what the
/// customer asked for.
const UNFORTUNATE: &[&str] = &[
    "fuck", "shit", "cunt", "cock", "dick", "twat", "wank", "piss", "slut", "whore", "bitch",
    "porn", "nazi", "nigg", "dildo", "penis", "rape",
];

pub(super) fn is_unfortunate(username: &str) -> bool {
    UNFORTUNATE.iter().any(|w| username.contains(w))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::inboxes::naming::{Username, slug};

    /// Exact words (as slugs) that must never be in a list, beyond the
    /// substrings in `UNFORTUNATE`.
    const OFFENSIVE: &[&str] = &[
        "ass", "anal", "anus", "butt", "butts", "crap", "cum", "fag", "gay", "hitler", "hooker",
        "kill", "sex", "sexy", "tit", "tits", "wang", "willy", "fanny", "randy", "cox",
    ];

    fn check_list(name: &str, list: &[&str]) {
        assert!(list.len() >= 500, "{name} has only {} names", list.len());
        let distinct: HashSet<_> = list.iter().collect();
        assert_eq!(distinct.len(), list.len(), "{name} has duplicates");
        let mut slugs = HashSet::new();
        for entry in list {
            assert!(!entry.is_empty(), "{name}: empty entry");
            assert!(entry.is_ascii(), "{name}: {entry} is not ASCII");
            assert!(
                entry.starts_with(|c: char| c.is_ascii_uppercase()),
                "{name}: {entry} is not capitalised"
            );
            let s = slug(entry).unwrap();
            // Every slug must be a username on its own: this also proves no
            // slug is a role address.
            Username::parse(&s).unwrap_or_else(|e| panic!("{name}: {entry}: {e}"));
            assert!(!is_unfortunate(&s), "{name}: {entry}");
            assert!(!OFFENSIVE.contains(&s.as_str()), "{name}: {entry}");
            slugs.insert(s);
        }
        assert!(
            slugs.len() >= 500,
            "{name} has only {} distinct slugs",
            slugs.len()
        );
    }

    #[test]
    fn first_names_are_many_distinct_and_clean() {
        check_list("first_names.txt", first_names());
    }

    #[test]
    fn last_names_are_many_distinct_and_clean() {
        check_list("last_names.txt", last_names());
    }

    #[test]
    fn unfortunate_joins_are_caught() {
        assert!(is_unfortunate("twatson"));
        assert!(!is_unfortunate("t.watson"));
        assert!(!is_unfortunate("john.smith"));
    }
}
