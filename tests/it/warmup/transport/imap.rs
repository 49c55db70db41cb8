//! An IMAP `Session` against a provider Dovecot whose Sieve files some
//! mail into Junk (with and without MOVE), and against the appliance's own
//! Dovecot: placement, rescue, flags, filing, retention, and the user's own
//! mail left alone.

use inboxgrove::warmup::Placement;
use inboxgrove::warmup::imap::{self, Actions};
use inboxgrove::warmup::tls::Trust;

use super::{USER, endpoint, login, message, pair};
use crate::support::dovecot::{self, Dovecot};
use crate::support::imap_client::{Imap, pinned_connector, quote};
use crate::support::smtp_sink::lmtp_deliver;

/// The Junk rule of the provider: by a subject tag, as a user's filter
/// would catch a warmup tag.
const SIEVE: &str = r#"require ["fileinto"];
if header :contains "Subject" "[junk-me]" {
  fileinto "INBOX.Junk";
  stop;
}
"#;
const PEER: &str = "peer@provider.test";
const PEER_PASSWORD: &str = "peer secret 2";

/// The flags of the message with `id` in `folder`, from the
/// tests' own IMAP client; `None` when it is not there.
async fn flags(imap: &mut Imap, folder: &str, id: &str) -> Option<String> {
    let examined = imap.command(&format!("EXAMINE {}", quote(folder))).await;
    assert!(examined.ok(), "{examined:?}");
    let search = imap
        .command(&format!(
            "UID SEARCH HEADER Message-ID {}",
            quote(&format!("<{id}>"))
        ))
        .await;
    let text = search.text();
    let uid = text
        .lines()
        .find_map(|l| l.strip_prefix("* SEARCH"))?
        .trim()
        .to_owned();
    if uid.is_empty() {
        return None;
    }
    let fetched = imap.command(&format!("UID FETCH {uid} (FLAGS)")).await;
    let text = fetched.text();
    let (_, flags) = text.split_once("FLAGS ")?;
    Some(flags.trim_end_matches(')').to_owned())
}

