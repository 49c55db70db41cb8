//! Credential exports (CSV) and pushes to Instantly, Smartlead and Reply.io.
//! Built by issue 5.
