//! Every template rendered with edge-case data: empty lists, very long
//! names, and HTML in names (which must come out escaped).

use std::sync::Arc;

use askama::Template;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::assets;
use super::audit::{AuditPage, AuditQuery};
use super::auth::LoginPage;
use super::dashboard::{Alert, DashboardPage, Summary};
use super::domains::{
    self, ListPage as DomainList, NewPage as DomainNew, RecordsFragment, ShowPage,
};
use super::exports::{ExportPage, FORMATS, PushedFragment};
use super::inboxes::{self, CreatedFragment, ListPage as InboxList, ListQuery, TableFragment};
use super::settings::{SettingsPage, TokensPage, UsersPage};
use super::{Chrome, ErrorPage, ErrorPartial};
use crate::clock::SystemClock;
use crate::config::DomainSettings;
use crate::config::Origins;
use crate::domains::model::{DnsMode, DomainStatus, RecordState};
use crate::domains::plan::{DmarcPolicy, PlannedRecord, Purpose, RecordType};
use crate::domains::service::{DomainView, Summary as DnsSummary};
use crate::exports::push::{KeyStatus, MailboxResult, Outcome, PushReport, Tool};
use crate::http::ServerInfo;
use crate::inboxes::service::{BulkResponse, CreatedInbox};
use crate::settings::{LiveSettings, View};
use crate::store::Store;
use crate::store::api_tokens::ApiToken;
use crate::store::audit::AuditRow;
use crate::store::domains::{Domain, RecordRow};
use crate::store::mailboxes::Mailbox;
use crate::store::users::User;
use crate::types::{Role, SubscriptionTier};
use crate::vault::Vault;

const EVIL: &str = "<script>alert(1)</script>";
const ESCAPED: &str = "&#60;script&#62;alert(1)&#60;/script&#62;";

fn long() -> String {
    format!("{}.example.com", "very-long-label".repeat(20))
}

fn when() -> DateTime<Utc> {
    DateTime::from_timestamp(1_900_000_000, 0).unwrap()
}

fn chrome() -> Chrome {
    Chrome {
        signed_in: true,
        email: format!("{EVIL}@example.com"),
        is_admin: true,
        csrf: "ab12".into(),
        nav: "domains",
        change_password: true,
        links: assets::links(),
    }
}

/// The server settings with `tracking` as the configured tracking host
/// and a token set.
fn settings_view(tracking: &str) -> View {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (vault, _) = Vault::load_or_create(dir.path()).unwrap();
    let live = LiveSettings::new(
        store,
        Arc::new(vault),
        Arc::new(SystemClock),
        DomainSettings {
            tracking_host: Some(tracking.into()),
            cloudflare_api_token: Some("cf-secret-token".into()),
            ..Default::default()
        },
        chrono_tz::UTC,
        Origins::default(),
    );
    live.view()
}

fn domain(name: &str) -> Domain {
    Domain {
        id: Uuid::new_v4(),
        user_id: Uuid::new_v4(),
        domain_name: name.into(),
        status: DomainStatus::AwaitingDns,
        dns_mode: DnsMode::Manual,
        cloudflare_zone_id: None,
        cloudflare_account_id: None,
        has_own_token: false,
        zone_name_servers: vec![],
        tracking_domain: Some(format!("track.{EVIL}")),
        dmarc_policy: DmarcPolicy::None,
        egress_ip: None,
        last_error: Some(format!("the TXT record says {EVIL}")),
        checks_since: None,
        verified_at: None,
        activated_at: None,
        created_at: when(),
        updated_at: when(),
    }
}

/// A manual domain awaiting DNS with one mismatched record (the doctor
/// tests use it too).
pub(crate) fn view(name: &str) -> DomainView {
    let d = domain(name);
    DomainView {
        domain_id: d.id,
        dns_records: DnsSummary {
            spf: None,
            dkim_selector: None,
            dkim_public_key: None,
            dmarc: None,
        },
        dns_note: format!("Manual DNS for {EVIL}"),
        propagation_status: "awaiting_dns",
        estimated_ready_time: None,
        records: vec![RecordRow {
            record: PlannedRecord {
                purpose: Purpose::Spf,
                record_type: RecordType::TXT,
                name: name.into(),
                content: format!("v=spf1 {EVIL} -all"),
                priority: None,
            },
            status: RecordState::Mismatch,
            observed: vec![EVIL.into()],
            checked_at: None,
        }],
        domain: d,
    }
}

fn mailbox(email: &str) -> Mailbox {
    Mailbox {
        id: Uuid::new_v4(),
        domain_id: Uuid::new_v4(),
        user_id: Uuid::new_v4(),
        email: email.into(),
        username: "x".into(),
        first_name: EVIL.into(),
        last_name: long(),
        daily_limit: 40,
        emails_sent_today: 3,
        last_reset_date: None,
        health_score: 97.5,
        status: "paused".into(),
        total_sent: 0,
        delivered: 0,
        bounced_hard: 0,
        bounced_soft: 0,
        complaints: 0,
        deferrals: 0,
        refused_logins: 0,
        refused_messages: 0,
        unmatched_reports: 0,
        last_send_at: None,
        created_at: when(),
        updated_at: when(),
    }
}