#[tokio::test]
async fn engagement_records_rescues_marks_and_files_only_warmup_mail() {
    if !dovecot::available() {
        return;
    }
    let pair = pair();
    let d = Dovecot::provider(&[(PEER, PEER_PASSWORD)], SIEVE, &pair.cert, &pair.key).await;
    let lmtp = d.lmtp.unwrap();
    let mail = [
        ("warm-inbox@warm.test", "Quick question"),
        ("warm-junk@warm.test", "Checking in [junk-me]"),
        ("user-junk@else.test", "Cheap watches [junk-me]"),
        ("user-inbox@else.test", "Dinner on Friday"),
    ];
    for (id, subject) in mail {
        lmtp_deliver(lmtp, USER, PEER, &message(id, subject))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", d.log()));
    }
    // The user has marked their own INBOX message for deletion: a plain
    // EXPUNGE by the engine would take it.
    let mut own = Imap::tls(d.imaps, &pinned_connector(&pair.cert)).await;
    assert!(own.login(PEER, PEER_PASSWORD).await.ok(), "{}", d.log());
    own.command("SELECT INBOX").await;
    let marked = own.command("UID STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    assert!(marked.ok(), "{marked:?}");
    let user_inbox_flags = flags(&mut own, "INBOX", "user-inbox@else.test")
        .await
        .unwrap();
    assert!(user_inbox_flags.contains("\\Deleted"), "{user_inbox_flags}");

    let trust = Trust::new(std::slice::from_ref(&pair.cert)).unwrap();
    let mut s = imap::connect(
        &trust,
        &endpoint(d.imaps, true),
        &login(PEER, PEER_PASSWORD),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", d.log()));
    let inbox = s.locate("<warm-inbox@warm.test>").await.unwrap().unwrap();
    assert_eq!(
        (inbox.folder.as_str(), inbox.placement),
        ("INBOX", Placement::Inbox)
    );
    let junk = s.locate("warm-junk@warm.test").await.unwrap().unwrap();
    assert_eq!(
        (junk.folder.as_str(), junk.placement),
        ("INBOX.Junk", Placement::Spam)
    );
    assert_eq!(s.locate("<never-sent@warm.test>").await.unwrap(), None);
    let invalid = s.locate("no id").await.unwrap_err();
    assert!(
        matches!(invalid, imap::ImapError::Invalid(_)) && invalid.is_permanent(),
        "{invalid:?}"
    );
    // A server that is not there is worth trying again.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gone = imap::connect(&trust, &endpoint(closed, true), &login(PEER, PEER_PASSWORD)).await;
    assert!(
        matches!(&gone, Err(e @ imap::ImapError::Connect(_)) if !e.is_permanent()),
        "{:?}",
        gone.err()
    );

    // Reading it for a reply leaves it unread.
    let body = s.fetch(&inbox).await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("Subject: Quick question"));
    let unread = flags(&mut own, "INBOX", "warm-inbox@warm.test")
        .await
        .unwrap();
    assert!(!unread.contains("\\Seen"), "{unread}");

    let all = Actions {
        rescue: true,
        seen: true,
        flag: true,
        file_into: Some("Warmup"),
    };
    // A UID that is not the named message's (here the user's own) is
    // refused before anything is done to it.
    let forged = imap::Found {
        uid: 2,
        ..inbox.clone()
    };
    let refused = s.engage(&forged, &all).await.unwrap_err();
    assert!(
        matches!(refused, imap::ImapError::Protocol(_)),
        "{refused:?}"
    );
    s.engage(&junk, &all).await.unwrap();
    let seen_only = Actions {
        seen: true,
        file_into: Some("Warmup"),
        ..Actions::default()
    };
    s.engage(&inbox, &seen_only).await.unwrap();

    for (id, want) in [
        ("warm-junk@warm.test", ["\\Seen", "\\Flagged"].as_slice()),
        ("warm-inbox@warm.test", ["\\Seen"].as_slice()),
    ] {
        let found = s.locate(id).await.unwrap().unwrap();
        assert_eq!(
            (found.folder.as_str(), found.placement),
            ("INBOX.Warmup", Placement::Other),
            "{id}"
        );
        let got = flags(&mut own, "INBOX.Warmup", id).await.unwrap();
        for flag in want {
            assert!(got.contains(flag), "{id}: {flag} in {got}");
        }
        assert!(
            flags(&mut own, "INBOX", id).await.is_none(),
            "{id} left INBOX"
        );
        assert!(
            flags(&mut own, "INBOX.Junk", id).await.is_none(),
            "{id} left Junk"
        );
    }
    // The user's own mail is where it was, with the flags it had.
    let user_junk = flags(&mut own, "INBOX.Junk", "user-junk@else.test")
        .await
        .unwrap();
    assert!(
        !user_junk.contains("\\Seen") && !user_junk.contains("\\Flagged"),
        "{user_junk}"
    );
    let still = flags(&mut own, "INBOX", "user-inbox@else.test")
        .await
        .unwrap();
    assert_eq!(still, user_inbox_flags, "untouched");

    // Retention removes exactly the named messages.
    let removed = s
        .expunge(
            "Warmup",
            &[
                "<warm-inbox@warm.test>".to_owned(),
                "<user-inbox@else.test>".to_owned(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(removed, 1, "the user's message is not in Warmup");
    assert_eq!(s.locate("warm-inbox@warm.test").await.unwrap(), None);
    assert!(s.locate("warm-junk@warm.test").await.unwrap().is_some());
    assert!(
        flags(&mut own, "INBOX", "user-inbox@else.test")
            .await
            .is_some()
    );
    assert_eq!(
        s.expunge("No Such Folder", &["a@b".to_owned()])
            .await
            .unwrap(),
        0
    );
    s.logout().await;
    own.logout().await;

    let wrong = imap::connect(
        &trust,
        &endpoint(d.imaps, true),
        &login(PEER, "wrong password"),
    )
    .await;
    let Err(err) = wrong else {
        panic!("a wrong password logged in");
    };
    assert!(matches!(err, imap::ImapError::Auth(_)), "{err:?}");
    assert!(err.is_permanent());
    assert!(!format!("{err:?}").contains("wrong password"));
}

#[tokio::test]
async fn without_move_a_message_is_moved_by_uid_copy_and_uid_expunge_alone() {
    if !dovecot::available() {
        return;
    }
    let pair = pair();
    // Dovecot's post-login capabilities without MOVE, UIDPLUS kept.
    let no_move =
        "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ UIDPLUS";
    let d = Dovecot::provider_with(
        &[(PEER, PEER_PASSWORD)],
        SIEVE,
        &pair.cert,
        &pair.key,
        no_move,
    )
    .await;
    let lmtp = d.lmtp.unwrap();
    for (id, subject) in [
        ("user-junk@else.test", "Offer [junk-me]"),
        ("warm-junk@warm.test", "Checking in [junk-me]"),
    ] {
        lmtp_deliver(lmtp, USER, PEER, &message(id, subject))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", d.log()));
    }
    // The user's pending deletion in Junk: a plain EXPUNGE would take it.
    let mut own = Imap::tls(d.imaps, &pinned_connector(&pair.cert)).await;
    assert!(own.login(PEER, PEER_PASSWORD).await.ok());
    let caps = own.command("CAPABILITY").await.text();
    assert!(caps.contains("UIDPLUS") && !caps.contains("MOVE"), "{caps}");
    own.command("SELECT INBOX.Junk").await;
    assert!(
        own.command("UID STORE 1 +FLAGS.SILENT (\\Deleted)")
            .await
            .ok()
    );

    let trust = Trust::new(std::slice::from_ref(&pair.cert)).unwrap();
    let mut s = imap::connect(
        &trust,
        &endpoint(d.imaps, true),
        &login(PEER, PEER_PASSWORD),
    )
    .await
    .unwrap();
    let junk = s.locate("warm-junk@warm.test").await.unwrap().unwrap();
    let all = Actions {
        rescue: true,
        seen: true,
        flag: true,
        file_into: Some("Warmup"),
    };
    s.engage(&junk, &all).await.unwrap();
    let filed = s.locate("warm-junk@warm.test").await.unwrap().unwrap();
    assert_eq!(filed.folder, "INBOX.Warmup");
    let got = flags(&mut own, "INBOX.Warmup", "warm-junk@warm.test")
        .await
        .unwrap();
    assert!(got.contains("\\Seen") && got.contains("\\Flagged"), "{got}");
    assert!(
        flags(&mut own, "INBOX", "warm-junk@warm.test")
            .await
            .is_none()
    );
    let kept = flags(&mut own, "INBOX.Junk", "user-junk@else.test")
        .await
        .unwrap();
    assert!(
        kept.contains("\\Deleted"),
        "still there, still marked: {kept}"
    );
    assert_eq!(
        s.expunge("Warmup", &["warm-junk@warm.test".to_owned()])
            .await
            .unwrap(),
        1
    );
    assert!(
        flags(&mut own, "INBOX.Junk", "user-junk@else.test")
            .await
            .is_some()
    );
    s.logout().await;
    own.logout().await;
}

#[tokio::test]
async fn engagement_works_on_the_appliances_own_dovecot_over_starttls_and_imaps() {
    if !dovecot::available() {
        return;
    }
    let w = crate::domains::world().await;
    let domain = crate::inboxes::with_domain(&w, "warmimap.test").await;
    let (_, email, password) = crate::dovecot::mailbox(&w, &domain).await;
    let d = Dovecot::start(&w.app.control, w.app.dir.path()).await;
    let trust = Trust::new(std::slice::from_ref(&d.cert)).unwrap();
    let me = login(&email, &password);
    d.deliver(
        &email,
        "1772445600.M1P1.kumo",
        &message("warm-own@warm.test", "Hello"),
    );
    d.deliver(
        &email,
        "1772445601.M2P1.kumo",
        &message("user-own@else.test", "Invoice"),
    );
    // Warmup mail a filter put in Junk.
    let mut own = Imap::tls(d.imaps, &pinned_connector(&d.cert)).await;
    assert!(own.login(&email, &password).await.ok(), "{}", d.log());
    let appended = own
        .append("Junk", &message("warm-junk-own@warm.test", "Checking in"))
        .await;
    assert!(appended.ok(), "{appended:?}");

    // STARTTLS on the IMAP port.
    let mut s = imap::connect(&trust, &endpoint(d.imap, false), &me)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", d.log()));
    let found = s.locate("warm-own@warm.test").await.unwrap().unwrap();
    assert_eq!(
        (found.folder.as_str(), found.placement),
        ("INBOX", Placement::Inbox)
    );
    let actions = Actions {
        seen: true,
        flag: true,
        file_into: Some("Warmup"),
        ..Actions::default()
    };
    s.engage(&found, &actions).await.unwrap();
    s.logout().await;

    // IMAPS: the message is in the created Warmup folder, read and flagged.
    let mut s = imap::connect(&trust, &endpoint(d.imaps, true), &me)
        .await
        .unwrap();
    let filed = s.locate("warm-own@warm.test").await.unwrap().unwrap();
    assert_eq!(
        (filed.folder.as_str(), filed.placement),
        ("Warmup", Placement::Other)
    );
    let got = flags(&mut own, "Warmup", "warm-own@warm.test")
        .await
        .unwrap();
    assert!(got.contains("\\Seen") && got.contains("\\Flagged"), "{got}");
    let junk = s.locate("warm-junk-own@warm.test").await.unwrap().unwrap();
    assert_eq!(
        (junk.folder.as_str(), junk.placement),
        ("Junk", Placement::Spam)
    );
    let rescue = Actions {
        rescue: true,
        ..Actions::default()
    };
    s.engage(&junk, &rescue).await.unwrap();
    let rescued = s.locate("warm-junk-own@warm.test").await.unwrap().unwrap();
    assert_eq!(rescued.placement, Placement::Inbox);
    s.logout().await;
    let untouched = flags(&mut own, "INBOX", "user-own@else.test")
        .await
        .unwrap();
    assert!(
        !untouched.contains("\\Seen") && !untouched.contains("\\Flagged"),
        "{untouched}"
    );
    own.logout().await;
}
