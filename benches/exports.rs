//! Export benchmark: a credential CSV for 1,000 and 10,000 mailboxes, each
//! password opened from the vault once. Mailboxes are written straight
//! into the store (hashing 10,000 passwords is the bulk benchmark's job).
//! Run with `cargo bench --bench exports`; it prints its figures.

use std::sync::Arc;
use std::time::Instant;

use inboxgrove::clock::{SharedClock, SystemClock};
use inboxgrove::config::DomainSettings;
use inboxgrove::config::Origins;
use inboxgrove::exports::formats::Format;
use inboxgrove::exports::service::{ExportRequest, Exports};
use inboxgrove::settings::LiveSettings;
use inboxgrove::store::Store;
use inboxgrove::store::mailboxes::{NewMailbox, insert_many};
use inboxgrove::vault::{Slot, Vault};
use uuid::Uuid;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("store");
        let (vault, _) = Vault::load_or_create(dir.path()).expect("vault");
        let vault = Arc::new(vault);
        let clock: SharedClock = Arc::new(SystemClock);
        let (user, domain) = (Uuid::new_v4(), Uuid::new_v4());
        let now = clock.now();
        store
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO users (id, email, password_hash, role, created_at, updated_at)
                     VALUES (?1, 'bench@example.com', 'x', 'admin', ?2, ?2)",
                    rusqlite::params![user.to_string(), now],
                )?;
                tx.execute(
                    "INSERT INTO domains (id, user_id, domain_name, dns_mode, created_at, updated_at)
                     VALUES (?1, ?2, 'bench.test', 'manual', ?3, ?3)",
                    rusqlite::params![domain.to_string(), user.to_string(), now],
                )?;
                Ok::<_, inboxgrove::store::StoreError>(())
            })
            .await
            .expect("owner and domain");
        let exports = Exports::new(
            store.clone(),
            vault.clone(),
            clock.clone(),
            "https://grove.example.com".into(),
            Arc::new(LiveSettings::new(
                store.clone(),
                vault.clone(),
                clock.clone(),
                DomainSettings::default(),
                chrono_tz::UTC,
                Origins::default(),
            )),
            chrono::Duration::hours(1),
        );
        println!("inboxgrove export benchmark (in-process, 2 cores)");
        let mut total = 0;
        for size in [1_000usize, 10_000] {
            let rows: Vec<NewMailbox> = (total..size)
                .map(|i| {
                    let id = Uuid::new_v4();
                    let row = id.to_string();
                    NewMailbox {
                        id,
                        domain_id: domain,
                        user_id: user,
                        username: format!("person{i}"),
                        first_name: "Ada".into(),
                        last_name: "Lovelace".into(),
                        password_hash: "$argon2id$bench".into(),
                        password_sealed: vault.seal(
                            Slot {
                                table: "mailboxes",
                                column: "password_sealed",
                                row_id: &row,
                            },
                            format!("Password-{i}-abcdefghijkl").as_bytes(),
                        ),
                        daily_limit: 40,
                        status: "warming",
                    }
                })
                .collect();
            total = size;
            store
                .write(move |tx| insert_many(tx, &rows, now))
                .await
                .expect("mailboxes");
            for format in [Format::Instantly, Format::Smartlead] {
                let started = Instant::now();
                let created = exports
                    .create(
                        user,
                        None,
                        ExportRequest {
                            mailbox_ids: None,
                            domain_id: Some(domain),
                            format,
                            include_passwords: true,
                        },
                    )
                    .await
                    .expect("export");
                let token = created.file_url.rsplit('/').next().expect("token").to_owned();
                let file = exports.download(&token).await.expect("download");
                println!(
                    "{:<14} rows={:<6} {:>9.1?}  ({} KiB)",
                    format.as_str(),
                    created.rows,
                    started.elapsed(),
                    file.bytes.len() / 1024
                );
            }
        }
    });
}
