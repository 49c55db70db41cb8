//! The warmup engine's rows: `warmup_mailboxes` (settings and ramp state),
//! `warmup_peers`, `warmup_messages` and the `warmup_campaigns` day rows
//! (migration 0013).

pub mod sends;
