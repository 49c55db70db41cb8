use std::collections::HashSet;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

fn rng() -> StdRng {
    StdRng::seed_from_u64(42)
}

fn set(names: &[&str]) -> HashSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn usernames(names: &[NewMailboxName]) -> Vec<&str> {
    names.iter().map(|n| n.username.as_str()).collect()
}

#[test]
fn scheme_names_match_the_api() {
    for (scheme, text) in [
        (NamingScheme::Random, "random"),
        (NamingScheme::FirstDotLast, "first.last"),
        (NamingScheme::FirstInitialLast, "flast"),
        (NamingScheme::Custom, "custom"),
    ] {
        assert_eq!(NamingScheme::parse(text).unwrap(), scheme);
        assert_eq!(
            serde_json::to_string(&scheme).unwrap(),
            format!("\"{text}\"")
        );
    }
}

#[test]
fn a_thousand_random_names_are_distinct_valid_and_personal() {
    let names = generate(NamingScheme::Random, 1000, &HashSet::new(), &[], &mut rng()).unwrap();
    assert_eq!(names.len(), 1000);
    let distinct: HashSet<&str> = usernames(&names).into_iter().collect();
    assert_eq!(distinct.len(), 1000);
    for n in &names {
        let u = n.username.as_str();
        assert_eq!(Username::parse(u).unwrap(), n.username, "{u}");
        assert!(!lists::is_unfortunate(u), "{u}");
        assert!(first_names().contains(&n.first_name.as_str()), "{n:?}");
        assert!(last_names().contains(&n.last_name.as_str()), "{n:?}");
    }
    // On an empty domain the first form is almost always free.
    let dotted = names
        .iter()
        .filter(|n| n.username.as_str().contains('.'))
        .count();
    assert!(dotted > 990, "{dotted}");
}

