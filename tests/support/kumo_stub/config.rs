//! The parameter types of KumoMTA's typed constructors, so the stand-in
//! refuses what kumod refuses. kumod converts each Lua table with serde
//! (`config::from_lua_value`, `crates/config/src/lib.rs`, which is mlua's
//! `from_value`), so deserializing the same Lua value into structs of the
//! same shape with mlua gives the same verdicts: an unknown key is
//! "unknown field", `{}` where a list is expected is "invalid type: map,
//! expected a sequence", a string mode is "invalid type: string".
//!
//! Each struct names the KumoMTA file it mirrors. Field types are ours
//! (durations, CIDRs, addresses parsed by small newtypes below); only the
//! field names, optionality and `deny_unknown_fields` follow KumoMTA.
//! Nothing reads the fields: a struct exists to be deserialized.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::IpAddr;

use mlua::prelude::*;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_json::Value;

use super::egress::{EgressPathConfig, EgressPool, EgressSource};

/// Validates `value` as the parameters of `kind` (a constructor name).
pub fn check(lua: &Lua, kind: &str, value: LuaValue) -> LuaResult<()> {
    fn parse<T: de::DeserializeOwned>(lua: &Lua, value: LuaValue) -> LuaResult<()> {
        lua.from_value::<T>(value).map(drop)
    }
    match kind {
        "memoize" => parse::<MemoizeParams>(lua, value),
        "start_esmtp_listener" => parse::<EsmtpListenerParams>(lua, value),
        "make_listener_domain" => parse::<EsmtpDomain>(lua, value),
        "make_queue_config" => parse::<QueueConfig>(lua, value),
        "start_http_listener" => parse::<HttpListenerParams>(lua, value),
        "define_spool" => parse::<DefineSpoolParams>(lua, value),
        "configure_local_logs" => parse::<LogFileParams>(lua, value),
        "configure_log_hook" => parse::<LogHookParams>(lua, value),
        "configure_bounce_classifier" => parse::<ClassifierParams>(lua, value),
        "rsa_sha256_signer" => parse::<SignerConfig>(lua, value),
        "make_egress_source" => parse::<EgressSource>(lua, value),
        "make_egress_pool" => parse::<EgressPool>(lua, value),
        "make_egress_path" => parse::<EgressPathConfig>(lua, value),
        other => Err(LuaError::runtime(format!(
            "stub: no parameter type {other}"
        ))),
    }
    // serde's message ("unknown field `x`, expected one of …") is what
    // kumod reports too. Unlike kumod (`while processing <json>`), the
    // whole table is not appended, so key material in the parameters
    // (a signer's `key_data`) never reaches a message.
    .map_err(|e| LuaError::runtime(format!("{kind}: {e}")))
}

/// A duration as `crates/duration-serde/src/lib.rs` reads one: a string
/// humantime parses (`5s`, `60 seconds`, `1m`, `5 minutes`; not `5 mins
/// ago` or `five seconds`), or a non-negative number of seconds.
pub struct Dur(pub std::time::Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dur, E> {
                std::time::Duration::try_from_secs_f64(v)
                    .map(Dur)
                    .map_err(|_| E::invalid_value(de::Unexpected::Float(v), &self))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                Ok(Dur(std::time::Duration::from_secs(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                u64::try_from(v)
                    .map(|s| Dur(std::time::Duration::from_secs(s)))
                    .map_err(|_| {
                        E::custom("duration must either be a string or a positive integer")
                    })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                humantime::parse_duration(v)
                    .map(Dur)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// `CidrSet` (`crates/cidr-map`): a list of `addr` or `addr/len` strings
/// whose host bits are zero.
pub struct CidrSet(pub Vec<(IpAddr, u8)>);

impl<'de> Deserialize<'de> for CidrSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<String>::deserialize(d)?;
        items
            .iter()
            .map(|s| parse_cidr(s).map_err(de::Error::custom))
            .collect::<Result<_, _>>()
            .map(CidrSet)
    }
}

fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
    let (addr, len) = s.split_once('/').unwrap_or((s, ""));
    let ip: IpAddr = addr.parse().map_err(|_| format!("invalid CIDR {s:?}"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = if len.is_empty() {
        max
    } else {
        len.parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("invalid CIDR {s:?}"))?
    };
    let bits = match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
        IpAddr::V6(v6) => u128::from(v6),
    };
    let host = bits.checked_shl(u32::from(len)).unwrap_or(0);
    if host != 0 {
        return Err(format!("invalid CIDR {s:?}: host bits are set"));
    }
    Ok((ip, len))
}

/// `KeySource` (`crates/data-loader/src/lib.rs`): a path, inline
/// `key_data`, or a HashiCorp Vault reference.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum KeySource {
    File(String),
    Data {
        key_data: String,
    },
    Vault {
        vault_address: Option<String>,
        vault_token: Option<String>,
        vault_mount: String,
        vault_path: String,
        vault_key: Option<String>,
    },
}

/// `crates/mod-memoize/src/lib.rs`, `MemoizeParams`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoizeParams {
    ttl: Dur,
    capacity: usize,
    name: String,
    #[serde(default)]
    invalidate_with_epoch: bool,
    #[serde(default)]
    retry_on_populate_timeout: bool,
    #[serde(default)]
    populate_timeout: Option<Dur>,
    #[serde(default)]
    allow_stale_reads: bool,
    #[serde(default)]
    detached: Option<bool>,
}

