//! The JSON API on the public listener. Handlers are thin: they extract,
//! call a plain function of the module that owns the logic, and map the
//! result; errors become the one JSON shape of [`crate::http::error`].

mod audit_logs;
mod auth;
mod certificates;
mod diagnostics;
mod domains;
mod exports;
mod health;
mod inboxes;
mod integrations;
mod settings;
mod tiers;
mod tokens;
mod unsubscribe;
mod users;
mod warmup;

use axum::middleware;

use crate::http::routes::{Access, Routes, Surface};
use crate::http::{AppState, audit_layer, ratelimit};

/// The API's routes, for [`crate::server`] to compose with the UI's.
pub fn routes(state: &AppState) -> Routes<AppState> {
    use Access::{Admin, Anyone, Member};
    // Their secret is in the request itself: limited per source address.
    let by_address = Routes::under("/api/v1", Surface::Api)
        .post("/auth/login", Anyone, auth::login)
        .post("/auth/refresh", Anyone, auth::refresh)
        .get("/exports/{token}", Anyone, exports::download);
    let by_caller = Routes::under("/api/v1", Surface::Api)
        .post("/auth/logout", Member, auth::logout)
        .get("/me", Member, auth::me)
        .post("/me/password", Member, auth::change_password)
        .get("/me/usage", Member, tiers::usage)
        .get("/tokens", Member, tokens::list)
        .post("/tokens", Member, tokens::create)
        .delete("/tokens/{id}", Member, tokens::delete)
        .get("/users", Admin, users::list)
        .post("/users", Admin, users::create)
        .patch("/users/{id}", Admin, users::update)
        .get("/tiers", Admin, tiers::list)
        .patch("/tiers/{tier}", Admin, tiers::update)
        .get("/audit-logs", Member, audit_logs::list)
        .get("/settings", Admin, settings::show)
        .get("/diagnostics", Admin, diagnostics::show)
        .get("/certificates", Admin, certificates::list)
        .post("/certificates/renew", Admin, certificates::renew)
        .patch("/settings", Admin, settings::update)
        .get("/domains", Member, domains::list)
        .post("/domains/add", Member, domains::add)
        .get("/domains/{id}", Member, domains::get)
        .patch("/domains/{id}", Member, domains::update)
        .delete("/domains/{id}", Member, domains::remove)
        .post("/domains/{id}/verify", Member, domains::verify)
        .get("/inboxes", Member, inboxes::list)
        .post("/inboxes/bulk", Member, inboxes::bulk)
        .post("/inboxes/export", Member, exports::create)
        .get("/integrations", Member, integrations::list)
        .put("/integrations/{tool}", Member, integrations::save_key)
        .delete("/integrations/{tool}", Member, integrations::forget_key)
        .post("/integrations/{tool}/push", Member, integrations::push)
        .get("/inboxes/{id}", Member, inboxes::get)
        .patch("/inboxes/{id}", Member, inboxes::update)
        .delete("/inboxes/{id}", Member, inboxes::delete)
        .post(
            "/inboxes/{id}/reset-password",
            Member,
            inboxes::reset_password,
        )
        .get("/inboxes/{id}/warmup", Member, warmup::show)
        .patch("/inboxes/{id}/warmup", Member, warmup::update)
        .post("/inboxes/{id}/warmup/pause", Member, warmup::pause)
        .post("/inboxes/{id}/warmup/resume", Member, warmup::resume)
        .post("/domains/{id}/warmup/pause", Member, warmup::pause_domain)
        .post("/domains/{id}/warmup/resume", Member, warmup::resume_domain)
        .get("/warmup/peers", Member, warmup::peers)
        .post("/warmup/peers", Member, warmup::add_peer)
        .post("/warmup/peers/{id}/test", Member, warmup::test_peer)
        .delete("/warmup/peers/{id}", Member, warmup::delete_peer);
    // Outermost the limit, so a refused flood writes no audit rows.
    let audit = middleware::from_fn_with_state(state.clone(), audit_layer::middleware);
    let v1 = by_address
        .layered(|r| {
            r.route_layer(audit.clone())
                .route_layer(middleware::from_fn_with_state(
                    state.clone(),
                    ratelimit::per_address,
                ))
        })
        .merge(by_caller.layered(|r| {
            r.route_layer(audit)
                .route_layer(middleware::from_fn_with_state(
                    state.clone(),
                    ratelimit::per_caller,
                ))
        }));
    let unsubscribe = Routes::new(Surface::Api)
        .get("/u/{token}", Anyone, unsubscribe::confirm)
        .post("/u/{token}", Anyone, unsubscribe::one_click)
        .layered(|r| {
            r.route_layer(middleware::from_fn_with_state(
                state.clone(),
                ratelimit::per_address,
            ))
        });
    Routes::new(Surface::Api)
        .get("/healthz", Anyone, health::live)
        .get("/readyz", Anyone, health::ready)
        .merge(unsubscribe)
        .merge(v1)
}
