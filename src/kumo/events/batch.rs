//! Reading a posted batch. Nothing in it is a reason to refuse the rest:
//! a record the appliance cannot read is kept aside ([`Quarantined`]) and
//! the others are stored, so the policy can acknowledge the whole batch.
//! Refusing it instead would make KumoMTA retry the same bytes for a week,
//! or bounce them and lose every good record beside the bad one.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::record::{LogRecord, json_kind};
use super::{MailEvent, to_events};

/// The most events one request may carry. KumoMTA's batching hook sends
/// `batch_size` records per request (a few hundred is typical), so this only
/// stops a body that would take unbounded memory to answer.
pub const MAX_BATCH: usize = 10_000;

/// The longest raw text kept for one unreadable record.
const MAX_RAW: usize = 16 * 1024;

/// A batch as read: the events of every readable record, in body order,
/// and the records that could not be read.
#[derive(Debug, Default, PartialEq)]
pub struct Batch {
    pub events: Vec<MailEvent>,
    pub quarantined: Vec<Quarantined>,
}

/// A record kept aside: where it was, why it could not be read, and its
/// text (without any SMTP command, which for a refused AUTH is the SASL
/// payload with the password), shortened to [`MAX_RAW`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// Position in the posted array (0 for a single object or a body that
    /// is not JSON).
    pub index: usize,
    pub error: String,
    pub raw: String,
}

impl Quarantined {
    /// The same bytes posted again are the same quarantined record.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.raw.as_bytes()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error(
        "the batch holds more than {max} events; send smaller batches (lower the log hook's batch_size)"
    )]
    TooLarge { max: usize },
}

/// Reads a posted body: one record, an array of records, or an array of
/// `{"hook_id": <log-hook message spool id>, "record": <record>}` as the
/// policy sends them. Only a body too large to answer is an error.
pub fn parse_batch(body: &[u8]) -> Result<Batch, BatchError> {
    let mut batch = Batch::default();
    let items = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items,
        Ok(value @ Value::Object(_)) => vec![value],
        Ok(other) => {
            batch.keep_aside(
                0,
                format!(
                    "expected a KumoMTA log record (a JSON object) or an array of them, got {}",
                    json_kind(&other)
                ),
                other,
            );
            return Ok(batch);
        }
        Err(e) => {
            let text = String::from_utf8_lossy(body);
            batch.quarantined.push(Quarantined {
                index: 0,
                error: format!("the body is not JSON ({e})"),
                raw: shorten(&text),
            });
            return Ok(batch);
        }
    };
    let too_large = BatchError::TooLarge { max: MAX_BATCH };
    if items.len() > MAX_BATCH {
        return Err(too_large);
    }
    for (index, item) in items.into_iter().enumerate() {
        let (hook_id, record) = unwrap_hook(item);
        match parse_record(&record, hook_id.as_deref()) {
            Ok(events) => batch.events.extend(events),
            Err(error) => batch.keep_aside(index, error, record),
        }
        // A multi-recipient record expands, so records alone do not bound
        // the answer.
        if batch.events.len() > MAX_BATCH {
            return Err(too_large);
        }
    }
    Ok(batch)
}

impl Batch {
    fn keep_aside(&mut self, index: usize, error: String, mut record: Value) {
        if let Some(response) = record.get_mut("response").and_then(Value::as_object_mut) {
            response.remove("command");
        }
        self.quarantined.push(Quarantined {
            index,
            error,
            raw: shorten(&record.to_string()),
        });
    }
}

/// Splits the policy's envelope from the record; a bare record has no
/// hook id.
fn unwrap_hook(item: Value) -> (Option<String>, Value) {
    match item {
        Value::Object(mut obj) if obj.contains_key("record") && !obj.contains_key("type") => {
            let hook = obj
                .remove("hook_id")
                .and_then(|v| v.as_str().map(str::trim).map(str::to_owned))
                .filter(|s| !s.is_empty());
            (hook, obj.remove("record").unwrap_or(Value::Null))
        }
        other => (None, other),
    }
}

fn parse_record(item: &Value, hook_id: Option<&str>) -> Result<Vec<MailEvent>, String> {
    if !item.is_object() {
        return Err(format!(
            "expected a log record (a JSON object), got {}",
            json_kind(item)
        ));
    }
    let record: LogRecord = serde_path_to_error::deserialize(item).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        }
    })?;
    to_events(&record, hook_id)
}

fn shorten(text: &str) -> String {
    if text.len() <= MAX_RAW {
        return text.to_owned();
    }
    let mut end = MAX_RAW;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