#[test]
fn the_same_seed_gives_the_same_names() {
    let a = generate(NamingScheme::Random, 20, &HashSet::new(), &[], &mut rng()).unwrap();
    let b = generate(NamingScheme::Random, 20, &HashSet::new(), &[], &mut rng()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn random_falls_back_through_the_forms_in_order() {
    let forms = &RANDOM_FORMS;
    let (firsts, lasts) = (["Ann"], ["Lee"]);
    let mut taken = HashSet::new();
    for want in ["ann.lee", "alee", "ann", "a.lee"] {
        let names = from_lists(forms, 1, &taken, &firsts, &lasts, &mut rng()).unwrap();
        assert_eq!(usernames(&names), [want]);
        assert_eq!(
            (names[0].first_name.as_str(), names[0].last_name.as_str()),
            ("Ann", "Lee")
        );
        taken.insert(want.to_owned());
    }
}

#[test]
fn random_fallbacks_are_used_when_first_last_is_taken_on_a_real_domain() {
    // Every first.last of the shipped lists taken: random must still name
    // mailboxes, in the shorter forms.
    let mut taken = HashSet::new();
    for f in first_names() {
        for l in last_names() {
            taken.insert(format!("{}.{}", slug(f).unwrap(), slug(l).unwrap()));
        }
    }
    let names = generate(NamingScheme::Random, 200, &taken, &[], &mut rng()).unwrap();
    for u in usernames(&names) {
        assert!(!taken.contains(u), "{u}");
        let bare = !u.contains('.');
        let initial_dot = u.len() > 2 && u.as_bytes()[1] == b'.';
        assert!(bare || initial_dot, "{u} is not a fallback form");
    }
    // And first.last alone has nothing left.
    let err = generate(NamingScheme::FirstDotLast, 1, &taken, &[], &mut rng()).unwrap_err();
    assert_eq!(
        err,
        NamingError::Exhausted {
            created: 0,
            wanted: 1
        }
    );
}

#[test]
fn fixed_schemes_keep_one_form_and_skip_taken_names() {
    let names = generate(
        NamingScheme::FirstDotLast,
        300,
        &HashSet::new(),
        &[],
        &mut rng(),
    )
    .unwrap();
    for n in &names {
        let want = format!(
            "{}.{}",
            slug(&n.first_name).unwrap(),
            slug(&n.last_name).unwrap()
        );
        assert_eq!(n.username.as_str(), want);
    }
    let names = generate(
        NamingScheme::FirstInitialLast,
        300,
        &HashSet::new(),
        &[],
        &mut rng(),
    )
    .unwrap();
    for n in &names {
        let f: String = slug(&n.first_name).unwrap().chars().take(1).collect();
        assert_eq!(
            n.username.as_str(),
            format!("{f}{}", slug(&n.last_name).unwrap())
        );
    }

    let taken = set(&["jlee", "Mlee"]);
    let names = from_lists(
        &[NameForm::FirstInitialLast],
        1,
        &taken,
        &["John", "Jane", "Mary", "Sam"],
        &["Lee"],
        &mut rng(),
    )
    .unwrap();
    assert_eq!(usernames(&names), ["slee"], "taken compares ignoring case");
}

#[test]
fn exhaustion_is_reported_not_looped_on() {
    let err = from_lists(
        &RANDOM_FORMS,
        5,
        &HashSet::new(),
        &["Ann"],
        &["Lee"],
        &mut rng(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        NamingError::Exhausted {
            created: 4,
            wanted: 5
        }
    );
    let err = from_lists(&RANDOM_FORMS, 1, &HashSet::new(), &[], &["Lee"], &mut rng()).unwrap_err();
    assert_eq!(
        err,
        NamingError::Exhausted {
            created: 0,
            wanted: 1
        }
    );
    assert!(err.to_string().contains("ask for fewer"), "{err}");

    // flast over the shipped lists: take every one and ask for more.
    let mut taken = HashSet::new();
    for f in first_names() {
        for l in last_names() {
            let initial: String = slug(f).unwrap().chars().take(1).collect();
            taken.insert(format!("{initial}{}", slug(l).unwrap()));
        }
    }
    let err = generate(NamingScheme::FirstInitialLast, 3, &taken, &[], &mut rng()).unwrap_err();
    assert_eq!(
        err,
        NamingError::Exhausted {
            created: 0,
            wanted: 3
        }
    );
}

#[test]
fn role_addresses_and_unfortunate_joins_are_never_produced() {
    let exhausted = NamingError::Exhausted {
        created: 0,
        wanted: 1,
    };
    let only = |forms: &[NameForm], firsts: &[&str], lasts: &[&str]| {
        from_lists(forms, 1, &HashSet::new(), firsts, lasts, &mut rng())
    };
    assert_eq!(
        only(&[NameForm::First], &["Admin", "Info", "Sales"], &["Lee"]),
        Err(exhausted.clone())
    );
    assert_eq!(
        only(&[NameForm::FirstDotLast], &["No"], &["Reply"]),
        Err(exhausted.clone())
    );
    assert_eq!(
        only(&[NameForm::FirstInitialLast], &["Tom"], &["Watson"]),
        Err(exhausted)
    );
    let names = only(&RANDOM_FORMS, &["Tom"], &["Watson"]).unwrap();
    assert_eq!(usernames(&names), ["tom.watson"]);
}

fn person(first: &str, last: &str) -> CustomName {
    CustomName::Person {
        first_name: first.into(),
        last_name: last.into(),
    }
}

fn user(username: &str) -> CustomName {
    CustomName::Username {
        username: username.into(),
    }
}

fn custom(
    taken: &HashSet<String>,
    list: &[CustomName],
) -> Result<Vec<NewMailboxName>, NamingError> {
    generate(NamingScheme::Custom, list.len(), taken, list, &mut rng())
}

#[test]
fn custom_names_come_back_in_order() {
    let list = [
        person("Zoë", "O'Brien"),
        user("Mary-Jane.Smith"),
        user("jsmith"),
        person(" Łukasz ", "Nowak-Kowalski"),
        user("john.a.doe"),
    ];
    let names = custom(&HashSet::new(), &list).unwrap();
    let got: Vec<(&str, &str, &str)> = names
        .iter()
        .map(|n| {
            (
                n.username.as_str(),
                n.first_name.as_str(),
                n.last_name.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("zoe.obrien", "Zoë", "O'Brien"),
            ("mary-jane.smith", "Mary-Jane", "Smith"),
            ("jsmith", "Jsmith", ""),
            ("lukasz.nowakkowalski", "Łukasz", "Nowak-Kowalski"),
            ("john.a.doe", "John", "A Doe"),
        ]
    );
}

#[test]
fn custom_errors_name_the_index_and_return_nothing() {
    let ok = || person("Ann", "Lee");
    let taken = set(&["b.ross", "carla"]);
    for (list, index, hint) in [
        (vec![ok(), user("no.reply")], 1, "role address"),
        (vec![user("Abuse"), ok()], 0, "role address"),
        (vec![ok(), ok()], 1, "also custom[0]"),
        (vec![user("ANN.LEE"), user("x"), ok()], 2, "also custom[0]"),
        (vec![ok(), person("B", "Ross")], 1, "already a mailbox"),
        (vec![user("Carla")], 0, "already a mailbox"),
        (
            vec![ok(), user("x"), person("Ελένη", "Παππά")],
            2,
            "give a username",
        ),
        (vec![person("J0hn", "Lee")], 0, "first_name"),
        (vec![user("john smith")], 0, "' '"),
        (
            vec![ok(), person(&"a".repeat(40), &"b".repeat(40))],
            1,
            "give a username instead",
        ),
    ] {
        let err = custom(&taken, &list).unwrap_err();
        let NamingError::Invalid {
            index: got,
            message,
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(*got, index, "{err}");
        assert!(message.contains(hint), "{err}");
        assert!(
            err.to_string().starts_with(&format!("custom[{index}]: ")),
            "{err}"
        );
    }
}

#[test]
fn custom_quantity_must_match_and_custom_needs_its_scheme() {
    let list = [user("ann"), user("bob")];
    let err = generate(NamingScheme::Custom, 3, &HashSet::new(), &list, &mut rng()).unwrap_err();
    assert_eq!(
        err,
        NamingError::QuantityMismatch {
            quantity: 3,
            given: 2
        }
    );
    assert!(err.to_string().contains("set quantity"), "{err}");

    let err = generate(NamingScheme::Random, 2, &HashSet::new(), &list, &mut rng()).unwrap_err();
    assert_eq!(
        err,
        NamingError::CustomNotWanted {
            scheme: NamingScheme::Random
        }
    );
    assert!(err.to_string().contains("\"custom\""), "{err}");
}

#[test]
fn custom_entries_deserialise_from_either_form_only() {
    let list: Vec<CustomName> =
        serde_json::from_str(r#"[{"first_name": "Ann", "last_name": "Lee"}, {"username": "ann"}]"#)
            .unwrap();
    assert_eq!(list, [person("Ann", "Lee"), user("ann")]);
    for (body, hint) in [
        (r#"{"first_name": "Ann"}"#, "either"),
        (
            r#"{"username": "a", "first_name": "Ann", "last_name": "Lee"}"#,
            "either",
        ),
        (r#"{}"#, "either"),
        (
            r#"{"username": "a", "email": "a@b.c"}"#,
            "unknown field `email`",
        ),
    ] {
        let err = serde_json::from_str::<CustomName>(body)
            .unwrap_err()
            .to_string();
        assert!(err.contains(hint), "{body}: {err}");
    }
}

#[test]
fn zero_is_an_empty_batch() {
    assert_eq!(
        generate(NamingScheme::Random, 0, &HashSet::new(), &[], &mut rng()),
        Ok(vec![])
    );
    assert_eq!(
        generate(NamingScheme::Custom, 0, &HashSet::new(), &[], &mut rng()),
        Ok(vec![])
    );
}
