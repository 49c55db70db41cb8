//! Cloudflare's JSON, read leniently: unknown fields are ignored
//! (Cloudflare adds and removes fields, fact sheet §1.4), record types are
//! free text and error codes are `u32`.

use serde::Deserialize;
use serde_json::Value;

use crate::domains::provider::{ExistingRecord, Zone};

#[derive(Debug, Default, Deserialize)]
pub(super) struct Envelope {
    #[serde(default)]
    pub(super) success: bool,
    #[serde(default)]
    pub(super) errors: Option<Vec<ApiMessage>>,
    #[serde(default)]
    pub(super) result: Value,
    #[serde(default)]
    pub(super) result_info: Option<ResultInfo>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct ApiMessage {
    /// DNS codes are 81xxx: they do not fit a u16 (§1.1).
    pub(super) code: u32,
    #[serde(default)]
    pub(super) message: String,
    #[serde(default)]
    pub(super) error_chain: Option<Vec<ApiMessage>>,
}

impl ApiMessage {
    /// The message with any wrapped causes, e.g. 6003 wrapping 6111.
    pub(super) fn describe(&self) -> String {
        let mut out = self.message.clone();
        for cause in self.error_chain.iter().flatten() {
            out.push_str(&format!("; {} (code {})", cause.describe(), cause.code));
        }
        out
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(super) struct ResultInfo {
    #[serde(default)]
    pub(super) total_pages: u32,
}

#[derive(Debug, Deserialize)]
pub(super) struct TokenStatus {
    pub(super) status: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireZone {
    pub(super) id: String,
    pub(super) name: String,
    #[serde(default)]
    pub(super) status: String,
    #[serde(default)]
    pub(super) name_servers: Option<Vec<String>>,
}

impl From<WireZone> for Zone {
    fn from(z: WireZone) -> Self {
        Self {
            id: z.id,
            name: z.name,
            status: z.status,
            name_servers: z.name_servers.unwrap_or_default(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct WireRecord {
    pub(super) id: String,
    /// Free text: any type a zone holds must list (CAA, HTTPS, SVCB …).
    #[serde(rename = "type")]
    pub(super) record_type: String,
    pub(super) name: String,
    #[serde(default)]
    pub(super) content: String,
    #[serde(default)]
    pub(super) priority: Option<u16>,
    #[serde(default)]
    pub(super) comment: Option<String>,
}

impl From<WireRecord> for ExistingRecord {
    fn from(r: WireRecord) -> Self {
        Self {
            id: r.id,
            record_type: r.record_type,
            name: r.name,
            content: r.content,
            priority: r.priority,
            comment: r.comment,
        }
    }
}
