//! The isolation sweep: every route of the public listener, taken from the
//! router's own table, called with no credential, as another member, as
//! the owner of what it names and as an admin. A route without a sample
//! here fails the sweep, so no route can be added uncovered.
//!
//! - no credential: 401 on the API, the sign-in page on the UI;
//! - another member: 404 for the owner's resources (as if they did not
//!   exist), 403 for admin routes, and never a byte of the owner's data;
//! - the owner: served (2xx/3xx; a form the handler refused with its own
//!   message counts as served for the few samples marked so);
//! - an admin: served everywhere.

use std::collections::HashMap;

use inboxgrove::http::routes::{Access, RouteInfo, Surface};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::domains::{World, world};
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, MEMBER_PASSWORD, access};
use crate::web::page_with_csrf;
use samples::{Other, Sample};

mod samples;

#[derive(Clone)]
struct Who {
    name: &'static str,
    email: String,
    password: String,
}

/// A signed-in caller: a bearer for the API, a cookie and CSRF token for
/// the UI.
struct Creds {
    bearer: String,
    cookie: String,
    csrf: String,
}

struct Iso {
    w: World,
    owner: Who,
    other: Who,
    admin: Who,
    creds: HashMap<&'static str, Creds>,
    /// The owner's domain and mailbox, named by most samples.
    domain: String,
    inbox: String,
    inbox_email: String,
    counter: std::sync::atomic::AtomicUsize,
    /// Sees redirects rather than following them.
    client: reqwest::Client,
}

impl Iso {
    fn unique(&self, stem: &str) -> String {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{stem}{n}")
    }

    async fn login(&self, who: &Who) -> Creds {
        let tokens = self.w.app.login(&who.email, &who.password).await;
        let client = &self.client;
        let res = client
            .post(format!("{}/login", self.w.app.base))
            .form(&[("email", &who.email), ("password", &who.password)])
            .send()
            .await
            .unwrap();
        let status = res.status();
        let cookie = res
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
        let Some(cookie) = cookie.filter(|_| status == StatusCode::SEE_OTHER) else {
            panic!(
                "{} signs in: {status} {}",
                who.name,
                res.text().await.unwrap()
            );
        };
        let (csrf, _) = page_with_csrf(&self.w.app, client, &cookie, "/tokens").await;
        Creds {
            bearer: access(&tokens),
            cookie,
            csrf,
        }
    }

