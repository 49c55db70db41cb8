//! Domain orchestrator: DKIM keys, the DNS record plan, DNS providers
//! (Cloudflare or by hand) and propagation checks. Built by issue 3; the
//! `domains` and `dkim_keys` tables already exist in the store's schema.
