//! What lies on disk: sealed secrets, hashed tokens, a private master key.

use std::os::unix::fs::PermissionsExt;

use inboxgrove::store::Store;
use inboxgrove::vault::{Slot, Vault};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::helpers::*;

/// The database and its WAL, as bytes, after a checkpoint.
pub fn db_bytes(dir: &std::path::Path) -> Vec<u8> {
    let conn = rusqlite_conn(dir);
    conn.execute_batch("PRAGMA wal_checkpoint(FULL);").unwrap();
    let mut bytes = std::fs::read(dir.join("inboxgrove.db")).unwrap();
    if let Ok(wal) = std::fs::read(dir.join("inboxgrove.db-wal")) {
        bytes.extend(wal);
    }
    bytes
}

fn rusqlite_conn(dir: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("inboxgrove.db")).unwrap()
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn sealed_secrets_never_reach_the_disk_in_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (vault, _) = Vault::load_or_create(dir.path()).unwrap();
    let secret = "cf-api-token-6b0e0c1f-KNOWN-PLAINTEXT";
    let (user, domain) = ("u-1", "d-1");
    let slot = Slot {
        table: "domains",
        column: "cloudflare_api_token",
        row_id: domain,
    };
    let sealed = vault.seal(slot, secret.as_bytes());
    store
        .write(move |tx| {
            tx.execute(
                "INSERT INTO users (id, email, password_hash, role, created_at, updated_at)
                 VALUES (?1, 'x@example.com', 'h', 'member', '2026-01-01', '2026-01-01')",
                [user],
            )?;
            tx.execute(
                "INSERT INTO domains (id, user_id, domain_name, dns_mode, cloudflare_api_token, created_at, updated_at)
                 VALUES (?1, ?2, 'example.com', 'cloudflare', ?3, '2026-01-01', '2026-01-01')",
                rusqlite::params![domain, user, sealed],
            )?;
            Ok::<_, inboxgrove::store::StoreError>(())
        })
        .await
        .unwrap();

    let bytes = db_bytes(dir.path());
    assert!(
        !contains(&bytes, secret),
        "plaintext found in the database file"
    );
    assert!(!contains(&bytes, "KNOWN-PLAINTEXT"));

    // It opens in its own row only.
    let stored: Vec<u8> = rusqlite_conn(dir.path())
        .query_row(
            "SELECT cloudflare_api_token FROM domains WHERE id = ?1",
            [domain],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        vault.open(slot, &stored).unwrap().expose_secret(),
        secret.as_bytes()
    );
    let other_row = Slot {
        row_id: "d-2",
        ..slot
    };
    let err = vault.open(other_row, &stored).unwrap_err().to_string();
    assert!(
        err.contains("could not be opened") && !err.contains(secret),
        "{err}"
    );
    let other_column = Slot {
        column: "spf_record",
        ..slot
    };
    assert!(vault.open(other_column, &stored).is_err());
}

#[tokio::test]
async fn passwords_and_tokens_are_stored_hashed_and_the_key_is_private() {
    let app = spawn_app().await;
    let tokens = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (status, created) = app
        .post(
            "/api/v1/tokens",
            json!({ "name": "n" }),
            Some(&access(&tokens)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let dir = app.stop().await;

    let bytes = db_bytes(dir.path());
    for secret in [
        ADMIN_PASSWORD,
        tokens["refresh_token"].as_str().unwrap(),
        created["token"].as_str().unwrap(),
    ] {
        assert!(!contains(&bytes, secret), "{secret} is on disk");
    }
    let key = dir.path().join("master.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "master.key mode {mode:o}");
}