fn audit_row() -> AuditRow {
    AuditRow {
        id: Uuid::new_v4(),
        user_id: None,
        action: format!("POST /domains/{EVIL}"),
        resource_type: Some(EVIL.into()),
        resource_id: Some(long()),
        status: "failure".into(),
        metadata: serde_json::Value::Null,
        client_ip: Some("192.0.2.1".into()),
        request_id: None,
        created_at: when(),
    }
}

/// Rendered, with no raw markup from the data and the escaped form present.
fn pushed() -> PushedFragment {
    let result = |outcome, message: Option<&str>| MailboxResult {
        mailbox_id: Uuid::new_v4(),
        email: format!("{EVIL}@{}", long()),
        outcome,
        message: message.map(str::to_owned),
    };
    PushedFragment {
        report: PushReport {
            tool: Tool::Instantly,
            created: 1,
            already_exists: 1,
            failed: 1,
            key_saved: false,
            results: vec![
                result(Outcome::Created, None),
                result(Outcome::AlreadyExists, None),
                result(Outcome::Failed, Some(EVIL)),
            ],
        },
        label: "Instantly",
    }
}

fn check(html: &str) {
    assert!(!html.contains(EVIL), "unescaped: {html}");
    assert!(html.contains(ESCAPED), "escaped form missing: {html}");
}

#[test]
fn pages_escape_html_in_names_and_take_long_ones() {
    let name = format!("{EVIL}{}", long());
    check(
        &ErrorPage {
            chrome: chrome(),
            status: 404,
            message: EVIL,
        }
        .render()
        .unwrap(),
    );
    check(&ErrorPartial { message: EVIL }.render().unwrap());
    check(
        &LoginPage {
            chrome: Chrome::anonymous(),
            email: EVIL.into(),
            error: Some(EVIL.into()),
        }
        .render()
        .unwrap(),
    );
    check(
        &DomainList {
            chrome: chrome(),
            items: vec![view(&name)],
        }
        .render()
        .unwrap(),
    );
    let form = domains::AddForm {
        domain_name: EVIL.into(),
        ..Default::default()
    };
    check(
        &DomainNew {
            chrome: chrome(),
            form,
            error: Some(EVIL.into()),
            has_server_token: true,
            server_token_withheld: false,
        }
        .render()
        .unwrap(),
    );
    let v = view(&name);
    let shown = ShowPage {
        chrome: chrome(),
        records: RecordsFragment::of(&v),
        view: v,
        egress_choices: vec!["203.0.113.7".into(), "2001:db8::7".into()],
        egress_current: "2001:db8::7".into(),
        certificate: domains::MailHostCertificate {
            host: Some(EVIL.into()),
            bundle: None,
            error: Some(EVIL.into()),
            uncovered: crate::tls::mail::UNCOVERED,
        },
    }
    .render()
    .unwrap();
    check(&shown);
    assert!(
        shown.contains("<option value=\"2001:db8::7\" selected>"),
        "the bound address is the one selected"
    );
    assert!(shown.contains("<option value=\"\">the server's default route"));
    assert!(
        shown.contains("hx-trigger=\"every 2s\""),
        "awaiting DNS polls"
    );
    let table = TableFragment {
        items: vec![mailbox(&format!("{EVIL}@{}", long()))],
        total: 120,
        page: 2,
        pages: 3,
        filters: "q=a%3Cb".into(),
        warmup: Default::default(),
    };
    let list = InboxList {
        chrome: chrome(),
        query: ListQuery {
            q: Some(EVIL.into()),
            ..Default::default()
        },
        domains: vec![domain(EVIL)],
        statuses: ["active", "warming", "paused", "blacklisted"],
        table,
    }
    .render()
    .unwrap();
    check(&list);
    assert!(list.contains("Page 2 of 3") && list.contains("Resume"));
    check(
        &inboxes::ShowPage {
            chrome: chrome(),
            m: mailbox(EVIL),
            new_password: Some(EVIL.into()),
        }
        .render()
        .unwrap(),
    );
    let created = BulkResponse {
        created_count: 1,
        inboxes: vec![CreatedInbox {
            inbox_id: Uuid::new_v4(),
            email: EVIL.into(),
            first_name: EVIL.into(),
            last_name: long(),
            password: "pw".into(),
            smtp_host: "mail.x".into(),
            smtp_port: 587,
            imap_host: "mail.x".into(),
            imap_port: 993,
            daily_limit: 40,
            health_score: 100.0,
            status: "warming",
        }],
        export_csv_url: None,
        warmup_schedule: None,
    };
    check(
        &CreatedFragment {
            created,
            download: "/api/v1/exports/ige_x".into(),
        }
        .render()
        .unwrap(),
    );
    check(
        &ExportPage {
            chrome: chrome(),
            domains: vec![domain(EVIL)],
            formats: FORMATS,
            ready: None,
            link: String::new(),
            keys: vec![KeyStatus {
                tool: Tool::Smartlead,
                label: Tool::Smartlead.label(),
                saved: true,
                hint: Some(EVIL.into()),
                updated_at: Some(when()),
            }],
            any_saved: true,
            pushed: Some(pushed()),
        }
        .render()
        .unwrap(),
    );
    // The tool's own words and the address are escaped in the results.
    let results = pushed().render().unwrap();
    check(&results);
    assert!(results.contains("already there") && results.contains("1 failed"));
    // A tracking host from the config file is not parsed, so it may hold
    // anything; it is escaped both in the admin's form and the member's
    // read-only view, as are the messages.
    let info = ServerInfo {
        public_url: EVIL.into(),
        ..Default::default()
    };
    let server = settings_view(EVIL);
    for is_admin in [true, false] {
        let page = SettingsPage {
            chrome: Chrome {
                is_admin,
                ..chrome()
            },
            info: info.clone(),
            server: server.clone(),
            saved: true,
            server_error: Some(EVIL.into()),
            error: Some(EVIL.into()),
        }
        .render()
        .unwrap();
        check(&page);
        assert!(page.contains("server-settings-form") == is_admin, "{page}");
        assert!(!page.contains("cf-secret-token"), "{page}");
    }
    let token = ApiToken {
        id: Uuid::new_v4(),
        user_id: Uuid::new_v4(),
        name: EVIL.into(),
        prefix: "igt_abc".into(),
        expires_at: None,
        created_at: when(),
    };
    check(
        &TokensPage {
            chrome: chrome(),
            tokens: vec![token],
            created: Some("igt_secret".into()),
        }
        .render()
        .unwrap(),
    );
    let user = User {
        id: Uuid::new_v4(),
        email: EVIL.into(),
        role: Role::Member,
        subscription_tier: SubscriptionTier::Free,
        disabled: true,
        may_use_server_token: false,
        created_at: when(),
        updated_at: when(),
    };
    check(
        &UsersPage {
            chrome: chrome(),
            users: vec![user],
            tiers: vec![crate::store::tiers::Tier {
                tier: SubscriptionTier::Free,
                limits: Default::default(),
                updated_at: None,
            }],
            tier_error: Some((SubscriptionTier::Free, EVIL.into())),
        }
        .render()
        .unwrap(),
    );
    check(
        &AuditPage {
            chrome: chrome(),
            query: AuditQuery {
                action: Some(EVIL.into()),
                ..Default::default()
            },
            rows: vec![audit_row()],
            older: Some("before=x".into()),
        }
        .render()
        .unwrap(),
    );
    let alert = Alert {
        subject: EVIL.into(),
        message: long(),
        href: "/domains/x".into(),
    };
    let summary = Summary {
        domains: vec![("active".into(), 2)],
        inboxes: vec![],
        sent_today: 5,
        capacity: 80,
        alerts: vec![alert],
        audit: vec![audit_row()],
    };
    check(
        &DashboardPage {
            chrome: chrome(),
            summary,
        }
        .render()
        .unwrap(),
    );
}

