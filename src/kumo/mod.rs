//! The control plane KumoMTA calls over loopback HTTP (its policy in
//! `kumo-policy/` asks InboxGrove to authenticate, sign, limit and route).
//! It answers only on the control listener, never on the public one; the
//! endpoints themselves arrive with issue 4.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::api::with_common_layers;

pub fn router() -> Router {
    with_common_layers(Router::new().route("/kumo/v1/health", get(health)))
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok", "listener": "control" }))
}
