use super::*;
use mail_parser::{Address, Message as Parsed};
use rand::SeedableRng;

fn ann() -> Party {
    Party {
        name: "Ann Lee".into(),
        email: "ann@a.test".into(),
    }
}

fn bob() -> Party {
    Party {
        name: "Bob Stone".into(),
        email: "bob@b.test".into(),
    }
}

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_796_000_000, 0).unwrap()
}

fn parse(raw: &[u8]) -> Parsed<'_> {
    MessageParser::default().parse(raw).unwrap()
}

fn one_address<'a>(a: Option<&'a Address<'a>>) -> (Option<String>, String) {
    let a = a.unwrap().first().unwrap();
    (a.name().map(str::to_owned), a.address().unwrap().to_owned())
}

/// What every warmup message must be, whatever its words.
fn check_shape(c: &Composed) {
    let text = String::from_utf8(c.raw.clone()).unwrap();
    assert!(text.is_ascii(), "8-bit bytes in the raw message");
    for (i, line) in text.split("\r\n").enumerate() {
        assert!(!line.contains('\n'), "bare LF on line {i}");
        assert!(line.len() <= 78, "line {i} is {} long: {line}", line.len());
    }
    let lower = text.to_ascii_lowercase();
    for bad in [
        "http",
        "www.",
        "<img",
        "<a ",
        "<html",
        "text/html",
        "multipart",
    ] {
        assert!(!lower.contains(bad), "{bad:?} in {text}");
    }
    let m = parse(&c.raw);
    assert_eq!(m.attachment_count(), 0);
    assert_eq!(m.text_body_count(), 1);
    // One part: mail-parser lists a lone text part as the HTML body too.
    assert_eq!(m.parts.len(), 1);
    let ct = m.header("Content-Type").unwrap().as_content_type().unwrap();
    assert_eq!((ct.ctype(), ct.subtype()), ("text", Some("plain")));
    assert_eq!(ct.attribute("charset"), Some("utf-8"));
    assert_eq!(m.header_raw("MIME-Version").map(str::trim), Some("1.0"));
    assert_eq!(parse_body(&c.raw).unwrap(), c.body);
}

#[test]
fn a_message_has_every_header_in_rfc_5322_form() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut used = HashSet::new();
    let c = compose(
        &ann(),
        &bob(),
        "AB12CD3",
        at(),
        Some("f00d"),
        &mut used,
        &mut rng,
    )
    .unwrap();
    check_shape(&c);
    let m = parse(&c.raw);
    assert_eq!(
        one_address(m.from()),
        (Some("Ann Lee".into()), "ann@a.test".into())
    );
    assert_eq!(
        one_address(m.to()),
        (Some("Bob Stone".into()), "bob@b.test".into())
    );
    assert_eq!(m.subject(), Some(c.subject.as_str()));
    assert!(c.subject.ends_with(" | AB12CD3"), "{}", c.subject);
    assert_eq!(c.subject.matches(" | ").count(), 1);
    assert_eq!(m.date().unwrap().to_timestamp(), at().timestamp());
    assert_eq!(Some(c.message_id.trim_matches(['<', '>'])), m.message_id());
    let (uuid, domain) = c.message_id[1..c.message_id.len() - 1]
        .split_once('@')
        .unwrap();
    assert_eq!(domain, "a.test");
    assert_eq!(Uuid::parse_str(uuid).unwrap().get_version_num(), 4);
    assert_eq!(uuid.len(), 32, "simple form");
    assert_eq!(m.header_raw(marker::HEADER).map(str::trim), Some("f00d"));
    assert_eq!(
        m.header_raw("Content-Transfer-Encoding").map(str::trim),
        Some("7bit")
    );
    assert!(m.in_reply_to().is_empty() && m.references().is_empty());
    assert!(
        c.body.lines().next().unwrap().ends_with(" Bob,"),
        "{}",
        c.body
    );
    assert!(c.body.ends_with("\nAnn Lee"), "{}", c.body);

    let plain = compose(&ann(), &bob(), "AB12CD3", at(), None, &mut used, &mut rng).unwrap();
    assert!(parse(&plain.raw).header_raw(marker::HEADER).is_none());
}

#[test]
fn a_day_of_messages_never_repeats() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut used = HashSet::new();
    let day: Vec<Composed> = (0..100)
        .map(|i| {
            let to = Party {
                name: format!("Peer {i}"),
                email: format!("p{i}@c.test"),
            };
            compose(&ann(), &to, "TAG0001", at(), None, &mut used, &mut rng).unwrap()
        })
        .collect();
    let subjects: HashSet<&str> = day.iter().map(|c| c.subject.as_str()).collect();
    let bodies: HashSet<&str> = day.iter().map(|c| c.body.as_str()).collect();
    let ids: HashSet<&str> = day.iter().map(|c| c.message_id.as_str()).collect();
    assert_eq!((subjects.len(), bodies.len(), ids.len()), (100, 100, 100));
    // Not only different: recombined from many lines.
    let openings: HashSet<&str> = day.iter().filter_map(|c| c.body.lines().nth(2)).collect();
    assert!(openings.len() > 40, "{} distinct openings", openings.len());
    for c in &day {
        check_shape(c);
    }
}