    /// A fresh domain of the owner's, for routes that remove one.
    async fn fresh_domain(&self) -> String {
        let name = format!("{}.test", self.unique("spare"));
        self.w.zones.add_zone(&name);
        let (status, body) = self
            .w
            .app
            .post(
                "/api/v1/domains/add",
                json!({ "domain_name": name }),
                Some(&self.creds["owner"].bearer),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body["domain_id"].as_str().unwrap().to_owned()
    }

    /// A fresh mailbox of the owner's, for routes that delete one.
    async fn fresh_inbox(&self) -> String {
        let (status, body) = self
            .w
            .app
            .post(
                "/api/v1/inboxes/bulk",
                json!({ "domain_id": self.domain, "quantity": 1, "naming_scheme": "random" }),
                Some(&self.creds["owner"].bearer),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["inboxes"][0]["inbox_id"].as_str().unwrap().to_owned()
    }

    /// A fresh API token of the owner's; its id.
    async fn fresh_token(&self) -> String {
        let (status, body) = self
            .w
            .app
            .post(
                "/api/v1/tokens",
                json!({ "name": self.unique("sweep") }),
                Some(&self.creds["owner"].bearer),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// An Instantly key saved by each caller, for the routes that forget
    /// one: keys are each user's own.
    async fn save_keys(&self) {
        for creds in self.creds.values() {
            let (status, body) = self
                .w
                .app
                .call(
                    reqwest::Method::PUT,
                    "/api/v1/integrations/instantly",
                    Some(json!({ "api_key": "an-instantly-key-123" })),
                    Some(&creds.bearer),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }

    /// A warmup peer of the owner's, written as the API would (its
    /// password sealed with the server's key); its id. Its servers are on
    /// port 1, where nothing listens, so a test of it is refused.
    fn fresh_peer(&self) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let (vault, _) = inboxgrove::vault::Vault::load_or_create(self.w.app.dir.path()).unwrap();
        let sealed = vault.seal(inboxgrove::warmup::access::peer_slot(&id), b"app password");
        let db =
            rusqlite::Connection::open(inboxgrove::store::Store::path_in(self.w.app.dir.path()))
                .unwrap();
        db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        db.execute(
            "INSERT INTO warmup_peers (id, user_id, email, provider, imap_host, imap_port, smtp_host,
                                       smtp_port, username, password_sealed, created_at)
             SELECT ?1, id, ?2, 'other', '127.0.0.1', 1, '127.0.0.1', 1, ?2, ?4, '2030-01-01 00:00:00+00:00'
             FROM users WHERE email = ?3",
            rusqlite::params![&id, &format!("{}@peer.test", self.unique("peer")), &self.owner.email, sealed],
        )
        .unwrap();
        id
    }

    async fn spare_user(&self) -> String {
        let (status, body) = self
            .w
            .app
            .post(
                "/api/v1/users",
                json!({ "email": format!("{}@iso.test", self.unique("spare")), "password": MEMBER_PASSWORD }),
                Some(&self.creds["admin"].bearer),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    async fn export_link(&self) -> String {
        let (status, body) = self
            .w
            .app
            .post(
                "/api/v1/inboxes/export",
                json!({ "domain_id": self.domain, "format": "generic_csv" }),
                Some(&self.creds["owner"].bearer),
            )
            .await;
        assert!(status.is_success(), "{body}");
        let url = body["file_url"].as_str().unwrap();
        url.rsplit('/').next().unwrap().to_owned()
    }

    /// Calls `r` as `who` (None: no credential); status, Location, body.
    async fn call(
        &self,
        r: &RouteInfo,
        s: &Sample,
        who: Option<&Who>,
    ) -> (StatusCode, String, String) {
        let fresh;
        let creds = match who {
            Some(w) if s.fresh => {
                fresh = self.login(w).await;
                Some(&fresh)
            }
            Some(w) => Some(&self.creds[w.name]),
            None => None,
        };
        let url = format!("{}{}", self.w.app.base, s.path);
        let mut req = self.client.request(r.method.clone(), url);
        req = match (r.surface, creds) {
            (Surface::Api, Some(c)) => req.bearer_auth(&c.bearer),
            (Surface::Web, Some(c)) => req
                .header("cookie", &c.cookie)
                .header("x-csrf-token", &c.csrf),
            (_, None) => req,
        };
        if let Some(body) = &s.body {
            req = match r.surface {
                Surface::Api => req.json(body),
                Surface::Web => {
                    let pairs: Vec<(String, String)> = body
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect();
                    req.form(&pairs)
                }
            };
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let location = res
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, location, res.text().await.unwrap_or_default())
    }
}

async fn setup() -> Iso {
    let w = world().await;
    let owner = Who {
        name: "owner",
        email: "owner@iso.test".into(),
        password: MEMBER_PASSWORD.into(),
    };
    let other = Who {
        name: "other",
        email: "other@iso.test".into(),
        password: MEMBER_PASSWORD.into(),
    };
    let admin = Who {
        name: "admin",
        email: ADMIN_EMAIL.into(),
        password: ADMIN_PASSWORD.into(),
    };
    for who in [&owner, &other] {
        let (status, body) = w
            .app
            .post(
                "/api/v1/users",
                json!({ "email": who.email, "password": who.password }),
                Some(&w.admin),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        // The sweep makes more domains and mailboxes than a free plan has.
        let path = format!("/api/v1/users/{}", body["id"].as_str().unwrap());
        let (status, body) = w
            .app
            .call(
                reqwest::Method::PATCH,
                &path,
                Some(json!({ "subscription_tier": "enterprise" })),
                Some(&w.admin),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let mut iso = Iso {
        w,
        owner,
        other,
        admin,
        creds: HashMap::new(),
        domain: String::new(),
        inbox: String::new(),
        inbox_email: String::new(),
        counter: Default::default(),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    };
    for who in [iso.owner.clone(), iso.other.clone(), iso.admin.clone()] {
        let creds = iso.login(&who).await;
        iso.creds.insert(who.name, creds);
    }
    iso.domain = iso.fresh_domain().await;
    let (status, body) = iso
        .w
        .app
        .post(
            "/api/v1/inboxes/bulk",
            json!({ "domain_id": iso.domain, "quantity": 1, "naming_scheme": "random" }),
            Some(&iso.creds["owner"].bearer),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    iso.inbox = body["inboxes"][0]["inbox_id"].as_str().unwrap().to_owned();
    iso.inbox_email = body["inboxes"][0]["email"].as_str().unwrap().to_owned();
    iso
}

fn served(status: StatusCode) -> bool {
    status.is_success() || status.is_redirection()
}

#[tokio::test]
async fn every_route_keeps_strangers_out_and_members_apart() {
    let iso = setup().await;
    let routes = iso.w.app.routes.clone();
    assert!(routes.len() > 60, "the router's table: {routes:?}");
    let missing: Vec<String> = {
        let mut m = Vec::new();
        for r in &routes {
            if iso.sample(r).await.is_none() {
                m.push(format!("{:?} {} {}", r.surface, r.method, r.path));
            }
        }
        m
    };
    assert!(
        missing.is_empty(),
        "routes without a sample in the sweep: {missing:?}"
    );
    // What the other member must never see of the owner's.
    let secrets = [
        iso.domain.clone(),
        iso.inbox.clone(),
        iso.inbox_email.clone(),
    ];
    let (_, me) = iso
        .w
        .app
        .get("/api/v1/me", &iso.creds["other"].bearer)
        .await;
    let other_id = me["id"].clone();

    for r in &routes {
        let what = format!("{:?} {} {}", r.surface, r.method, r.path);
        let s = iso.sample(r).await.unwrap();
        let (status, location, body) = iso.call(r, &s, None).await;
        if r.access == Access::Anyone {
            assert!(
                status != StatusCode::UNAUTHORIZED && !status.is_server_error(),
                "{what} with no credential: {status} {body}"
            );
            continue;
        }
        match r.surface {
            Surface::Api => assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}"),
            Surface::Web => assert!(
                status == StatusCode::SEE_OTHER && location == "/login",
                "{what} with no session: {status} {location}"
            ),
        }

        let s = iso.sample(r).await.unwrap();
        let (status, _, body) = iso.call(r, &s, Some(&iso.other)).await;
        match (r.access, s.other) {
            (Access::Admin, _) => {
                assert_eq!(status, StatusCode::FORBIDDEN, "{what} as a member: {body}")
            }
            (_, Other::NotFound) => {
                assert_eq!(
                    status,
                    StatusCode::NOT_FOUND,
                    "{what} as another member: {body}"
                )
            }
            (_, Other::OwnData) => {
                assert!(
                    served(status) || s.owner_refusable,
                    "{what} as another member: {status} {body}"
                );
            }
        }
        if s.audit {
            if r.surface == Surface::Api {
                let page: Value = serde_json::from_str(&body).unwrap();
                for row in page["items"].as_array().unwrap() {
                    assert_eq!(row["user_id"], other_id, "{what}: another's row {row}");
                }
            } else {
                assert!(!body.contains(&iso.owner.email), "{what}: {body}");
            }
            owner_and_admin_are_served(&iso, r, &what).await;
            continue;
        }
        for secret in &secrets {
            assert!(
                !body.contains(secret.as_str()),
                "{what} showed another member the owner's {secret}: {body}"
            );
        }

        owner_and_admin_are_served(&iso, r, &what).await;
    }
    // The other member's own calls did not touch the owner's things.
    let (status, _) = iso
        .w
        .app
        .get(
            &format!("/api/v1/inboxes/{}", iso.inbox),
            &iso.creds["owner"].bearer,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// The owner and an admin are served.
async fn owner_and_admin_are_served(iso: &Iso, r: &RouteInfo, what: &str) {
    if r.access == Access::Member {
        let s = iso.sample(r).await.unwrap();
        let (status, _, body) = iso.call(r, &s, Some(&iso.owner)).await;
        let refused_by_handler = s.owner_refusable
            && status.is_client_error()
            && ![
                StatusCode::UNAUTHORIZED,
                StatusCode::FORBIDDEN,
                StatusCode::NOT_FOUND,
            ]
            .contains(&status);
        assert!(
            served(status) || refused_by_handler,
            "{what} as the owner: {status} {body}"
        );
    }

    let s = iso.sample(r).await.unwrap();
    let (status, _, body) = iso.call(r, &s, Some(&iso.admin)).await;
    let refused_by_handler =
        s.owner_refusable && status.is_client_error() && status != StatusCode::UNAUTHORIZED;
    assert!(
        served(status) || refused_by_handler,
        "{what} as an admin: {status} {body}"
    );
}
