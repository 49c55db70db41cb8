//! The audit log: who did what to which resource, and whether it worked.
//! Rows are written for every state-changing API call and every login, and
//! never contain secrets (metadata holds names and ids, not values).

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::{ContextV7, Timestamp, Uuid};

use crate::clock::SharedClock;
use crate::store::audit::AuditRow;
pub use crate::store::audit::Filter;
use crate::store::{self, Store, StoreError};

#[derive(Debug, Default, Clone)]
pub struct Entry {
    pub user_id: Option<Uuid>,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub success: bool,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
}

pub async fn record(store: &Store, clock: &SharedClock, entry: Entry) -> Result<(), StoreError> {
    let row = row(entry, clock.now());
    store.write(move |tx| store::audit::insert(tx, &row)).await
}

/// Counts `entry` as one more occurrence of the aggregate `key` (see
/// [`store::audit::add_to_aggregate`]): for events that come in floods,
/// such as refused mailbox logins, one row per key instead of one each.
pub async fn record_aggregate(
    store: &Store,
    now: DateTime<Utc>,
    key: String,
    entry: Entry,
) -> Result<(), StoreError> {
    let row = row(entry, now);
    store
        .write(move |tx| store::audit::add_to_aggregate(tx, &row, &key))
        .await
}

/// The row for `entry` at `now`, for callers that write it inside a
/// transaction of their own (a change and its audit row commit together).
pub fn row(entry: Entry, now: DateTime<Utc>) -> AuditRow {
    // UUIDv7 from the injected clock, with a counter for rows of the same
    // instant: ids sort in the order rows were made, which breaks ties in
    // the (created_at, id) paging order.
    static CONTEXT: Mutex<ContextV7> = Mutex::new(ContextV7::new());
    let context = CONTEXT.lock().unwrap_or_else(|p| p.into_inner());
    let ts = Timestamp::from_unix(
        &*context,
        now.timestamp().max(0) as u64,
        now.timestamp_subsec_nanos(),
    );
    AuditRow {
        id: Uuid::new_v7(ts),
        user_id: entry.user_id,
        action: entry.action,
        resource_type: entry.resource_type,
        resource_id: entry.resource_id,
        status: if entry.success { "success" } else { "failure" }.to_owned(),
        metadata: serde_json::Value::Object(entry.metadata),
        client_ip: entry.client_ip,
        request_id: entry.request_id,
        created_at: now,
    }
}

pub const MAX_PAGE: u32 = 200;

#[derive(Serialize)]
pub struct Page {
    pub items: Vec<AuditRow>,
    /// Pass as `before` to get the next (older) page; absent on the last.
    pub next_before: Option<Uuid>,
}

/// One page, newest first; `scope` limits it to one user's rows.
pub async fn page(
    store: &Store,
    scope: Option<Uuid>,
    before: Option<Uuid>,
    filter: Filter,
    limit: u32,
) -> Result<Page, StoreError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let items = store
        .read(move |c| store::audit::page(c, scope, before, &filter, limit))
        .await?;
    let next_before = (items.len() == limit as usize)
        .then(|| items.last().map(|r| r.id))
        .flatten();
    Ok(Page { items, next_before })
}
