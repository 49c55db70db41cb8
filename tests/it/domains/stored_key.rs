//! The key InboxGrove stored signs mail that verifies against the record it
//! published: the private key in the vault and the public key in DNS match.

use std::time::Duration;

use inboxgrove::store::Store;
use inboxgrove::vault::{Slot, Vault};
use mail_auth::DkimResult;
use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use secrecy::ExposeSecret;
use serde_json::json;

use super::{TOKEN, world};
use crate::dns::dkim::{authenticator, verify};

#[tokio::test]
async fn mail_signed_with_the_stored_key_verifies_through_dns() {
    let w = world().await;
    w.zones.add_zone("signer.test");
    let (_, added) = w
        .add(json!({ "domain_name": "signer.test", "cloudflare_api_token": TOKEN }))
        .await;
    let id = added["domain_id"].as_str().unwrap().to_owned();
    let selector = added["dns_records"]["dkim_selector"]
        .as_str()
        .unwrap()
        .to_owned();
    w.until_status(&id, "active", Duration::from_secs(20)).await;

    // The private key as stored: sealed in dkim_keys, opened with the
    // data dir's master key under its own row id.
    let store = Store::open(w.app.dir.path()).unwrap();
    let (key_id, sealed): (String, Vec<u8>) = store
        .read(move |c| {
            Ok(c.query_row(
                "SELECT id, private_key FROM dkim_keys WHERE domain_id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .await
        .unwrap();
    let (vault, created) = Vault::load_or_create(w.app.dir.path()).unwrap();
    assert!(!created);
    let pem = vault
        .open(
            Slot {
                table: "dkim_keys",
                column: "private_key",
                row_id: &key_id,
            },
            &sealed,
        )
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&sealed).contains("PRIVATE KEY"),
        "sealed at rest"
    );

    let message =
        "From: Ada <ada@signer.test>\r\nTo: bob@example.net\r\nSubject: Hello\r\n\r\nHi Bob.\r\n";
    let key = RsaKey::<Sha256>::from_pkcs1_pem(std::str::from_utf8(pem.expose_secret()).unwrap())
        .unwrap();
    let signature = DkimSigner::from_key(key)
        .domain("signer.test")
        .selector(&selector)
        .headers(["From", "To", "Subject"])
        .sign(message.as_bytes())
        .unwrap();
    let signed = format!("{}{message}", signature.to_header());
    let auth = authenticator(w.dns.addr());
    assert_eq!(verify(&auth, &signed).await, DkimResult::Pass);
}
