//! The side that serves the ACME certificates: bundles installed in
//! `tls_dir` as the ACME client installs them (signed here by a test CA),
//! then what the public listener, Dovecot, KumoMTA's settings and doctor
//! make of them.

mod imap;
mod kumo;
mod pages;
mod public;
mod units;
