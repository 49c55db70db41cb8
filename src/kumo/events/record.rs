//! The KumoMTA JSON log record as it arrives, before InboxGrove reads it.
//!
//! Modelled on `JsonLogRecord` in KumoMTA's `crates/kumo-log-types/src/lib.rs`
//! and the field list at <https://docs.kumomta.com/reference/log_record/>.
//! Deliberately lenient: unknown fields are ignored (KumoMTA adds fields in
//! most releases), anything KumoMTA may leave out or send as `null` is an
//! `Option`, and only `type` and `id` are required.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// One log record. Field names are KumoMTA's, so serde needs no renames
/// except for `type`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LogRecord {
    /// `Reception`, `Delivery`, `Bounce`, … (KumoMTA's `RecordType`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The spool id (`msg:id()`), 32 hex digits.
    pub id: String,
    pub sender: Option<String>,
    #[serde(default)]
    pub recipient: Recipients,
    pub queue: Option<String>,
    pub site: Option<String>,
    pub size: Option<u64>,
    pub response: Option<Response>,
    pub peer_address: Option<PeerAddress>,
    /// When the event was logged; KumoMTA writes whole unix seconds
    /// (`chrono::serde::ts_seconds`).
    pub timestamp: Option<Timestamp>,
    /// The same instant in RFC 3339 with sub-second precision (KumoMTA
    /// 2025.10.06 and later, per the fact sheet).
    pub event_time: Option<Timestamp>,
    /// When the message was received, unix seconds.
    pub created: Option<Timestamp>,
    pub created_time: Option<Timestamp>,
    /// KumoMTA's own count is a `u16`; wider here so an odd value is not a
    /// reason to lose the record.
    pub num_attempts: Option<u32>,
    /// A `bounce_classify::BounceClass` label, `Uncategorized` unless
    /// `kumo.configure_bounce_classifier` is set up.
    pub bounce_classification: Option<String>,
    pub egress_pool: Option<String>,
    pub egress_source: Option<String>,
    pub feedback_report: Option<FeedbackReport>,
    /// Only the meta keys the log hook lists (`log_parameters.meta`).
    pub meta: Option<Map<String, Value>>,
    /// Only the headers the log hook lists, names lower-cased.
    pub headers: Option<Map<String, Value>>,
    pub delivery_protocol: Option<String>,
    pub reception_protocol: Option<String>,
    pub nodeid: Option<String>,
    pub session_id: Option<String>,
}

/// `rfc5321::Response` as serialised by KumoMTA.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Response {
    pub code: Option<u16>,
    pub enhanced_code: Option<EnhancedCode>,
    pub content: Option<String>,
    /// `MAIL FROM`, `RCPT TO`, `.`…; absent on older Rejection records
    /// (log_record docs).
    pub command: Option<String>,
}

/// An RFC 3463 enhanced status code split into its three parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct EnhancedCode {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PeerAddress {
    /// The MX name when delivering, the EHLO name when receiving.
    pub name: Option<String>,
    pub addr: Option<String>,
}

/// KumoMTA's parsed ARF report (`rfc5965::ARFReport`, RFC 5965 §3.1 field
/// names with `_`). Only what InboxGrove reads is typed; `version` is a
/// string in the source but a number in the docs' example, so it stays raw.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FeedbackReport {
    /// `abuse`, `fraud`, `virus`, `other`, `not-spam`, `auth-failure`…
    pub feedback_type: Option<String>,
    pub user_agent: Option<String>,
    pub version: Option<Value>,
    pub arrival_date: Option<String>,
    pub original_mail_from: Option<String>,
    /// KumoMTA's spelling (sic) of Original-Rcpt-To.
    #[serde(default)]
    pub original_rcpto_to: Vec<String>,
    #[serde(default)]
    pub reported_domain: Vec<String>,
    pub source_ip: Option<String>,
    /// The reported message, or its headers, as the report quotes it.
    pub original_message: Option<String>,
    /// The decoded `X-KumoRef` header of the reported message: the original
    /// `recipient` plus any meta named in `trace_headers.include_meta_names`.
    pub supplemental_trace: Option<Map<String, Value>>,
}

/// `recipient` is one address, or a list for a multi-recipient batch
/// (`batch_handling = 'BatchByDomain'`, KumoMTA 2025.12.02 and later).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recipients(pub Vec<String>);

impl<'de> Deserialize<'de> for Recipients {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let list = match Value::deserialize(d)? {
            Value::Null => Vec::new(),
            // An empty Lua table is encoded as `{}` by KumoMTA's JSON
            // encoder, which a record rewritten in Lua may pass on.
            Value::Object(map) if map.is_empty() => Vec::new(),
            Value::String(s) => vec![s],
            Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    other => Err(D::Error::custom(format!(
                        "expected each recipient to be a string, got {}",
                        json_kind(&other)
                    ))),
                })
                .collect::<Result<_, _>>()?,
            other => {
                return Err(D::Error::custom(format!(
                    "expected a string or a list of strings, got {}",
                    json_kind(&other)
                )));
            }
        };
        // The empty string is how KumoMTA writes "no recipient".
        Ok(Self(list.into_iter().filter(|r| !r.is_empty()).collect()))
    }
}

/// An instant KumoMTA wrote either as unix seconds (an integer, or a float
/// if a template or a hook rewrote it) or as an RFC 3339 string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        parse_time(&v).map(Self).map_err(serde::de::Error::custom)
    }
}

/// Ten thousand years of seconds: anything larger is not a timestamp, and
/// bounding it keeps the float-to-integer conversion exact.
const MAX_ABS_SECS: f64 = 315_576_000_000.0;

fn parse_time(v: &Value) -> Result<DateTime<Utc>, String> {
    const EXPECTED: &str = "expected unix seconds or an RFC 3339 date-time";
    let parsed = match v {
        Value::Number(n) => match n.as_i64() {
            Some(secs) => DateTime::from_timestamp(secs, 0),
            None => n.as_f64().and_then(from_float_secs),
        },
        Value::String(s) => {
            let s = s.trim();
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .ok()
                .or_else(|| s.parse::<f64>().ok().and_then(from_float_secs))
        }
        other => return Err(format!("{EXPECTED}, got {}", json_kind(other))),
    };
    parsed.ok_or_else(|| {
        let shown: String = v.to_string().chars().take(40).collect();
        format!("{EXPECTED}, got {shown}")
    })
}

fn from_float_secs(f: f64) -> Option<DateTime<Utc>> {
    if !f.is_finite() || f.abs() > MAX_ABS_SECS {
        return None;
    }
    let secs = f.floor();
    // Rounding can reach a full second (x.9999999999); clamp it rather than
    // build an invalid nanosecond count.
    let nanos = ((f - secs) * 1e9).round().min(999_999_999.0);
    // Both values are bounded above, so the casts are exact.
    DateTime::from_timestamp(secs as i64, nanos as u32)
}

/// A JSON value's kind, for error messages that must not echo whole records.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
