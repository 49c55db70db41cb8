//! What the appliance reads from an X.509 certificate: its serial, its
//! expiry and whether it signed itself (doctor's checks, the ACME client's
//! record of what it installed).

use chrono::{DateTime, Utc};
use simple_asn1::ASN1Block;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The serial number in lower-case hex.
    pub serial: String,
    pub not_after: DateTime<Utc>,
    pub self_signed: bool,
}

/// Reads notAfter and whether issuer equals subject from a DER X.509
/// certificate (RFC 5280 §4.1: tbsCertificate is version [0], serial,
/// signature, issuer, validity, subject, …).
pub fn parse(der: &[u8]) -> Result<CertInfo, String> {
    let bad = || "not an X.509 certificate".to_owned();
    let blocks = simple_asn1::from_der(der).map_err(|e| format!("not DER: {e}"))?;
    let Some(ASN1Block::Sequence(_, cert)) = blocks.first() else {
        return Err(bad());
    };
    let Some(ASN1Block::Sequence(_, tbs)) = cert.first() else {
        return Err(bad());
    };
    // The version is optional (v1 certificates omit it).
    let skip = usize::from(matches!(tbs.first(), Some(ASN1Block::Explicit(..))));
    let field = |i: usize| tbs.get(skip + i).ok_or_else(bad);
    let (serial, issuer, validity, subject) = (field(0)?, field(2)?, field(3)?, field(4)?);
    let ASN1Block::Integer(_, serial) = serial else {
        return Err(bad());
    };
    let ASN1Block::Sequence(_, times) = validity else {
        return Err(bad());
    };
    let not_after = match times.get(1) {
        Some(ASN1Block::UTCTime(_, t) | ASN1Block::GeneralizedTime(_, t)) => {
            DateTime::from_timestamp(t.assume_utc().unix_timestamp(), 0).ok_or_else(bad)?
        }
        _ => return Err(bad()),
    };
    // The encodings are compared: the parsed blocks carry their offsets.
    let encode = |b: &ASN1Block| simple_asn1::to_der(b).map_err(|_| bad());
    Ok(CertInfo {
        serial: serial.to_str_radix(16),
        not_after,
        self_signed: encode(issuer)? == encode(subject)?,
    })
}
