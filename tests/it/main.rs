//! Integration tests: one binary, as zero2prod does, so the crate links once.
//! Each test starts the real server (in-process on port 0, or the real
//! binary) with its own temp data dir and SQLite file, and speaks HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

// Test doubles shared with other test crates (the DNS server double, the
// benchmark); they sit side by side so each can reach the other as `super::`.
#[path = "../support/cloudflare_double.rs"]
mod cloudflare_double;
#[path = "../support/zones.rs"]
mod zones;

mod accounts;
mod at_rest;
mod cloudflare;
mod errors;
mod limits;
mod process;
mod sessions;
