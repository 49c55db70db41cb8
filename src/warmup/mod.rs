//! Warmup engine and health scoring, scheduled through [`crate::jobs`] and
//! recorded in the `warmup_campaigns` table.
