//! Credential exports (CSV) and pushes to Instantly, Smartlead and Reply.io.

pub mod formats;
pub mod push;
pub mod service;