#[test]
fn a_seed_reproduces_a_message() {
    let run = || {
        let mut rng = StdRng::seed_from_u64(3);
        compose(
            &ann(),
            &bob(),
            "X",
            at(),
            None,
            &mut HashSet::new(),
            &mut rng,
        )
        .unwrap()
    };
    assert_eq!(run().raw, run().raw);
}

#[test]
fn a_reply_threads_and_quotes() {
    let mut rng = StdRng::seed_from_u64(2);
    let mut used = HashSet::new();
    let first = compose(&ann(), &bob(), "AB12CD3", at(), None, &mut used, &mut rng).unwrap();
    let body = parse_body(&first.raw).unwrap();
    let first_refs = parse_references(&first.raw);
    let original = Original {
        message_id: &first.message_id,
        subject: &first.subject,
        from: &ann(),
        date: at(),
        body: &body,
        references: first_refs.as_deref(),
    };
    assert!(original.references.is_none());
    let later = at() + chrono::Duration::minutes(47);
    let r = reply(
        &original,
        &bob(),
        &ann(),
        later,
        Some("beef"),
        &mut used,
        &mut rng,
    )
    .unwrap();
    check_shape(&r);
    let m = parse(&r.raw);
    assert_eq!(r.subject, format!("Re: {}", first.subject));
    assert_eq!(m.subject(), Some(r.subject.as_str()));
    assert!(r.message_id.ends_with("@b.test>"));
    let bare = first.message_id.trim_matches(['<', '>']);
    assert_eq!(m.in_reply_to().as_text(), Some(bare));
    assert_eq!(m.references().as_text_list().unwrap(), [bare]);
    assert_eq!(m.header_raw(marker::HEADER).map(str::trim), Some("beef"));
    assert!(
        r.body.contains("\nOn Mon, 30 Nov 2026 at 00:53, "),
        "{}",
        r.body
    );
    assert!(r.body.contains(", Ann Lee wrote:\n"));
    for line in body.trim_end().lines() {
        let quoted = if line.is_empty() {
            ">".to_owned()
        } else {
            format!("> {line}")
        };
        assert!(r.body.contains(&format!("\n{quoted}")), "{quoted:?}");
    }

    // The answer to the reply: no `Re: Re:`, the tag still once, the
    // References chain grown by one (RFC 5322 §3.6.4).
    let body2 = parse_body(&r.raw).unwrap();
    let refs = parse_references(&r.raw).unwrap();
    assert_eq!(refs, first.message_id);
    let second = Original {
        message_id: &r.message_id,
        subject: &r.subject,
        from: &bob(),
        date: later,
        body: &body2,
        references: Some(&refs),
    };
    let rr = reply(&second, &ann(), &bob(), later, None, &mut used, &mut rng).unwrap();
    check_shape(&rr);
    assert_eq!(rr.subject, r.subject);
    assert_eq!(rr.subject.matches("AB12CD3").count(), 1);
    let m = parse(&rr.raw);
    let chain: Vec<String> = m
        .references()
        .as_text_list()
        .unwrap()
        .iter()
        .map(|s| format!("<{s}>"))
        .collect();
    assert_eq!(chain, [first.message_id.clone(), r.message_id.clone()]);
    assert!(rr.body.contains("\n> > "), "an old quote one level deeper");
    assert_eq!(
        parse_references(&rr.raw).unwrap(),
        format!("{} {}", first.message_id, r.message_id)
    );
}

#[test]
fn reply_subjects_never_stack() {
    assert_eq!(reply_subject("Notes | T1"), "Re: Notes | T1");
    assert_eq!(reply_subject("RE: re:Notes | T1"), "Re: Notes | T1");
    assert_eq!(reply_subject("Résumé"), "Re: Résumé");
    assert_eq!(reply_subject("Re"), "Re: Re");
}

#[test]
fn names_that_need_encoding_or_quoting() {
    let mut rng = StdRng::seed_from_u64(5);
    let zoe = Party {
        name: "Zoë Ångström".into(),
        email: "zoe@z.test".into(),
    };
    let lee = Party {
        name: "Lee, Ann \"AL\"".into(),
        email: "ann@a.test".into(),
    };
    let c = compose(&zoe, &lee, "T", at(), None, &mut HashSet::new(), &mut rng).unwrap();
    check_shape(&c);
    let m = parse(&c.raw);
    assert_eq!(one_address(m.from()).0.as_deref(), Some("Zoë Ångström"));
    assert_eq!(one_address(m.to()).0.as_deref(), Some("Lee, Ann \"AL\""));
    assert!(String::from_utf8_lossy(&c.raw).contains("=?utf-8?"));
    assert_eq!(
        m.header_raw("Content-Transfer-Encoding").map(str::trim),
        Some("quoted-printable")
    );
    assert!(c.body.ends_with("\nZoë Ångström"));
    assert!(
        c.body.lines().next().unwrap().ends_with(" Ann,"),
        "given name after the comma"
    );

    // No name at all: the address alone, and a greeting without a name.
    let bare = Party {
        name: " ".into(),
        email: "x@y.test".into(),
    };
    let c = compose(&bare, &bare, "T", at(), None, &mut HashSet::new(), &mut rng).unwrap();
    check_shape(&c);
    assert_eq!(one_address(parse(&c.raw).from()), (None, "x@y.test".into()));
    assert!(c.body.starts_with("Hello,\n"));
}

