//! Upgrades are safe (issue 13, point 6): a data dir written at every
//! earlier schema version, with a row in each of its tables, opens with
//! this binary and keeps every row; a migration that fails leaves the
//! version before it as it was. Like mox's upgrade tests from every past
//! release, but with the past databases written by the past migrations.

use std::collections::BTreeSet;
use std::path::Path;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::fixtures::{self, FIXTURES, Fixture};
use super::*;
use crate::store::mailboxes;
use crate::store::{Store, api_tokens, certificates, domains, exports, integration_keys, jobs};
use crate::store::{sessions, settings, users};

/// SHA-256 of every migration a released binary has applied. A database
/// past version k ran exactly these k scripts and never runs them again,
/// so editing one, or inserting a new one before it (a merge that sorts
/// a branch's new migration ahead of one main already applied), leaves such databases with a schema no
/// test has seen. New migrations go at the end; add their digest here once
/// they ship.
const RELEASED: &[&str] = &[
    "64f903e2320cab4aecbd4120f50534b54041173e97a1d68b5864d3ccff1cc07e",
    "6cc193e91c1128f871fd6e31ad3778ef781b04ed769aa0fa801efb8d927272a8",
    "d28c7701e088af9d0f6ec25e0e613a62db6f4c74a665cbe3fddb8dd200dc4525",
    "3b34e3388af5e5a669ead4f6e9cd9c4d68f82e986fff4224ce55d32a76bfa9e5",
    "68dc9f0ffda00955d9a37d1e81e184a87a405593ffee7f36a8f0081cf50b643e",
    "5d7ad8a90b50fabadcdc470b48f96a78ca1fbc47b1f823d1f0c4fef1b6affbc4",
    "abdea7e585e5886b0d4075deea963819949e6ef001fe78fddb90d1551aad5478",
    "f1ef602f16d41de4d09a96a9488de7752853993d76b04568618cb2937a26b824",
    "9c9f663e6578265d3a80e3b693235ddb5460f54eaf193352e0f8d770d58ed2ba",
    "37637750e7ab89367e5dff4a3ec1cf73d53ccfe0c296d885b7e603ec0e79eaed",
    "8f3fbb13291641bc684d7bd76fd57cc16cb3364b99ab411e39679afe1a326969",
    "498b9eaf37416183e99bbb04e0d38d8daaee7e3851ff3a397e069e8f2c7f143f",
];

const N: usize = MIGRATIONS.len();

fn user_version(conn: &Connection) -> i64 {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

fn tables(conn: &Connection) -> BTreeSet<String> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap();
    let names = stmt.query_map([], |r| r.get(0)).unwrap();
    names.collect::<rusqlite::Result<_>>().unwrap()
}

fn columns(conn: &Connection, table: &str) -> BTreeSet<String> {
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info(?1)")
        .unwrap();
    let names = stmt.query_map([table], |r| r.get(0)).unwrap();
    names.collect::<rusqlite::Result<_>>().unwrap()
}

fn values(f: &Fixture) -> impl Iterator<Item = ToSqlOutput<'static>> {
    f.row.iter().map(|(_, v)| ToSqlOutput::Borrowed(*v))
}

fn insert(conn: &Connection, f: &Fixture) {
    let names: Vec<&str> = f.row.iter().map(|(c, _)| *c).collect();
    let marks: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
    let verb = if f.seeded {
        "INSERT OR REPLACE"
    } else {
        "INSERT"
    };
    let sql = format!(
        "{verb} INTO {} ({}) VALUES ({})",
        f.table,
        names.join(", "),
        marks.join(", ")
    );
    if let Err(e) = conn.execute(&sql, rusqlite::params_from_iter(values(f))) {
        panic!("fixture row of {}: {e}", f.table);
    }
}

/// How many rows hold every value of the fixture (`IS` so NULL matches).
fn matching(conn: &Connection, f: &Fixture) -> i64 {
    let filter: Vec<String> = (1..)
        .zip(f.row)
        .map(|(i, (c, _))| format!("{c} IS ?{i}"))
        .collect();
    let sql = format!(
        "SELECT count(*) FROM {} WHERE {}",
        f.table,
        filter.join(" AND ")
    );
    conn.query_row(&sql, rusqlite::params_from_iter(values(f)), |r| r.get(0))
        .unwrap()
}

fn row_count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

fn fixture(table: &str) -> Option<&'static Fixture> {
    FIXTURES.iter().find(|f| f.table == table)
}

/// A fixture's text value, so read-back checks compare with the row
/// written rather than with a second copy of it.
fn fixture_text(table: &str, column: &str) -> &'static str {
    let value = fixture(table)
        .and_then(|f| f.row.iter().find(|(c, _)| *c == column))
        .map(|(_, v)| *v);
    match value {
        Some(ValueRef::Text(t)) => std::str::from_utf8(t).unwrap(),
        other => panic!("{table}.{column} is not a text fixture: {other:?}"),
    }
}

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

