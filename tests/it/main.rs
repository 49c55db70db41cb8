//! Integration tests: one binary, as zero2prod does, so the crate links once.
//! Each test starts the real server (in-process on port 0, or the real
//! binary) with its own temp data dir and SQLite file, and speaks HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

/// Test doubles in `tests/support/`, shared with the benchmarks; they sit
/// side by side so each reaches the other as `super::`.
#[path = "../support"]
mod support {
    pub mod cloudflare_double;
    pub mod dns_server;
    pub mod dovecot;
    pub mod imap_client;
    pub mod kumo_stub;
    pub mod pebble;
    pub mod sequencers;
    pub mod smtp_sink;
    pub mod test_ca;
    pub mod webdriver;
    pub mod zones;
}

mod accounts;
mod acme;
mod at_rest;
mod certs;
mod cloudflare;
mod console;
mod credentials;
mod diagnostics;
mod dns;
mod domains;
mod dovecot;
mod errors;
mod events;
mod exports;
mod inboxes;
mod isolation;
mod kumo;
mod layers;
mod limits;
mod logging;
mod logins;
mod policy;
mod privdrop;
mod process;
mod push;
mod reports;
mod retention;
mod revoke;
mod send;
mod sessions;
mod settings;
mod tiers;
mod tokens;
mod warmup;
mod web;
