//! A domain's mail bound to one of the server's addresses: only a public
//! address this machine has, and KumoMTA is told the pool it sends through.

use super::*;
use crate::inboxes::{Control, with_domain};
use crate::web::{form_sign_in, page_with_csrf};

/// 127.0.0.1 stands for a public address the machine really has;
/// 2001:db8::7 is configured as public but is on no interface here.
async fn two_public_addresses() -> World {
    world_around(Options {
        domains: DomainArgs {
            public_ipv4: Some("127.0.0.1".parse().unwrap()),
            public_ipv6: Some("2001:db8::7".parse().unwrap()),
            ..Default::default()
        },
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn a_domain_sends_from_a_bound_address_only_if_it_is_public_and_ours() {
    let w = two_public_addresses().await;
    let id = with_domain(&w, "egress.test").await;
    let kumo = Control::of(&w.app);
    let patch = |body: Value| {
        let path = format!("/api/v1/domains/{id}");
        let (app, admin) = (&w.app, w.admin.clone());
        async move {
            app.call(Method::PATCH, &path, Some(body), Some(&admin))
                .await
        }
    };
    let pool = || async {
        let (status, d) = kumo.call(Method::GET, "/domains/egress.test", None).await;
        assert_eq!(status, StatusCode::OK, "{d}");
        d["egress_pool"].as_str().unwrap().to_owned()
    };
    assert_eq!(pool().await, "inboxgrove");

    // Not a public address of this server: SPF would fail for it.
    let (status, body) = patch(json!({ "egress_ip": "198.51.100.9" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "egress_ip", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1"),
        "{body}"
    );
    // Public, but this machine cannot send from it.
    let (status, body) = patch(json!({ "egress_ip": "2001:db8::7" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no interface"),
        "{body}"
    );
    let (status, body) = patch(json!({ "egress_ip": "not an address" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(pool().await, "inboxgrove", "nothing was saved");

    let (status, body) = patch(json!({ "egress_ip": "127.0.0.1" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["egress_ip"], "127.0.0.1");
    assert_eq!(
        body["status"], "awaiting_dns",
        "the records stand as they were"
    );
    assert_eq!(pool().await, "ip-127-0-0-1");
    // The plan KumoMTA asks for names that pool and binds its address.
    let (_, plan) = kumo.call(Method::GET, "/egress", None).await;
    let source = plan["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "ip-127-0-0-1")
        .unwrap_or_else(|| panic!("{plan}"));
    assert_eq!(source["source_address"], "127.0.0.1");
    let pools: Vec<&str> = plan["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(pools, ["inboxgrove", "ip-127-0-0-1", "ip-2001-db8--7"]);

    // Back to the default.
    let (status, body) = patch(json!({ "egress_ip": null })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["egress_ip"], Value::Null);
    assert_eq!(pool().await, "inboxgrove");
}

#[tokio::test]
async fn the_domain_page_binds_the_address_and_says_why_one_cannot_be() {
    let w = two_public_addresses().await;
    let id = with_domain(&w, "page.test").await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = form_sign_in(&w.app, &client).await;
    let page_path = format!("/domains/{id}");
    let (csrf, page) = page_with_csrf(&w.app, &client, &cookie, &page_path).await;
    for choice in ["127.0.0.1", "2001:db8::7"] {
        assert!(
            page.contains(&format!("<option value=\"{choice}\">")),
            "{page}"
        );
    }
    let post = |ip: &'static str| {
        let (client, cookie, csrf) = (client.clone(), cookie.clone(), csrf.clone());
        let url = format!("{}/domains/{id}/egress", w.app.base);
        async move {
            let res = client
                .post(url)
                .header("cookie", cookie)
                .form(&[("_csrf", csrf.as_str()), ("egress_ip", ip)])
                .send()
                .await
                .unwrap();
            (res.status(), res.text().await.unwrap())
        }
    };

    let (status, _) = post("127.0.0.1").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(w.domain(&id).await["egress_ip"], "127.0.0.1");
    let (_, page) = page_with_csrf(&w.app, &client, &cookie, &page_path).await;
    assert!(
        page.contains("<option value=\"127.0.0.1\" selected>"),
        "{page}"
    );

    // An address this machine does not have: refused, in words, and the
    // binding stays as it was.
    let (status, page) = post("2001:db8::7").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("no interface with 2001:db8::7"), "{page}");
    assert_eq!(w.domain(&id).await["egress_ip"], "127.0.0.1");

    let (status, _) = post("").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(w.domain(&id).await["egress_ip"], Value::Null);
}
