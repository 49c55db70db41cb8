//! `Submitter` through the SMTP sink: STARTTLS or implicit TLS, AUTH
//! PLAIN, answers per message, certificate checks, connection reuse.

use std::sync::Arc;

use inboxgrove::warmup::Endpoint;
use inboxgrove::warmup::smtp::{SmtpError, Submitter};
use inboxgrove::warmup::tls::Trust;

use super::{PASSWORD, Pair, USER, endpoint, login, message, pair};
use crate::support::smtp_sink::{Hooks, Security, SmtpSink};

/// A sink that accepts `USER`/`PASSWORD` and answers by recipient: bounce@
/// 550, later@ 451, anyone else 250.
async fn sink(pair: &Pair) -> SmtpSink {
    let hooks = Hooks {
        deliver: Arc::new(|envelope| {
            Box::pin(async move {
                match envelope.rcpts[0].split('@').next() {
                    Some("bounce") => Err((550, "5.1.1 no such user".into())),
                    Some("later") => Err((451, "4.3.0 try again later".into())),
                    _ => Ok(()),
                }
            })
        }),
        ..Hooks::accept_all(USER, PASSWORD)
    };
    SmtpSink::start(&pair.cert, &pair.key, hooks).await
}

fn submitter(cert: &std::path::Path) -> Submitter {
    Submitter::new(
        Trust::new(&[cert.to_owned()]).unwrap(),
        "client.test".into(),
    )
}

#[tokio::test]
async fn submission_uses_starttls_and_auth_plain_and_reuses_its_connections() {
    let pair = pair();
    let sink = sink(&pair).await;
    let submitter = submitter(&pair.cert);
    let at = endpoint(sink.addr, false);
    let me = login(USER, PASSWORD);

    let raw = message("one@warm.test", "Quick question");
    submitter
        .send(&at, &me, USER, "peer@provider.test", &raw)
        .await
        .unwrap();
    let got = sink.accepted();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].authn.as_deref(), Some(USER));
    assert_eq!(got[0].mail_from, USER);
    assert_eq!(got[0].rcpts, ["peer@provider.test"]);
    assert_eq!(got[0].data, raw, "sent as given, dot-stuffing undone");

    // Sequential sends ride the one authenticated connection.
    for i in 0..20 {
        let raw = message(&format!("seq-{i}@warm.test"), "Following up");
        submitter
            .send(&at, &me, USER, "peer@provider.test", &raw)
            .await
            .unwrap();
    }
    assert_eq!(sink.connections(), 1, "one TCP connection for 21 messages");

    // Concurrent sends open more, but never more than the pool's bound
    // (64) at once, however many wait.
    let sends = (0..150).map(|i| {
        let (submitter, at, me) = (&submitter, &at, &me);
        async move {
            let raw = message(&format!("par-{i}@warm.test"), "Lunch?");
            submitter
                .send(at, me, USER, "peer@provider.test", &raw)
                .await
        }
    });
    for result in futures_util::future::join_all(sends).await {
        result.unwrap();
    }
    assert_eq!(sink.accepted().len(), 171);
    assert!(
        sink.most_open() > 1 && sink.most_open() <= 64,
        "{} open at once",
        sink.most_open()
    );
    let before = sink.connections();
    for i in 0..20 {
        let raw = message(&format!("after-{i}@warm.test"), "Again");
        submitter
            .send(&at, &me, USER, "peer@provider.test", &raw)
            .await
            .unwrap();
    }
    assert_eq!(sink.connections(), before, "pooled connections are reused");

    // The add-a-peer check logs in on a connection of its own.
    submitter.check(&at, &me).await.unwrap();
    assert_eq!(sink.connections(), before + 1);
}

