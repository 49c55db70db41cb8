//! The egress parameter types (sources, pools, paths), split from
//! `config.rs` by concept; see there for how they are used.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Deserialize;
use serde_json::Value;

use super::config::{
    CidrSet, ConfigRefreshStrategy, Dur, KeySource, MemoryReductionPolicy, Throttle,
};

/// `crates/kumod/src/egress_source.rs`, `SuspendOnFailure`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuspendOnFailure {
    trigger: Option<Value>,
    duration: Dur,
}

/// `crates/kumod/src/egress_source.rs`, `EgressSource`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressSource {
    name: String,
    ehlo_domain: Option<String>,
    source_address: Option<IpAddr>,
    remote_port: Option<u16>,
    ha_proxy_server: Option<String>,
    ha_proxy_source_address: Option<IpAddr>,
    socks5_proxy_server: Option<String>,
    socks5_proxy_source_address: Option<IpAddr>,
    socks5_proxy_username: Option<String>,
    socks5_proxy_password: Option<KeySource>,
    suspend_when_unplumbed: Option<SuspendOnFailure>,
    suspend_when_proxy_unhealthy: Option<SuspendOnFailure>,
    ttl: Option<Dur>,
}

/// `crates/kumod/src/egress_source.rs`, `EgressPoolEntry`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressPoolEntry {
    name: String,
    weight: Option<u32>,
}

/// `crates/kumod/src/egress_source.rs`, `EgressPool`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressPool {
    name: String,
    entries: Vec<EgressPoolEntry>,
    ttl: Option<Dur>,
}

#[derive(Deserialize)]
pub enum Tls {
    Opportunistic,
    OpportunisticInsecure,
    Required,
    RequiredInsecure,
    Disabled,
}

#[derive(Deserialize)]
pub enum WakeupStrategy {
    Aggressive,
    Relaxed,
}

#[derive(Deserialize)]
pub enum ReconnectStrategy {
    TerminateSession,
    ReconnectSameHost,
    ConnectNextHost,
}

#[derive(Deserialize)]
pub enum IpLookupStrategy {
    Ipv4Only,
    Ipv6Only,
    Ipv4AndIpv6,
    Ipv6thenIpv4,
    Ipv4thenIpv6,
}

/// `crates/rfc5321/src/client_types.rs`, `SmtpClientTimeouts`, flattened
/// into the egress path config.
#[derive(Deserialize)]
pub struct SmtpClientTimeouts {
    connect_timeout: Option<Dur>,
    ehlo_timeout: Option<Dur>,
    mail_from_timeout: Option<Dur>,
    rcpt_to_timeout: Option<Dur>,
    data_timeout: Option<Dur>,
    data_dot_timeout: Option<Dur>,
    rset_timeout: Option<Dur>,
    idle_timeout: Option<Dur>,
    starttls_timeout: Option<Dur>,
    auth_timeout: Option<Dur>,
}

/// `LimitSpec` (`crates/throttle`): a count, or a string count with an
/// optional `local:` prefix.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum Limit {
    Count(u64),
    Text(String),
}

/// `crates/kumo-api-types/src/egress_path.rs`, `EgressPathConfig`. The
/// TLS cipher/option strings are taken as strings, not checked against
/// OpenSSL's or rustls's names.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressPathConfig {
    connection_limit: Option<Limit>,
    additional_connection_limits: Option<HashMap<String, Limit>>,
    enable_tls: Option<Tls>,
    enable_mta_sts: Option<bool>,
    enable_dane: Option<bool>,
    enable_pipelining: Option<bool>,
    enable_rset: Option<bool>,
    tls_prefer_openssl: Option<bool>,
    tls_certificate: Option<KeySource>,
    tls_private_key: Option<KeySource>,
    openssl_cipher_list: Option<String>,
    openssl_cipher_suites: Option<String>,
    openssl_options: Option<String>,
    rustls_cipher_suites: Option<Vec<String>>,
    #[serde(flatten)]
    client_timeouts: SmtpClientTimeouts,
    system_shutdown_timeout: Option<Dur>,
    max_ready: Option<usize>,
    consecutive_connection_failures_before_delay: Option<usize>,
    smtp_port: Option<u16>,
    smtp_auth_plain_username: Option<String>,
    smtp_auth_plain_password: Option<KeySource>,
    allow_smtp_auth_plain_without_tls: Option<bool>,
    max_message_rate: Option<Throttle>,
    additional_message_rate_throttles: Option<HashMap<String, Throttle>>,
    source_selection_rate: Option<Throttle>,
    additional_source_selection_rates: Option<HashMap<String, Throttle>>,
    max_connection_rate: Option<Throttle>,
    max_deliveries_per_connection: Option<usize>,
    max_recipients_per_batch: Option<usize>,
    prohibited_hosts: Option<CidrSet>,
    skip_hosts: Option<CidrSet>,
    ip_lookup_strategy: Option<IpLookupStrategy>,
    ehlo_domain: Option<String>,
    aggressive_connection_opening: Option<bool>,
    refresh_interval: Option<Dur>,
    refresh_strategy: Option<ConfigRefreshStrategy>,
    dispatcher_wakeup_strategy: Option<WakeupStrategy>,
    maintainer_wakeup_strategy: Option<WakeupStrategy>,
    provider_name: Option<String>,
    remember_broken_tls: Option<Dur>,
    opportunistic_tls_reconnect_on_failed_handshake: Option<bool>,
    use_lmtp: Option<bool>,
    reconnect_strategy: Option<ReconnectStrategy>,
    readyq_pool_name: Option<String>,
    low_memory_reduction_policy: Option<MemoryReductionPolicy>,
    no_memory_reduction_policy: Option<MemoryReductionPolicy>,
    try_next_host_on_transport_error: Option<bool>,
    ignore_8bit_checks: Option<bool>,
    dispatcher_progress_watchdog_timeout: Option<Dur>,
}