/// The database an older binary at schema `version` left at `path`: its
/// migrations applied, then the fixture row of every table it has.
/// Returns those tables.
fn write_version(path: &Path, version: usize) -> (Connection, BTreeSet<String>) {
    let mut conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    migrate_with(&mut conn, &MIGRATIONS[..version]).unwrap();
    assert_eq!(user_version(&conn), version as i64);
    let present = tables(&conn);
    for table in &present {
        assert!(
            fixture(table).is_some(),
            "table {table} exists at version {version} but has no row in fixtures.rs"
        );
    }
    for f in FIXTURES.iter().filter(|f| present.contains(f.table)) {
        insert(&conn, f);
    }
    (conn, present)
}

#[test]
fn migrates_once_and_refuses_newer_databases() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let mut conn = Connection::open(&path).unwrap();
    migrate(&mut conn).unwrap();
    migrate(&mut conn).unwrap();
    assert_eq!(user_version(&conn), SCHEMA_VERSION);
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN \
             ('users','domains','mailboxes','dkim_keys','oauth_accounts','warmup_campaigns',\
              'audit_logs','api_tokens','refresh_tokens','sessions','jobs','settings')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 12);

    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    assert!(matches!(migrate(&mut conn), Err(StoreError::TooNew { .. })));
}

/// Every fixture names all the columns its table had when it appeared, so
/// each column of every version carries a value through the upgrades.
#[test]
fn each_fixture_fills_every_column_its_table_was_created_with() {
    let mut before = BTreeSet::new();
    for version in 1..=N {
        let dir = tempfile::tempdir().unwrap();
        let (conn, present) = write_version(&dir.path().join("t.db"), version);
        for table in present.difference(&before) {
            let named: BTreeSet<String> = fixture(table)
                .into_iter()
                .flat_map(|f| f.row.iter().map(|(c, _)| (*c).to_owned()))
                .collect();
            assert_eq!(
                named,
                columns(&conn, table),
                "the fixture of {table} (created at version {version}) names other columns"
            );
        }
        before = present;
    }
}

#[test]
fn a_data_dir_of_every_earlier_version_opens_with_all_its_rows() {
    for version in 1..=N {
        let dir = tempfile::tempdir().unwrap();
        let path = Store::path_in(dir.path());
        let (conn, present) = write_version(&path, version);
        let counts: Vec<(String, i64)> = present
            .iter()
            .map(|t| (t.clone(), row_count(&conn, t)))
            .collect();
        drop(conn);

        // The server's own open: WAL, foreign keys on, then `migrate`.
        drop(Store::open(dir.path()).unwrap());

        let conn = Connection::open(&path).unwrap();
        assert_eq!(
            user_version(&conn),
            SCHEMA_VERSION,
            "from version {version}"
        );
        for f in FIXTURES.iter().filter(|f| present.contains(f.table)) {
            assert_eq!(
                matching(&conn, f),
                1,
                "the {} row written at version {version} changed or went",
                f.table
            );
        }
        for (table, n) in &counts {
            assert_eq!(
                row_count(&conn, table),
                *n,
                "{table} from version {version}"
            );
        }
        let mut stmt = conn.prepare("PRAGMA foreign_key_check").unwrap();
        let broken: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(broken.is_empty(), "from version {version}: {broken:?}");
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok", "from version {version}");
        read_back(&conn, &present);
    }
}