#[test]
fn empty_lists_say_so() {
    let dash = DashboardPage {
        chrome: chrome(),
        summary: Summary {
            domains: vec![],
            inboxes: vec![],
            sent_today: 0,
            capacity: 0,
            alerts: vec![],
            audit: vec![],
        },
    }
    .render()
    .unwrap();
    assert!(
        dash.contains("No domains yet")
            && dash.contains("Nothing needs attention")
            && dash.contains("No activity yet")
    );
    let domains = DomainList {
        chrome: chrome(),
        items: vec![],
    }
    .render()
    .unwrap();
    assert!(domains.contains("No domains yet"));
    let table = TableFragment {
        items: vec![],
        total: 0,
        page: 1,
        pages: 1,
        filters: String::new(),
        warmup: Default::default(),
    }
    .render()
    .unwrap();
    assert!(table.contains("No inboxes match") && !table.contains("Page 1"));
    let new = super::inboxes::NewPage {
        chrome: chrome(),
        domains: vec![],
        selected: None,
    }
    .render()
    .unwrap();
    assert!(new.contains("You need a domain first"));
    let tokens = TokensPage {
        chrome: chrome(),
        tokens: vec![],
        created: None,
    }
    .render()
    .unwrap();
    assert!(tokens.contains("No API tokens"));
    let audit = AuditPage {
        chrome: chrome(),
        query: AuditQuery::default(),
        rows: vec![],
        older: None,
    }
    .render()
    .unwrap();
    assert!(audit.contains("No entries"));
}

#[test]
fn signed_out_pages_carry_no_csrf_header_and_load_only_local_assets() {
    let login = LoginPage {
        chrome: Chrome::anonymous(),
        email: String::new(),
        error: None,
    }
    .render()
    .unwrap();
    assert!(!login.contains("hx-headers"));
    assert!(!login.contains("<script>") && login.contains("src=\"/assets/htmx.min.js?v="));
    let page = DomainList {
        chrome: chrome(),
        items: vec![],
    }
    .render()
    .unwrap();
    // Escaped quotes: the browser decodes them before htmx reads the JSON.
    assert!(
        page.contains("hx-headers='{&#34;x-csrf-token&#34;: &#34;ab12&#34;}'"),
        "{page}"
    );
}
