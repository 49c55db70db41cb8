//! The conversation with the CA (RFC 8555 §7) through instant-acme: the
//! account (created once per directory, its credentials sealed in the
//! settings table), and one order per bundle: authorizations, challenges,
//! a CSR for a fresh ECDSA P-256 key, the certificate chain.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use instant_acme::{
    Account, AccountBuilder, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier,
    NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use secrecy::{ExposeSecret, SecretString};

use super::AcmeError;
use super::challenge::{Posted, Proof, Responder};
use crate::clock::SharedClock;
use crate::config::AcmeSettings;
use crate::store::{Store, settings};
use crate::vault::{Slot, Vault};

/// How long to wait for the CA to validate or to sign; a CA that takes
/// longer is asked again by the job's next attempt.
const POLL: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(250))
    .backoff(2.0)
    .timeout(Duration::from_secs(90));

/// A certificate the CA issued, with the key its CSR was made from.
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: SecretString,
    pub serial: String,
    pub not_after: DateTime<Utc>,
}

pub struct Ca {
    settings: AcmeSettings,
    store: Store,
    vault: std::sync::Arc<Vault>,
    clock: SharedClock,
    account: tokio::sync::Mutex<Option<Account>>,
}

impl Ca {
    pub fn new(
        settings: AcmeSettings,
        store: Store,
        vault: std::sync::Arc<Vault>,
        clock: SharedClock,
    ) -> Self {
        Self {
            settings,
            store,
            vault,
            clock,
            account: tokio::sync::Mutex::new(None),
        }
    }

    pub fn directory_url(&self) -> &str {
        &self.settings.directory_url
    }

    fn builder(&self) -> Result<AccountBuilder, AcmeError> {
        Ok(match &self.settings.ca_file {
            Some(path) => Account::builder_with_root(path)?,
            None => Account::builder()?,
        })
    }

    /// The account at this directory: restored from its sealed credentials,
    /// or created (RFC 8555 §7.3) and its credentials sealed.
    async fn account(&self) -> Result<Account, AcmeError> {
        let mut cached = self.account.lock().await;
        if let Some(a) = &*cached {
            return Ok(a.clone());
        }
        // One account per directory: staging and production keep theirs.
        let key = format!("acme.account:{}", self.settings.directory_url);
        let slot = Slot {
            table: "settings",
            column: "value",
            row_id: &key,
        };
        let k = key.clone();
        let sealed = self.store.read(move |c| settings::get(c, &k)).await?;
        let account = match sealed {
            Some(sealed) => {
                let plain = self.vault.open(slot, &sealed)?;
                let credentials: AccountCredentials = serde_json::from_slice(plain.expose_secret())
                    .map_err(|e| {
                        AcmeError::Account(format!("stored ACME account unreadable: {e}"))
                    })?;
                self.builder()?.from_credentials(credentials).await?
            }
            None => {
                let contact: Vec<&str> = self.settings.contact.as_deref().into_iter().collect();
                let (account, credentials) = self
                    .builder()?
                    .create(
                        &NewAccount {
                            contact: &contact,
                            terms_of_service_agreed: true,
                            only_return_existing: false,
                        },
                        self.settings.directory_url.clone(),
                        None,
                    )
                    .await?;
                let json = serde_json::to_vec(&credentials)
                    .map_err(|e| AcmeError::Account(e.to_string()))?;
                let sealed = self.vault.seal(slot, &json);
                let now = self.clock.now();
                self.store
                    .write(move |tx| settings::put(tx, &key, &sealed, now))
                    .await?;
                tracing::info!(directory = %self.settings.directory_url, "ACME account created");
                account
            }
        };
        *cached = Some(account.clone());
        Ok(account)
    }

    /// Orders a certificate for `names`, each proven as `proofs` says.
    /// Challenge responses are withdrawn afterwards, also on failure.
    pub async fn order(
        &self,
        names: &[String],
        proofs: &HashMap<String, Proof>,
        responder: &Responder,
    ) -> Result<Issued, AcmeError> {
        let account = self.account().await?;
        let mut posted = Vec::new();
        let result = self
            .run(&account, names, proofs, responder, &mut posted)
            .await;
        for p in posted {
            if let Err(e) = responder.withdraw(p).await {
                tracing::warn!(error = %e, "could not withdraw an ACME challenge response");
            }
        }
        result
    }