/// `crates/kumod/src/smtp_server.rs`, `TraceHeaders`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceHeaders {
    received_header: Option<bool>,
    supplemental_header: Option<bool>,
    header_name: Option<String>,
    include_meta_names: Option<Vec<String>>,
}

/// `ConformanceDisposition` (`crates/mailparsing`).
#[derive(Deserialize)]
pub enum ConformanceDisposition {
    Deny,
    Allow,
    Fix,
}

/// `batch_handling`, since 2025.12.02 (docs/reference/kumo/
/// start_esmtp_listener/batch_handling.md: two values).
#[derive(Deserialize)]
pub enum BatchHandling {
    BifurcateAlways,
    BatchByDomain,
}

/// `crates/kumod/src/smtp_server.rs`, `GenericEsmtpListenerParams`: what
/// the listener, `peer` and `via` blocks share. `batch_handling`,
/// `allow_xclient`, `require_proxy_protocol` and `tls_required_client_ca`
/// are newer than the stored source and come from their doc pages.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericEsmtpListenerParams {
    hostname: Option<String>,
    relay_hosts: Option<CidrSet>,
    banner: Option<String>,
    tls_certificate: Option<KeySource>,
    tls_private_key: Option<KeySource>,
    tls_required_client_ca: Option<KeySource>,
    deferred_spool: Option<bool>,
    deferred_queue: Option<bool>,
    trace_headers: Option<TraceHeaders>,
    client_timeout: Option<Dur>,
    data_processing_timeout: Option<Dur>,
    peer: Option<HashMap<String, Box<GenericEsmtpListenerParams>>>,
    via: Option<HashMap<String, Box<GenericEsmtpListenerParams>>>,
    meta: Option<HashMap<String, Value>>,
    max_messages_per_connection: Option<usize>,
    max_recipients_per_message: Option<usize>,
    max_message_size: Option<usize>,
    data_buffer_size: Option<usize>,
    invalid_line_endings: Option<ConformanceDisposition>,
    line_length_hard_limit: Option<usize>,
    batch_handling: Option<BatchHandling>,
    allow_xclient: Option<bool>,
    require_proxy_protocol: Option<bool>,
}

/// `crates/kumod/src/smtp_server.rs`, `EsmtpListenerParams`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EsmtpListenerParams {
    listen: Option<String>,
    #[serde(flatten)]
    base: GenericEsmtpListenerParams,
    max_connections: Option<usize>,
}

/// `LogReportDisposition` (`crates/kumod/src/smtp_server.rs`): a boolean
/// or one of three names.
pub struct LogReportDisposition;

impl<'de> Deserialize<'de> for LogReportDisposition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LogReportDisposition;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a boolean value or one of 'Ignore', 'LogThenDrop' or 'LogThenRelay'")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(LogReportDisposition)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "Ignore" | "LogThenDrop" | "LogThenRelay" => Ok(LogReportDisposition),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `crates/kumod/src/smtp_server.rs`, `EsmtpDomain`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EsmtpDomain {
    log_oob: Option<LogReportDisposition>,
    log_arf: Option<LogReportDisposition>,
    relay_to: Option<bool>,
    relay_from: Option<CidrSet>,
    ttl: Option<Dur>,
}

/// `crates/kumod/src/queue/strategy.rs` and the egress path's enums
/// (`crates/kumo-api-types/src/egress_path.rs`).
#[derive(Deserialize)]
pub enum QueueStrategy {
    TimerWheel,
    SkipList,
    SingletonTimerWheel,
    SingletonTimerWheelV2,
}

#[derive(Deserialize)]
pub enum ConfigRefreshStrategy {
    Ttl,
    Epoch,
}

#[derive(Deserialize)]
pub enum MemoryReductionPolicy {
    ShrinkDataAndMeta,
    ShrinkData,
    NoShrink,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueShrinkPolicy {
    interval: Dur,
    policy: MemoryReductionPolicy,
}

/// `crates/kumod/src/lua_deliver.rs`, `LuaDeliveryProtocol`;
/// `min_batch_size` and `max_batch_latency` are newer than the stored
/// source (the log-hook batching options).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LuaDeliveryProtocol {
    constructor: String,
    batch_size: Option<usize>,
    min_batch_size: Option<usize>,
    max_batch_latency: Option<Dur>,
}

/// `crates/kumod/src/queue/delivery_proto.rs`, `DeliveryProto`: untagged,
/// so a table matching no variant is "data did not match any variant",
/// and the struct variants ignore extra keys (no `deny_unknown_fields`).
#[derive(Deserialize)]
#[serde(untagged)]
pub enum DeliveryProto {
    Smtp {
        smtp: Value,
    },
    Maildir {
        maildir_path: String,
        dir_mode: Option<u32>,
        file_mode: Option<u32>,
    },
    Lua {
        custom_lua: LuaDeliveryProtocol,
    },
    Unit(()),
}

