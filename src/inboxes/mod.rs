//! Bulk inbox generator and the mailbox datasource KumoMTA and Dovecot
//! authenticate against. Built by issue 4; the `mailboxes` table already
//! exists in the store's schema.
pub mod datasource;