#[test]
fn a_bad_address_is_an_error() {
    let mut rng = StdRng::seed_from_u64(5);
    let bad = Party {
        name: "Nobody".into(),
        email: "not an address".into(),
    };
    let err = compose(&ann(), &bad, "T", at(), None, &mut HashSet::new(), &mut rng).unwrap_err();
    assert!(
        matches!(err, Error::Address(ref a) if a == "not an address"),
        "{err}"
    );
}

#[test]
fn the_tag_is_fixed_per_user_and_differs_between_users() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, _) = Vault::load_or_create(dir.path()).unwrap();
    let (u1, u2) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let t1 = tag_for(&vault, u1);
    assert_eq!(t1, tag_for(&vault, u1));
    assert_ne!(t1, tag_for(&vault, u2));
    assert_eq!(t1.len(), 7);
    assert!(
        t1.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    );
}

#[test]
fn parsing_what_is_not_a_message() {
    assert!(parse_references(b"Subject: x\r\n\r\nhello").is_none());
    assert_eq!(
        parse_body(b"Subject: x\r\n\r\nhello\r\n").as_deref(),
        Some("hello")
    );
    let irt = b"In-Reply-To: <a@b>\r\nSubject: x\r\n\r\nhi";
    assert_eq!(parse_references(irt).as_deref(), Some("<a@b>"));
}

#[test]
fn the_corpus_is_large_varied_and_innocent() {
    let c = &*CORPUS;
    assert!(c.subjects.len() >= 60 && c.openers.len() >= 30 && c.paragraphs.len() >= 80);
    assert!(c.signoffs.len() >= 20 && c.closers.len() >= 30 && c.reply_openers.len() >= 20);
    let all = [
        &c.subjects,
        &c.topics,
        &c.greetings,
        &c.openers,
        &c.paragraphs,
        &c.closers,
        &c.signoffs,
        &c.reply_openers,
    ];
    // Words filters score as spam, money, links, shouting, fake replies.
    let banned = [
        "free",
        "guarantee",
        "offer",
        "discount",
        "click",
        "buy",
        "winner",
        "prize",
        "cash",
        "money",
        "credit",
        "loan",
        "urgent",
        "act now",
        "limited time",
        "risk free",
        "bonus",
        "promo",
        "sale",
        "cheap",
        "earn",
        "income",
        "opportunity",
        "amazing",
        "congratulations",
        "exclusive",
        "special",
        "unsubscribe",
        "password",
        "account",
        "re:",
        "fwd:",
    ];
    for list in all {
        let distinct: HashSet<&&str> = list.iter().collect();
        assert_eq!(distinct.len(), list.len(), "a duplicate line");
        for line in list.iter() {
            let lower = line.to_lowercase();
            let words: Vec<&str> = lower
                .split(|ch: char| !ch.is_alphanumeric() && ch != ':')
                .collect();
            for b in banned {
                let hit = if b.contains(' ') {
                    lower.contains(b)
                } else {
                    words
                        .iter()
                        .any(|w| *w == b || w.strip_suffix('s') == Some(b))
                };
                assert!(!hit, "{b:?} in {line:?}");
            }
            assert!(
                line.is_ascii() && !line.contains(['$', '%', '@', '/', '!', '<']),
                "{line}"
            );
            assert!(
                !line.chars().any(|ch| ch.is_ascii_digit()),
                "a number in {line:?}"
            );
            assert!(
                line.chars().filter(char::is_ascii_uppercase).count() < 8,
                "{line}"
            );
        }
    }
    let templated = c.subjects.iter().filter(|s| s.contains("{topic}")).count();
    assert!(templated * c.topics.len() > 500, "room for a busy day");
}

#[test]
fn a_long_thread_and_a_non_ascii_subject_stay_within_the_line_limit() {
    let mut rng = StdRng::seed_from_u64(8);
    let refs = (0..6)
        .map(|i| format!("<{}@a.test>", Uuid::from_u128(i).simple()))
        .collect::<Vec<_>>()
        .join(" ");
    let body = format!("{}\n> > {}", "word ".repeat(40), "older ".repeat(30));
    let original = Original {
        message_id: "0123456789abcdef0123456789abcdef@a.test",
        subject: "Ré: Planung für die Woche | T1",
        from: &ann(),
        date: at(),
        body: &body,
        references: Some(&refs),
    };
    let r = reply(
        &original,
        &bob(),
        &ann(),
        at(),
        None,
        &mut HashSet::new(),
        &mut rng,
    )
    .unwrap();
    check_shape(&r);
    let m = parse(&r.raw);
    assert_eq!(m.subject(), Some("Re: Ré: Planung für die Woche | T1"));
    assert_eq!(m.references().as_text_list().unwrap().len(), 7);
    assert!(r.body.contains("\n> > > older"), "{}", r.body);
}
