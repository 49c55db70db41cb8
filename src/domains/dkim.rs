//! DKIM keys: RSA-2048 pairs (RFC 8301 §3.2 requires at least 1024 bits and
//! recommends 2048), one per domain, the private key sealed by the vault.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Datelike, Utc};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::{RsaPrivateKey, RsaPublicKey};
use secrecy::SecretString;

pub const KEY_BITS: usize = 2048;

/// A fresh key pair: the private key as PKCS#1 PEM (what lettre and
/// KumoMTA load) and the public key as base64 SubjectPublicKeyInfo (the
/// `p=` of the DNS record).
pub struct KeyPair {
    pub private_pem: SecretString,
    pub public_b64: String,
}

#[derive(Debug, thiserror::Error)]
#[error("DKIM key generation failed: {0}")]
pub struct KeyError(String);

/// Generates a key pair. It takes ~100 ms of CPU, so it runs on the
/// blocking pool, never on the async runtime.
pub async fn generate() -> Result<KeyPair, KeyError> {
    tokio::task::spawn_blocking(generate_now)
        .await
        .map_err(|e| KeyError(e.to_string()))?
}

fn generate_now() -> Result<KeyPair, KeyError> {
    let private = RsaPrivateKey::new(&mut rand::rngs::OsRng, KEY_BITS)
        .map_err(|e| KeyError(e.to_string()))?;
    let public_der = RsaPublicKey::from(&private)
        .to_public_key_der()
        .map_err(|e| KeyError(e.to_string()))?;
    let pem = private
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|e| KeyError(e.to_string()))?;
    Ok(KeyPair {
        private_pem: SecretString::from(pem.to_string()),
        public_b64: STANDARD.encode(public_der.as_bytes()),
    })
}

/// The selector for a key made at `now`: `ig` and the year and month, so a
/// rotation next month gets a new name while this one stays published.
pub fn selector_for(now: DateTime<Utc>) -> String {
    format!("ig{:04}{:02}", now.year(), now.month())
}

/// The TXT value that publishes a public key (RFC 6376 §3.6.1).
pub fn txt_value(public_b64: &str) -> String {
    format!("v=DKIM1; k=rsa; p={public_b64}")
}

#[cfg(test)]
mod tests {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePublicKey;
    use secrecy::ExposeSecret;

    use super::*;

    #[tokio::test]
    async fn generates_a_matching_2048_bit_pair() {
        let pair = generate().await.unwrap();
        let private = RsaPrivateKey::from_pkcs1_pem(pair.private_pem.expose_secret()).unwrap();
        let der = STANDARD.decode(&pair.public_b64).unwrap();
        let public = RsaPublicKey::from_public_key_der(&der).unwrap();
        assert_eq!(RsaPublicKey::from(&private), public);
        assert_eq!(rsa::traits::PublicKeyParts::size(&public) * 8, KEY_BITS);
        assert!(txt_value(&pair.public_b64).starts_with("v=DKIM1; k=rsa; p=MIIBIjAN"));
    }

    #[test]
    fn selectors_follow_the_month() {
        let t = DateTime::from_timestamp(1_795_000_000, 0).unwrap(); // 2026-11
        assert_eq!(selector_for(t), "ig202611");
    }
}
