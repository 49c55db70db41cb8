//! The warmup engine (issue 14) against real servers: SMTP submission to
//! the tests' SMTP sink, IMAP engagement against a provider Dovecot with
//! Sieve and against the appliance's own Dovecot, and the whole engine
//! over simulated days.

mod api;
mod engine;
mod failures;
mod restart;
mod rig;
mod transport;
