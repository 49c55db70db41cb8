//! Integration tests: one binary, as zero2prod does, so the crate links once.
//! Each test starts the real server (in-process on port 0, or the real
//! binary) with its own temp data dir and SQLite file, and speaks HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod accounts;
mod at_rest;
mod errors;
mod limits;
mod process;
mod sessions;
