//! Hybrid OAuth connectors for Google and Microsoft mailboxes; tokens are
//! sealed in the `oauth_accounts` table through the vault.