#[tokio::test]
async fn a_refused_login_and_refused_or_deferred_messages_are_told_apart() {
    let pair = pair();
    let sink = sink(&pair).await;
    let submitter = submitter(&pair.cert);
    let at = endpoint(sink.addr, false);
    let raw = message("two@warm.test", "Hello");

    let wrong = login(USER, "not the password");
    for err in [
        submitter.check(&at, &wrong).await.unwrap_err(),
        submitter
            .send(&at, &wrong, USER, "peer@provider.test", &raw)
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(err, SmtpError::Auth(_)), "{err:?}");
        assert!(err.is_permanent());
        assert!(
            !format!("{err} {err:?}").contains("not the password"),
            "{err:?}"
        );
    }

    let me = login(USER, PASSWORD);
    let err = submitter
        .send(&at, &me, USER, "bounce@provider.test", &raw)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SmtpError::Refused { code: 550, message } if message.contains("no such user")),
        "{err:?}"
    );
    assert!(err.is_permanent());
    let err = submitter
        .send(&at, &me, USER, "later@provider.test", &raw)
        .await
        .unwrap_err();
    assert!(
        matches!(err, SmtpError::Deferred { code: 451, .. }),
        "{err:?}"
    );
    assert!(!err.is_permanent());
    // A refusal leaves the submitter fit for the next message.
    submitter
        .send(&at, &me, USER, "peer@provider.test", &raw)
        .await
        .unwrap();
    assert_eq!(
        sink.accepted().len(),
        1,
        "only the accepted message is kept"
    );
    let err = submitter
        .send(&at, &me, "not an address", "peer@provider.test", &raw)
        .await
        .unwrap_err();
    assert!(matches!(err, SmtpError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn a_certificate_that_is_not_trusted_or_not_for_the_name_is_a_tls_error() {
    let (served, other) = (pair(), pair());
    let sink = sink(&served).await;
    let me = login(USER, PASSWORD);
    let raw = message("three@warm.test", "Hello");
    let at = endpoint(sink.addr, false);

    let err = submitter(&other.cert)
        .send(&at, &me, USER, "peer@provider.test", &raw)
        .await
        .unwrap_err();
    assert!(matches!(err, SmtpError::Tls(_)), "{err:?}");
    assert!(!err.is_permanent());

    let trusting = submitter(&served.cert);
    let wrong_name = Endpoint {
        tls_name: "smtp.elsewhere.test".into(),
        ..at.clone()
    };
    let err = trusting.check(&wrong_name, &me).await.unwrap_err();
    assert!(matches!(err, SmtpError::Tls(_)), "{err:?}");
    // Implicit TLS against a STARTTLS port fails before any login.
    let implicit = Endpoint {
        implicit_tls: true,
        ..at
    };
    let err = trusting.check(&implicit, &me).await.unwrap_err();
    assert!(
        matches!(err, SmtpError::Tls(_) | SmtpError::Connect(_)),
        "{err:?}"
    );
    assert!(sink.accepted().is_empty());
}

#[tokio::test]
async fn implicit_tls_works_and_a_server_without_tls_never_sees_the_login() {
    let pair = pair();
    let me = login(USER, PASSWORD);
    let raw = message("four@warm.test", "Hello");
    let implicit = SmtpSink::start_with(
        &pair.cert,
        &pair.key,
        Hooks::accept_all(USER, PASSWORD),
        Security::Implicit,
    )
    .await;
    let submitter = submitter(&pair.cert);
    submitter
        .send(
            &endpoint(implicit.addr, true),
            &me,
            USER,
            "peer@provider.test",
            &raw,
        )
        .await
        .unwrap();
    assert_eq!(implicit.accepted()[0].data, raw);

    let tried = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hooks = Hooks {
        auth: Arc::new({
            let tried = tried.clone();
            move |_, _| {
                tried.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                true
            }
        }),
        ..Hooks::accept_all(USER, PASSWORD)
    };
    let plain = SmtpSink::start_with(&pair.cert, &pair.key, hooks, Security::Plain).await;
    let err = submitter
        .send(
            &endpoint(plain.addr, false),
            &me,
            USER,
            "peer@provider.test",
            &raw,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SmtpError::Tls(why) if why.contains("STARTTLS")),
        "{err:?}"
    );
    assert_eq!(
        tried.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no AUTH in clear"
    );
    assert!(plain.accepted().is_empty());
}
