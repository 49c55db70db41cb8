//! Domain orchestrator: DKIM keys, the DNS record plan, DNS providers
//! (Cloudflare or by hand) and propagation checks.

pub mod cloudflare;
pub mod dkim;
pub mod egress;
pub mod model;
pub mod name;
pub mod ownership;
pub mod plan;
pub mod provider;
pub mod providers;
pub mod reconcile;
pub mod service;
pub mod verify;
pub mod work;
