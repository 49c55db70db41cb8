//! PLACEHOLDER until the DNS checker lands (merged from helper-dns).
use std::net::SocketAddr;

use serde::Serialize;

use super::name::DomainName;
use super::plan::PlannedRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    Verified,
    Mismatch,
    Missing,
}

#[derive(Debug, Clone, Serialize)]
pub struct Observation {
    pub status: RecordStatus,
    pub answers: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct VerifyError(String);

pub struct DnsChecker;

impl DnsChecker {
    pub fn new(_servers: Option<Vec<SocketAddr>>) -> Self {
        Self
    }

    pub async fn check(
        &self,
        _domain: &DomainName,
        planned: &[PlannedRecord],
    ) -> Result<Vec<Observation>, VerifyError> {
        Ok(planned
            .iter()
            .map(|_| Observation {
                status: RecordStatus::Missing,
                answers: vec![],
            })
            .collect())
    }
}
