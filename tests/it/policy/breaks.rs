//! Mutation tests: each row breaks `kumo-policy/init.lua` by hand in a way
//! a real kumod would refuse, and shows that the named check now fails.
//! A row whose `find` text is gone fails loudly, so the table cannot rot
//! when the policy changes. Add a row per mistake worth catching.

use super::*;
use crate::support::kumo_stub::policy_source;

/// What must fail once the policy is edited.
#[derive(Debug, Clone, Copy)]
enum Check {
    /// Loading the policy (top-level code: settings, memoize, log_hooks:new).
    Load,
    /// `pre_init` then `init` (listeners, spool, logs, log hook).
    Init,
    /// `get_queue_config` for this queue.
    QueueConfig(&'static str),
    /// `get_listener_domain` for a hosted domain on port 25.
    InboundDomain,
    /// A logged-in mailbox sends one message on port 587.
    Submission,
    /// The policy refuses, 550 5.7.1, the forged From/Sender headers of
    /// `senders::forgeries` with this label.
    RefusesForged(&'static str),
    /// The log hook retries (451) a batch the appliance answers 400.
    LogHookRetries,
    /// A message whose domain key cannot be had is refused and not
    /// counted.
    CountsOnlyQueued,
}

struct Break {
    what: &'static str,
    /// `(find, replace)` edits, applied in order; each `find` must occur.
    edits: &'static [(&'static str, &'static str)],
    check: Check,
    /// Part of the failure, so the check fails for this edit's reason.
    expect: &'static str,
}

const BREAKS: &[Break] = &[
    Break {
        what: "memoizing the DKIM signer again (kumod cannot copy a signer)",
        edits: &[
            (
                "local function dkim_signer(domain)",
                "local dkim_signer = cached('signer', '5 minutes', function(domain)",
            ),
            (
                "    key = { key_data = key.private_key_pem },\n  }\nend",
                "    key = { key_data = key.private_key_pem },\n  }\nend)",
            ),
        ],
        check: Check::Submission,
        expect: "error converting Lua nil to function",
    },
    Break {
        what: "an option start_esmtp_listener does not have",
        edits: &[(
            "    meta = { x_listener = 'inbound' },",
            "    meta = { x_listener = 'inbound' },\n    max_recipients = 100,",
        )],
        check: Check::Init,
        expect: "unknown field `max_recipients`",
    },
    Break {
        what: "relay_hosts = {} (an empty Lua table is a map, not a sequence)",
        edits: &[(
            "local NOBODY = { '255.255.255.255/32' }",
            "local NOBODY = {}",
        )],
        check: Check::Init,
        expect: "invalid type: map, expected a sequence",
    },
    Break {
        what: "a misspelt maildir protocol field",
        edits: &[(
            "maildir_path = '{{ meta.x_maildir }}',",
            "maildir_paht = '{{ meta.x_maildir }}',",
        )],
        check: Check::QueueConfig("inboxgrove.maildir"),
        expect: "did not match any variant of untagged enum DeliveryProto",
    },
    Break {
        what: "a directory mode as an octal string",
        edits: &[("dir_mode = tonumber('2770', 8),", "dir_mode = '2770',")],
        check: Check::QueueConfig("inboxgrove.maildir"),
        expect: "did not match any variant of untagged enum DeliveryProto",
    },
    Break {
        what: "a memoize ttl humantime refuses",
        edits: &[(
            "cached('mailbox', '10 seconds',",
            "cached('mailbox', '10 secs later',",
        )],
        check: Check::Load,
        expect: "expected a duration",
    },
    Break {
        what: "a memoize parameter kumo.memoize does not have",
        edits: &[(
            "    invalidate_with_epoch = true,\n  })",
            "    invalidate_with_epoch = true,\n    stale_ok = true,\n  })",
        )],
        check: Check::Load,
        expect: "unknown field `stale_ok`",
    },
    Break {
        what: "a log segment duration humantime refuses",
        edits: &[(
            "max_segment_duration = '1 minute',",
            "max_segment_duration = '1 minuet',",
        )],
        check: Check::Init,
        expect: "expected a duration",
    },
    Break {
        what: "a log_hooks:new batch size as a string",
        edits: &[("  batch_size = 100,", "  batch_size = '100',")],
        check: Check::Load,
        expect: "batch_size: expected a positive integer",
    },
    Break {
        what: "an option log_hooks:new does not have",
        edits: &[("  name = LOG_HOOK,", "  name = LOG_HOOK,\n  retries = 3,")],
        check: Check::Load,
        expect: "unexpected field 'retries'",
    },
    Break {
        what: "a log-hook queue option make_queue_config does not have",
        edits: &[(
            "queue_config = { retry_interval = '1m', max_retry_interval = '20m' },",
            "queue_config = { retry_interval = '1m', max_retries = 20 },",
        )],
        check: Check::Load,
        expect: "unknown field `max_retries`",
    },
    Break {
        what: "only the first From header goes to the send check",
        edits: &[(
            "    from_headers = msg:get_all_named_header_values 'From',",
            "    from_headers = { msg:get_first_named_header_value 'From' },",
        )],
        check: Check::RefusesForged("two From headers"),
        expect: "accepted",
    },
    Break {
        what: "Sender headers are not sent to the send check",
        edits: &[(
            "    sender_headers = msg:get_all_named_header_values 'Sender',",
            "    sender_headers = {},",
        )],
        check: Check::RefusesForged("someone else's Sender"),
        expect: "accepted",
    },
    Break {
        what: "a 4xx from the appliance bounces the log batch (the Rejection records were lost so)",
        edits: &[(
            "  kumo.reject(451, string.format('4.3.0 InboxGrove answered %d, will retry', status))",
            "  if status < 500 then\n    kumo.reject(500, '5.6.0 InboxGrove refused records')\n  end\n  kumo.reject(451, string.format('4.3.0 InboxGrove answered %d, will retry', status))",
        )],
        check: Check::LogHookRetries,
        expect: "Rejected(500",
    },
    Break {
        what: "the signer is built after the send is counted",
        edits: &[
            (
                "  local built, signer = pcall(dkim_signer, domain)\n  if not built then\n    kumo.log_error('inboxgrove: DKIM key lookup failed: ' .. tostring(signer))\n    kumo.reject(451, '4.3.0 Signing key unavailable, try again later')\n  end\n",
                "",
            ),
            (
                "  msg:set_meta('mailbox_id', mailbox_id)\n",
                "  local built, signer = pcall(dkim_signer, domain)\n  if not built then\n    kumo.reject(451, '4.3.0 Signing key unavailable, try again later')\n  end\n  msg:set_meta('mailbox_id', mailbox_id)\n",
            ),
        ],
        check: Check::CountsOnlyQueued,
        expect: "counted",
    },
    Break {
        what: "a log_oob disposition KumoMTA does not know",
        edits: &[("log_oob = 'LogThenRelay',", "log_oob = 'LogAndRelay',")],
        check: Check::InboundDomain,
        expect: "expected a boolean value or one of",
    },
];

/// `check` against a policy loaded from `source`: `Err` with what failed.
async fn run(w: &World, sender: &Mailbox, source: &str, check: Check) -> Result<(), String> {
    let stub = KumoStub::try_load_source(&config(&w.app, &w.app.control), source)?;
    // The policy logs why it refused, so the logs are part of the failure.
    let ok = |out: Outcome| match out {
        Outcome::Returned(_) => Ok(()),
        other => Err(format!("{other:?}; logs: {}", stub.state("logs"))),
    };
    // Sessions open only on listeners `init` started, as in kumod.
    let init = || -> Result<(), String> {
        ok(stub.fire("pre_init", ()))?;
        ok(stub.fire("init", ()))
    };
    match check {
        Check::Load => Ok(()),
        Check::Init => init(),
        Check::QueueConfig(queue) => {
            ok(stub.fire("get_queue_config", (queue, LuaNil, LuaNil, LuaNil)))
        }
        Check::InboundDomain => {
            init()?;
            ok(stub.fire(
                "get_listener_domain",
                ("breaks.test", "0.0.0.0:25", inbound(&stub)),
            ))
        }
        Check::Submission => {
            init()?;
            let conn = submission(&stub);
            login(&stub, &conn, sender);
            let msg = mail(&stub, &conn, &sender.email, "prospect@example.net", &[]);
            ok(stub.fire("smtp_server_message_received", (msg, conn)))
        }
        Check::RefusesForged(label) => {
            init()?;
            let conn = submission(&stub);
            login(&stub, &conn, sender);
            let (_, headers) = senders::forgeries(&sender.email)
                .into_iter()
                .find(|(why, _)| *why == label)
                .unwrap_or_else(|| panic!("no forgery {label:?}"));
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let msg = senders::with_headers(&stub, &conn, sender, &headers);
            match stub.receive(&msg, &conn) {
                Outcome::Rejected(550, text) if text.starts_with("5.7.1 ") => Ok(()),
                other => Err(format!("{label}: accepted or refused otherwise: {other:?}")),
            }
        }
        Check::LogHookRetries => log_hook_retries(w, source).await,
        Check::CountsOnlyQueued => counts_only_queued(w, source).await,
    }
}

/// The log hook against an appliance that answers every batch with 400.
async fn log_hook_retries(w: &World, source: &str) -> Result<(), String> {
    let refusing = axum::Router::new().route(
        "/kumo/v1/events",
        axum::routing::post(|| async { (axum::http::StatusCode::BAD_REQUEST, "{}") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, refusing).await });
    let stub = KumoStub::try_load_source(&config(&w.app, &url), source)?;
    let record = crate::events::record("Delivery", "breaks-1", "a@b.test", "c@d.test", json!({}));
    let hook = stub.fire(
        "make.inboxgrove.log_hook",
        ("inboxgrove.log_hook", LuaNil, LuaNil),
    );
    let LuaValue::Table(hook) = hook.value() else {
        return Err(format!("no log-hook connection: {hook:?}"));
    };
    match stub.invoke(&hook, "send_batch", stub.list(&[stub.log_message(&record)])) {
        Outcome::Rejected(451, _) => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

/// A fresh mailbox whose domain key is gone sends one message.
async fn counts_only_queued(w: &World, source: &str) -> Result<(), String> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let domain = format!("unsigned{n}.test");
    let m = mailboxes(w, &domain, 1, 50).await.remove(0);
    senders::without_dkim_key(&w.app, &domain);
    let stub = KumoStub::try_load_source(&config(&w.app, &w.app.control), source)?;
    stub.start();
    let conn = submission(&stub);
    login(&stub, &conn, &m);
    let msg = mail(&stub, &conn, &m.email, "prospect@example.net", &[]);
    let out = stub.receive(&msg, &conn);
    let counted = sent_today(&Control::of(&w.app), &m.email).await;
    match (out, counted.as_u64()) {
        (Outcome::Rejected(451, _), Some(0)) => Ok(()),
        (out, counted) => Err(format!("{out:?}, counted {counted:?}")),
    }
}

fn apply(source: &str, row: &Break) -> String {
    row.edits
        .iter()
        .fold(source.to_owned(), |text, (find, replace)| {
            assert_eq!(
                text.matches(find).count(),
                1,
                "{}: the policy no longer has exactly one {find:?}; update the row",
                row.what
            );
            text.replacen(find, replace, 1)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hand_made_break_of_the_policy_fails_a_check() {
    let w = world().await;
    // A daily limit that outlasts one submission per row.
    let sender = mailboxes(&w, "breaks.test", 1, 500).await.remove(0);
    let source = policy_source();
    for row in BREAKS {
        // The unedited policy passes the check, so the failure below is
        // the edit's doing.
        if let Err(e) = run(&w, &sender, &source, row.check).await {
            panic!(
                "{}: the unedited policy fails {:?}: {e}",
                row.what, row.check
            );
        }
        let broken = apply(&source, row);
        match run(&w, &sender, &broken, row.check).await {
            Ok(()) => panic!("{}: {:?} still passes with the edit", row.what, row.check),
            Err(e) => assert!(
                e.contains(row.expect),
                "{}: failed otherwise: {e}",
                row.what
            ),
        }
    }
}