    async fn run(
        &self,
        account: &Account,
        names: &[String],
        proofs: &HashMap<String, Proof>,
        responder: &Responder,
        posted: &mut Vec<Posted>,
    ) -> Result<Issued, AcmeError> {
        let ids: Vec<Identifier> = names.iter().cloned().map(Identifier::Dns).collect();
        let mut order = account.new_order(&NewOrder::new(&ids)).await?;
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz?;
            let name = authz.identifier().to_string();
            match authz.status {
                AuthorizationStatus::Pending => {}
                // Proven recently (§7.1.4: authorizations may be reused).
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(AcmeError::Refused(format!(
                        "{name}: authorization is {other:?}"
                    )));
                }
            }
            let proof = proofs.get(&name).copied().unwrap_or(Proof::Http01);
            let kind = match proof {
                Proof::Http01 => ChallengeType::Http01,
                Proof::Dns01(_) | Proof::Dns01Server => ChallengeType::Dns01,
            };
            let mut challenge = authz.challenge(kind.clone()).ok_or_else(|| {
                AcmeError::Refused(format!("{name}: the CA offers no {kind:?} challenge"))
            })?;
            let key_auth = challenge.key_authorization();
            posted.push(match proof {
                Proof::Http01 => responder.serve_file(&challenge.token, key_auth.as_str()),
                _ => {
                    responder
                        .post_txt(&name, proof, key_auth.dns_value())
                        .await?
                }
            });
            // Pebble (and a CA that validates at once) answers with the
            // challenge's error here rather than at polling.
            challenge.set_ready().await.map_err(|e| match e {
                instant_acme::Error::Api(problem) => {
                    AcmeError::Refused(format!("{name}: {problem}"))
                }
                other => AcmeError::Ca(other),
            })?;
        }
        let status = order.poll_ready(&POLL).await?;
        if status != OrderStatus::Ready {
            return Err(AcmeError::Refused(why_invalid(&mut order).await));
        }
        let (csr, key_pem) = csr(names)?;
        order.finalize_csr(&csr).await?;
        let chain_pem = order.poll_certificate(&POLL).await?;
        let leaf = pem::parse_many(chain_pem.as_bytes())
            .map_err(|e| AcmeError::Certificate(e.to_string()))?
            .into_iter()
            .find(|p| p.tag() == "CERTIFICATE")
            .ok_or_else(|| AcmeError::Certificate("no certificate in the chain".into()))?;
        let info = crate::tls::x509::parse(leaf.contents()).map_err(AcmeError::Certificate)?;
        Ok(Issued {
            chain_pem,
            key_pem,
            serial: info.serial,
            not_after: info.not_after,
        })
    }
}

/// The CA's reasons an order became invalid: each failed challenge's
/// problem document (§6.7), else the order's.
async fn why_invalid(order: &mut instant_acme::Order) -> String {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authz)) = authorizations.next().await {
        if authz.refresh().await.is_err() {
            continue;
        }
        let name = authz.identifier().to_string();
        for c in &authz.challenges {
            if let Some(problem) = &c.error {
                reasons.push(format!("{name}: {problem}"));
            }
        }
    }
    if reasons.is_empty() {
        let state = order.state();
        reasons.push(match &state.error {
            Some(problem) => problem.to_string(),
            None => format!("the order is {:?}", state.status),
        });
    }
    reasons.join("; ")
}

/// A CSR (RFC 2986) for `names` with a new P-256 key, and that key as
/// PKCS#8 PEM. The subject is empty: the names are subjectAltNames, which
/// is all the CA reads (RFC 8555 §7.4).
fn csr(names: &[String]) -> Result<(Vec<u8>, SecretString), AcmeError> {
    let fail = |e: rcgen::Error| AcmeError::Csr(e.to_string());
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(fail)?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(fail)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).map_err(fail)?;
    Ok((csr.der().to_vec(), SecretString::from(key.serialize_pem())))
}
