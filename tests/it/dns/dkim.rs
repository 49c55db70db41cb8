//! DKIM end to end: a message signed with a generated key verifies, with
//! mail-auth, against the TXT record the loopback server publishes.

use std::net::SocketAddr;

use inboxgrove::domains::dkim::txt_value;
use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
// mail-auth 0.7 resolves with its own hickory-resolver (0.25), re-exported
// so its types can be named.
use mail_auth::hickory_resolver::config::{
    NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use mail_auth::hickory_resolver::proto::xfer::Protocol;
use mail_auth::{AuthenticatedMessage, DkimResult, Error, MessageAuthenticator};
use secrecy::ExposeSecret;

use super::{ZONE, key, quoted_split, server_with};

const SELECTOR: &str = "ig202611";

const MESSAGE: &str = "From: Ada Lovelace <ada@acme.example>\r\n\
To: bob@example.net\r\n\
Subject: Quick question\r\n\
Date: Mon, 02 Nov 2026 09:00:00 +0000\r\n\
Message-ID: <q1@acme.example>\r\n\
\r\n\
Hi Bob,\r\n\
do you have ten minutes this week?\r\n";

/// A mail-auth authenticator that asks only the loopback server.
pub(crate) fn authenticator(addr: SocketAddr) -> MessageAuthenticator {
    let mut config = ResolverConfig::new();
    config.add_name_server(NameServerConfig::new(addr, Protocol::Udp));
    config.add_name_server(NameServerConfig::new(addr, Protocol::Tcp));
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    MessageAuthenticator::new(config, opts).unwrap()
}

pub(crate) async fn verify(auth: &MessageAuthenticator, raw: &str) -> DkimResult {
    let message = AuthenticatedMessage::parse(raw.as_bytes()).unwrap();
    let outputs = auth.verify_dkim(&message).await;
    assert_eq!(outputs.len(), 1, "one DKIM-Signature");
    outputs[0].result().clone()
}

#[tokio::test]
async fn a_signed_message_verifies_against_the_published_key() {
    let pair = key().await;
    let value = txt_value(&pair.public_b64);
    let name = format!("{SELECTOR}._domainkey.{ZONE}");
    let (_zones, server) = server_with(&[("TXT", &name, &quoted_split(&value, 255), None)]).await;

    let signing_key = RsaKey::<Sha256>::from_pkcs1_pem(pair.private_pem.expose_secret()).unwrap();
    let signature = DkimSigner::from_key(signing_key)
        .domain(ZONE)
        .selector(SELECTOR)
        .headers(["From", "To", "Subject", "Date", "Message-ID"])
        .sign(MESSAGE.as_bytes())
        .unwrap();
    let signed = format!("{}{MESSAGE}", signature.to_header());

    let auth = authenticator(server.addr());
    assert_eq!(verify(&auth, &signed).await, DkimResult::Pass);

    // RFC 6376 §3.7: the body hash no longer matches.
    let body = signed.replace("ten minutes", "two hours");
    assert_eq!(
        verify(&auth, &body).await,
        DkimResult::Neutral(Error::FailedBodyHashMatch)
    );
    // A signed header changed: the signature itself fails.
    let header = signed.replace("Quick question", "Quick questions");
    assert!(
        matches!(verify(&auth, &header).await, DkimResult::Fail(_)),
        "a changed Subject must fail"
    );
}