/// `crates/kumod/src/queue/config.rs`, `QueueConfig`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    retry_interval: Option<Dur>,
    max_retry_interval: Option<Dur>,
    max_age: Option<Dur>,
    egress_pool: Option<String>,
    max_message_rate: Option<Throttle>,
    protocol: Option<DeliveryProto>,
    reap_interval: Option<Dur>,
    refresh_interval: Option<Dur>,
    timerwheel_tick_interval: Option<Dur>,
    strategy: Option<QueueStrategy>,
    refresh_strategy: Option<ConfigRefreshStrategy>,
    provider_name: Option<String>,
    shrink_policy: Option<Vec<QueueShrinkPolicy>>,
}

/// `ThrottleSpec` (`crates/throttle`): `"N/period"`, e.g. `"100/h"`, with
/// an optional `local:` prefix.
pub struct Throttle;

impl<'de> Deserialize<'de> for Throttle {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let spec = s.strip_prefix("local:").unwrap_or(&s);
        let (n, period) = spec
            .split_once('/')
            .ok_or_else(|| de::Error::custom(format!("invalid throttle {s:?}")))?;
        let n_ok = n.replace('_', "").parse::<u64>().is_ok();
        let period_ok = matches!(
            period.trim(),
            "s" | "sec" | "second" | "m" | "min" | "minute" | "h" | "hr" | "hour" | "d" | "day"
        ) || humantime::parse_duration(period.trim()).is_ok();
        if n_ok && period_ok {
            Ok(Throttle)
        } else {
            Err(de::Error::custom(format!("invalid throttle {s:?}")))
        }
    }
}

/// `crates/kumod/src/http_server.rs`, `HttpListenerParams`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpListenerParams {
    hostname: Option<String>,
    listen: Option<String>,
    use_tls: Option<bool>,
    request_body_limit: Option<usize>,
    tls_certificate: Option<KeySource>,
    tls_private_key: Option<KeySource>,
    trusted_hosts: Option<CidrSet>,
}

#[derive(Deserialize)]
pub enum SpoolKind {
    LocalDisk,
    RocksDB,
}

/// `crates/kumod/src/spool.rs`, `DefineSpoolParams`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefineSpoolParams {
    name: String,
    path: String,
    kind: Option<SpoolKind>,
    flush: Option<bool>,
    rocks_params: Option<Value>,
}

/// `crates/kumod/src/logging/mod.rs`, `LogRecordParams`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogRecordParams {
    suffix: Option<String>,
    log_dir: Option<String>,
    enable: Option<bool>,
    template: Option<String>,
    segment_header: Option<String>,
}

/// `RecordType` (`crates/kumo-log-types`), the keys of `per_record`.
#[derive(Deserialize, PartialEq, Eq, Hash)]
pub enum RecordType {
    Reception,
    Delivery,
    Bounce,
    TransientFailure,
    Expiration,
    AdminBounce,
    #[serde(rename = "OOB")]
    Oob,
    Feedback,
    Rejection,
    AdminRebind,
    DeferredInjectionRebind,
    Delayed,
    Any,
}

/// `crates/kumod/src/logging/files.rs`, `LogFileParams`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFileParams {
    log_dir: String,
    max_file_size: Option<u64>,
    back_pressure: Option<usize>,
    compression_level: Option<i32>,
    max_segment_duration: Option<Dur>,
    meta: Option<Vec<String>>,
    headers: Option<Vec<String>>,
    per_record: Option<HashMap<RecordType, LogRecordParams>>,
    filter_event: Option<String>,
}

/// `crates/kumod/src/logging/hooks.rs`, `LogHookParams`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogHookParams {
    name: String,
    back_pressure: Option<usize>,
    meta: Option<Vec<String>>,
    headers: Option<Vec<String>>,
    per_record: Option<HashMap<RecordType, LogRecordParams>>,
    deferred_spool: Option<bool>,
}

/// `crates/kumod/src/logging/classify.rs`, `ClassifierParams`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierParams {
    files: Vec<String>,
    back_pressure: Option<usize>,
    pool_size: Option<usize>,
    cache_size: Option<usize>,
}

#[derive(Deserialize)]
pub enum Canon {
    Relaxed,
    Simple,
}

#[derive(Deserialize)]
pub enum HashAlgo {
    Sha1,
    Sha256,
}

/// `crates/message/src/dkim.rs`, `SignerConfig` (no `deny_unknown_fields`
/// there, so extra keys pass as they do in kumod).
#[derive(Deserialize)]
pub struct SignerConfig {
    domain: String,
    selector: String,
    headers: Vec<String>,
    atps: Option<String>,
    atpsh: Option<HashAlgo>,
    agent_user_identifier: Option<String>,
    expiration: Option<u64>,
    body_length: Option<bool>,
    reporting: Option<bool>,
    header_canonicalization: Option<Canon>,
    body_canonicalization: Option<Canon>,
    key: KeySource,
    over_sign: Option<bool>,
    ttl: Option<Dur>,
}
