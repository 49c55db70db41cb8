//! InboxGrove: a self-hosted cold-email infrastructure appliance in one binary.
//!
//! The modules mirror the product's parts, so a reader of the spec can guess
//! where a thing lives:
//!
//! - [`store`]: the SQLite store (rusqlite), its migrations and repositories.
//! - [`vault`]: the master key and sealing of every secret column.
//! - [`auth`]: passwords, sessions, JWT access tokens, API tokens, users.
//! - [`audit`]: the audit log.
//! - [`jobs`]: the durable in-process job scheduler.
//! - [`http`]: what the listeners share: state, the error shape,
//!   extractors, the audit and rate-limit layers.
//! - [`api`]: the JSON API's handlers.
//! - [`settings`]: the server settings an admin changes at run time.
//! - [`tiers`]: subscription tiers and the limits they give each user.
//! - [`kumo`]: the loopback control plane KumoMTA talks to.
//! - [`dovecot`]: IMAP: the checkpassword helper and the Dovecot config.
//! - [`domains`], [`inboxes`], [`exports`], [`oauth`], [`warmup`], [`web`]:
//!   the product capabilities built on this foundation.

pub mod acme;
pub mod api;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod doctor;
pub mod domains;
pub mod dovecot;
pub mod exports;
pub mod http;
pub mod inboxes;
pub mod jobs;
pub mod kumo;
pub mod oauth;
pub mod remote;
pub mod server;
pub mod settings;
pub mod store;
pub mod tiers;
pub mod tls;
pub mod types;
pub mod vault;
pub mod warmup;
pub mod web;