/// The repositories' column lists agree with the upgraded schema: what
/// an older binary wrote reads back through them.
fn read_back(conn: &Connection, present: &BTreeSet<String>) {
    let user = users::by_id(conn, uuid(fixtures::USER)).unwrap().unwrap();
    assert_eq!(user.email, fixture_text("users", "email"));
    assert_eq!(user.role.as_str(), fixture_text("users", "role"));
    assert_eq!(
        user.subscription_tier.as_str(),
        fixture_text("users", "subscription_tier")
    );
    assert!(user.disabled, "disabled_at was set");

    let domain = domains::get(conn, uuid(fixtures::DOMAIN), None)
        .unwrap()
        .unwrap();
    assert_eq!(domain.domain_name, fixture_text("domains", "domain_name"));
    assert_eq!(domain.status.as_str(), fixture_text("domains", "status"));
    assert_eq!(
        domain.dmarc_policy.as_str(),
        fixture_text("domains", "dmarc_policy")
    );
    assert!(domain.has_own_token);
    let servers: Vec<String> =
        serde_json::from_str(fixture_text("domains", "zone_name_servers")).unwrap();
    assert_eq!(domain.zone_name_servers, servers);

    let records = domains::records(conn, domain.id).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].record.content,
        fixture_text("domain_records", "content")
    );
    let key = domains::active_dkim_key(conn, domain.id).unwrap().unwrap();
    assert_eq!(key.selector, fixture_text("dkim_keys", "selector"));

    let mailbox = mailboxes::get(conn, uuid(fixtures::MAILBOX), None)
        .unwrap()
        .unwrap();
    let username = fixture_text("mailboxes", "username");
    assert_eq!(mailbox.email, format!("{username}@{}", domain.domain_name));
    assert_eq!(mailbox.status, fixture_text("mailboxes", "status"));

    let job = jobs::by_id(conn, uuid(fixtures::JOB)).unwrap().unwrap();
    let payload: serde_json::Value = serde_json::from_str(fixtures::JOB_PAYLOAD).unwrap();
    assert_eq!(job.payload, payload);
    assert_eq!(job.state, fixture_text("jobs", "state"));

    let tokens = api_tokens::list(conn, Some(user.id)).unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].prefix, fixture_text("api_tokens", "prefix"));
    let refresh = sessions::refresh_token(conn, fixtures::REFRESH_HASH)
        .unwrap()
        .unwrap();
    assert!(refresh.spent && refresh.session_revoked && refresh.user_disabled);
    assert_eq!(
        settings::get(conn, fixtures::SETTING).unwrap().as_deref(),
        Some(fixtures::SETTING_VALUE)
    );

    if present.contains("exports") {
        let export = exports::by_token_hash(conn, fixtures::EXPORT_HASH)
            .unwrap()
            .unwrap();
        assert_eq!(export.mailbox_ids, vec![mailbox.id]);
    }
    if present.contains("integration_keys") {
        let keys = integration_keys::list(conn, user.id).unwrap();
        let hints: Vec<&str> = keys.iter().map(|k| k.hint.as_str()).collect();
        assert_eq!(hints, vec![fixture_text("integration_keys", "hint")]);
    }
    if present.contains("certificates") {
        let bundles = certificates::list(conn).unwrap();
        assert_eq!(bundles.len(), 1);
        let b = &bundles[0];
        assert_eq!(b.id, fixture_text("certificates", "id"));
        assert_eq!(b.status.as_str(), fixture_text("certificates", "status"));
        assert_eq!(b.issued_names, ["mail.ada-outreach.com"]);
        assert_eq!(
            b.serial.as_deref(),
            Some(fixture_text("certificates", "serial"))
        );
        assert!(b.not_after.is_some() && b.renew_after.is_some());
        let key = certificates::sealed_key(conn, &b.id).unwrap();
        assert!(key.is_some_and(|k| !k.is_empty()));
    }
}

/// The schema and every row, to compare a database before and after.
fn snapshot(conn: &Connection) -> (i64, Vec<String>) {
    let mut out = Vec::new();
    let mut stmt = conn
        .prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY type, name")
        .unwrap();
    let schema = stmt
        .query_map([], |r| {
            Ok(format!(
                "{} {} {:?}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?
            ))
        })
        .unwrap();
    out.extend(schema.collect::<rusqlite::Result<Vec<_>>>().unwrap());
    for table in tables(conn) {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
        let width = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                let row: Vec<Value> = (0..width)
                    .map(|i| r.get(i))
                    .collect::<rusqlite::Result<_>>()?;
                Ok(format!("{table}: {row:?}"))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        rows.sort();
        out.extend(rows);
    }
    (user_version(conn), out)
}

/// Each migration fails after its last statement (the most it can have
/// done) and the database is exactly the version before it: the schema,
/// every row and `user_version`. The same file then upgrades once the
/// failing step is gone, as after installing a fixed binary.
#[test]
fn a_migration_that_fails_leaves_the_version_before_it_untouched() {
    for version in 0..N {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, _) = write_version(&dir.path().join("t.db"), version);
        let before = snapshot(&conn);
        // On its own line, so a trailing comment in the script cannot hide it.
        let failing = format!(
            "{}\n;INSERT INTO no_such_table VALUES (1);",
            MIGRATIONS[version]
        );
        let mut list = MIGRATIONS[..version].to_vec();
        list.push(&failing);

        let err = migrate_with(&mut conn, &list).unwrap_err();
        assert!(err.to_string().contains("no_such_table"), "{err}");
        let after = snapshot(&conn);
        assert_eq!(
            after.0,
            before.0,
            "user_version after migration {} failed",
            version + 1
        );
        let gone: Vec<&String> = before.1.iter().filter(|l| !after.1.contains(l)).collect();
        let added: Vec<&String> = after.1.iter().filter(|l| !before.1.contains(l)).collect();
        assert!(
            gone.is_empty() && added.is_empty(),
            "migration {} failed but left changes: gone {gone:?}, added {added:?}",
            version + 1
        );

        migrate(&mut conn).unwrap();
        assert_eq!(user_version(&conn), SCHEMA_VERSION);
    }
}

#[test]
fn released_migrations_are_never_edited_or_preceded() {
    assert!(N >= RELEASED.len(), "a released migration was removed");
    for (version, (sql, released)) in (1..).zip(MIGRATIONS.iter().zip(RELEASED)) {
        assert_eq!(
            hex::encode(Sha256::digest(sql.as_bytes())),
            *released,
            "migration {version} is not the one released databases ran; \
             append new migrations after the last one instead"
        );
    }
}
