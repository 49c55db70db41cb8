//! Bulk inbox generator and the mailbox datasource KumoMTA (and later
//! Dovecot) authenticate against.

pub mod datasource;
pub mod naming;
pub mod service;
pub mod unsubscribe;
