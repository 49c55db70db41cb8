//! The saved values in the `settings` table, one row each under
//! `server.<name>` (e.g. `server.public_ipv4`), as text. The token's row is
//! sealed in the slot `settings.value` of row `server.cloudflare_api_token`,
//! as the JWT key's is in its row.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use super::{Change, Key, Patch, SettingsError, Value};
use crate::store::{self, Store};
use crate::vault::{Slot, Vault};

const PREFIX: &str = "server.";

fn row_key(key: Key) -> String {
    format!("{PREFIX}{}", key.name())
}

fn slot(row: &str) -> Slot<'_> {
    Slot {
        table: "settings",
        column: "value",
        row_id: row,
    }
}

pub async fn load(store: &Store, vault: &Vault) -> Result<BTreeMap<Key, Value>, SettingsError> {
    let rows = store
        .read(|c| store::settings::with_prefix(c, PREFIX))
        .await?;
    decode(rows, vault)
}

/// Applies the patch in one transaction and returns every saved value
/// afterwards.
pub async fn write(
    store: &Store,
    vault: &Vault,
    now: DateTime<Utc>,
    patch: Patch,
) -> Result<BTreeMap<Key, Value>, SettingsError> {
    let mut puts = Vec::new();
    let mut deletes = Vec::new();
    for (key, change) in patch.0 {
        let row = row_key(key);
        match change {
            Change::Set(v) => {
                let bytes = encode(vault, &row, &v);
                puts.push((row, bytes));
            }
            Change::Clear => deletes.push(row),
        }
    }
    let rows = store
        .write(move |tx| {
            for (row, bytes) in &puts {
                store::settings::put(tx, row, bytes, now)?;
            }
            for row in &deletes {
                store::settings::delete(tx, row)?;
            }
            store::settings::with_prefix(tx, PREFIX)
        })
        .await?;
    decode(rows, vault)
}

/// Text, the form `Value::parse` reads back; the token sealed.
fn encode(vault: &Vault, row: &str, v: &Value) -> Vec<u8> {
    match v {
        Value::Ipv4(ip) => ip.to_string().into_bytes(),
        Value::Ipv6(ip) => ip.to_string().into_bytes(),
        Value::MailHost(p) => p.as_str().as_bytes().to_vec(),
        Value::Tracking(h) => h.as_str().as_bytes().to_vec(),
        Value::Timezone(tz) => tz.name().as_bytes().to_vec(),
        Value::Days(d) => d.to_string().into_bytes(),
        Value::Token(t) => vault.seal(slot(row), t.expose().as_bytes()),
    }
}

fn decode(
    rows: Vec<(String, Vec<u8>)>,
    vault: &Vault,
) -> Result<BTreeMap<Key, Value>, SettingsError> {
    let mut saved = BTreeMap::new();
    for (row, bytes) in rows {
        let Some(key) = row.strip_prefix(PREFIX).and_then(Key::from_name) else {
            continue;
        };
        let raw = if key.is_secret() {
            let open = vault.open(slot(&row), &bytes)?;
            String::from_utf8_lossy(open.expose_secret()).into_owned()
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        };
        // A row this version no longer accepts is skipped, so the server
        // still starts; the configured value applies until it is saved again.
        match Value::parse(key, raw) {
            Ok(v) => {
                saved.insert(key, v);
            }
            Err(e) => tracing::warn!(setting = key.name(), error = %e, "saved setting ignored"),
        }
    }
    Ok(saved)
}
