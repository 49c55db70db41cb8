//! Propagation checks: asks DNS whether each planned record is served.
//!
//! By default the questions go to the zone's authoritative nameservers,
//! found by an NS lookup through the system resolver, so a record counts as
//! published as soon as the provider serves it, not when some recursive
//! resolver's cache has expired. `INBOXGROVE_DNS_SERVERS` replaces all of
//! that: every query, NS discovery included, then goes to those servers.
//!
//! Nothing is cached between checks (a fresh resolver per check, cache size
//! 0): a negative answer would otherwise stick for the SOA minimum TTL
//! (RFC 2308 §5) and hide the record the person has just created.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType as DnsType};
use hickory_resolver::{Resolver, TokioResolver};
use serde::{Deserialize, Serialize};

use super::name::DomainName;
use super::plan::{self, PlannedRecord, Purpose, RecordType};
use crate::types::ParseError;

/// Per query and attempt: a dead server must surface as an error within
/// seconds, not hang the page that asked.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Tries per query. hickory's `attempts` option counts the retries after
/// the first try, so it is set to one less.
const TRIES: usize = 2;
/// RFC 1035 §4.2: DNS is served on port 53 over UDP and TCP.
const DNS_PORT: u16 = 53;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    Verified,
    /// Records of the type exist at the name, but none is the planned one.
    Mismatch,
    /// NXDOMAIN, or the name holds no record of the type.
    Missing,
}

/// What DNS served for one planned record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub status: RecordStatus,
    /// The answers as text: TXT character-strings joined, MX as
    /// `10 mail.example.com`, addresses and targets without trailing dot.
    /// A record of another type at the name (a CNAME where an A is
    /// planned) is shown with its type first: `CNAME elsewhere.example`.
    pub answers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read the system DNS configuration: {0}")]
    SystemConfig(String),
    #[error("cannot set up DNS queries: {0}")]
    Setup(String),
    #[error("no nameservers found for {domain}: {reason}")]
    NoNameservers { domain: String, reason: String },
    #[error("the DNS query for the {record_type} record of {name} failed: {reason}")]
    Query {
        name: String,
        record_type: String,
        reason: String,
    },
    #[error("'{0}' is not a valid DNS name")]
    InvalidName(String),
}

/// Checks planned records against what DNS serves.
#[derive(Debug, Clone, Default)]
pub struct DnsChecker {
    servers: Option<Vec<SocketAddr>>,
}

impl DnsChecker {
    /// `servers` is `INBOXGROVE_DNS_SERVERS`; `None` (or an empty list)
    /// means: ask each zone's authoritative nameservers.
    pub fn new(servers: Option<Vec<SocketAddr>>) -> Self {
        Self {
            servers: servers.filter(|s| !s.is_empty()),
        }
    }

    /// One observation per planned record, in order. Stops at the first
    /// query the servers fail to answer (SERVFAIL, REFUSED, timeout): that
    /// says nothing about the record, so it is an error, never "missing".
    pub async fn check(
        &self,
        domain: &DomainName,
        planned: &[PlannedRecord],
    ) -> Result<Vec<Observation>, VerifyError> {
        let resolver = match &self.servers {
            Some(servers) => {
                let resolver = build(servers, true)?;
                // The zone must be served there; which nameservers it names
                // does not matter, the configured servers are asked anyway.
                zone_nameservers(&resolver, domain).await?;
                resolver
            }
            None => build(&authoritative_servers(domain).await?, false)?,
        };
        let mut out = Vec::with_capacity(planned.len());
        for p in planned {
            out.push(observe(&resolver, p).await?);
        }
        Ok(out)
    }
}

impl DnsChecker {
    /// A resolver that recurses: the configured servers, or the system's.
    /// PTR and forward confirmation are questions about someone else's zone
    /// (the VPS provider's reverse zone), so no authoritative walk.
    fn recursive(&self) -> Result<TokioResolver, VerifyError> {
        match &self.servers {
            Some(servers) => build(servers, true),
            None => system(),
        }
    }

    /// The names the PTR records of `ip` give (RFC 1035 §3.5), bare.
    pub async fn reverse(&self, ip: IpAddr) -> Result<Vec<String>, VerifyError> {
        let resolver = self.recursive()?;
        match resolver.lookup(Name::from(ip), DnsType::PTR).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::PTR(ptr) => Some(bare(&ptr.0)),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(VerifyError::Query {
                name: ip.to_string(),
                record_type: "PTR".to_owned(),
                reason: plain(&e),
            }),
        }
    }

    /// The A and AAAA addresses of `name`; none when it has no address.
    pub async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, VerifyError> {
        let resolver = self.recursive()?;
        match resolver.lookup_ip(fqdn(name)?).await {
            Ok(ips) => Ok(ips.iter().collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(VerifyError::Query {
                name: name.to_owned(),
                record_type: "A/AAAA".to_owned(),
                reason: plain(&e),
            }),
        }
    }
}

/// Parses `INBOXGROVE_DNS_SERVERS`: addresses separated by commas or
/// whitespace, each an IP (port 53) or `ip:port` / `[ipv6]:port`.
pub fn parse_servers(raw: &str) -> Result<Vec<SocketAddr>, ParseError> {
    raw.split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<SocketAddr>()
                .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, DNS_PORT)))
                .map_err(|_| {
                    ParseError(format!(
                        "'{s}' is not a DNS server address; use an IP like 1.1.1.1 or 127.0.0.1:5353"
                    ))
                })
        })
        .collect()
}

fn tune(opts: &mut ResolverOpts) {
    opts.cache_size = 0;
    opts.timeout = QUERY_TIMEOUT;
    opts.attempts = TRIES - 1;
    // /etc/hosts must not stand in for what the zone publishes.
    opts.use_hosts_file = ResolveHosts::Never;
}

/// A resolver that asks only `servers`, over UDP with TCP for truncated
/// answers (RFC 7766 §5). Authoritative servers are asked without RD.
fn build(servers: &[SocketAddr], recursion_desired: bool) -> Result<TokioResolver, VerifyError> {
    let name_servers = servers
        .iter()
        .map(|addr| {
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            for c in &mut ns.connections {
                c.port = addr.port();
            }
            ns
        })
        .collect();
    let config = ResolverConfig::from_parts(None, Vec::new(), name_servers);
    let mut builder = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
    let opts = builder.options_mut();
    tune(opts);
    opts.recursion_desired = recursion_desired;
    builder
        .build()
        .map_err(|e| VerifyError::Setup(e.to_string()))
}

/// The system's resolver (resolv.conf), uncached like the others.
fn system() -> Result<TokioResolver, VerifyError> {
    let (config, mut opts) = hickory_resolver::system_conf::read_system_conf()
        .map_err(|e| VerifyError::SystemConfig(e.to_string()))?;
    tune(&mut opts);
    Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .build()
        .map_err(|e| VerifyError::Setup(e.to_string()))
}

/// The addresses of the authoritative nameservers of `domain`'s zone,
/// found and resolved through the system resolver.
async fn authoritative_servers(domain: &DomainName) -> Result<Vec<SocketAddr>, VerifyError> {
    let system = system()?;
    let nameservers = zone_nameservers(&system, domain).await?;
    let mut addrs = Vec::new();
    let mut last_error = String::new();
    for ns in &nameservers {
        match system.lookup_ip(ns.clone()).await {
            Ok(ips) => addrs.extend(ips.iter().map(|ip| SocketAddr::new(ip, DNS_PORT))),
            Err(e) => last_error = format!("{}: {}", bare(ns), plain(&e)),
        }
    }
    if addrs.is_empty() {
        return Err(VerifyError::NoNameservers {
            domain: domain.to_string(),
            reason: format!("none of their addresses resolved ({last_error})"),
        });
    }
    Ok(addrs)
}

/// The NS names of the zone holding `domain`: the first name with NS
/// records, walking up from `domain` (RFC 1034 §4.2.1: a zone's apex
/// holds its NS set). The top-level domain itself is not asked.
async fn zone_nameservers(
    resolver: &TokioResolver,
    domain: &DomainName,
) -> Result<Vec<Name>, VerifyError> {
    let mut at = domain.as_str();
    while at.contains('.') {
        match resolver.lookup(fqdn(at)?, DnsType::NS).await {
            Ok(lookup) => {
                let ns: Vec<Name> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::NS(ns) => Some(ns.0.clone()),
                        _ => None,
                    })
                    .collect();
                if !ns.is_empty() {
                    return Ok(ns);
                }
            }
            Err(e) if e.is_no_records_found() => {}
            Err(e) => {
                return Err(VerifyError::Query {
                    name: at.to_owned(),
                    record_type: "NS".to_owned(),
                    reason: plain(&e),
                });
            }
        }
        at = at.split_once('.').map_or("", |(_, parent)| parent);
    }
    Err(VerifyError::NoNameservers {
        domain: domain.to_string(),
        reason: "neither it nor a parent domain has NS records".to_owned(),
    })
}

fn fqdn(name: &str) -> Result<Name, VerifyError> {
    Name::from_ascii(format!("{}.", name.trim_end_matches('.')))
        .map_err(|_| VerifyError::InvalidName(name.to_owned()))
}

fn dns_type(t: RecordType) -> DnsType {
    match t {
        RecordType::A => DnsType::A,
        RecordType::AAAA => DnsType::AAAA,
        RecordType::MX => DnsType::MX,
        RecordType::TXT => DnsType::TXT,
        RecordType::CNAME => DnsType::CNAME,
    }
}

/// A name as people write it: lower case, no trailing dot.
fn bare(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

/// A failure in words a person can act on.
fn plain(e: &NetError) -> String {
    match e {
        NetError::Timeout => format!(
            "no answer within {} s, asked {TRIES} times",
            QUERY_TIMEOUT.as_secs()
        ),
        NetError::Dns(DnsError::ResponseCode(code)) => {
            format!("the server answered {} ({code})", code_name(*code))
        }
        NetError::NoConnections => "no DNS server could be reached".to_owned(),
        NetError::Io(io) => format!("network error: {io}"),
        other => other.to_string(),
    }
}

/// The mnemonic of a response code (RFC 1035 §4.1.1, RFC 2136 §2.2).
fn code_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::FormErr => "FORMERR".to_owned(),
        ResponseCode::ServFail => "SERVFAIL".to_owned(),
        ResponseCode::NotImp => "NOTIMP".to_owned(),
        ResponseCode::Refused => "REFUSED".to_owned(),
        ResponseCode::NotAuth => "NOTAUTH".to_owned(),
        other => format!("RCODE {}", u16::from(other)),
    }
}

/// One DNS answer record in the text form `Observation::answers` uses.
fn render(r: &Record) -> Option<String> {
    Some(match &r.data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::MX(mx) => format!("{} {}", mx.preference, bare(&mx.exchange)),
        RData::TXT(txt) => {
            // RFC 7208 §3.3 and RFC 6376 §3.6.2.2: the strings of one
            // record are concatenated without a separator.
            let bytes: Vec<u8> = txt
                .txt_data
                .iter()
                .flat_map(|s| s.iter().copied())
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        RData::CNAME(c) => bare(&c.0),
        _ => return None,
    })
}

async fn observe(resolver: &TokioResolver, p: &PlannedRecord) -> Result<Observation, VerifyError> {
    let name = fqdn(&p.name)?;
    let wanted = dns_type(p.record_type);
    let failed = |e: &NetError| VerifyError::Query {
        name: p.name.clone(),
        record_type: p.record_type.as_str().to_owned(),
        reason: plain(e),
    };
    let records: Vec<Record> = match resolver.lookup(name.clone(), wanted).await {
        Ok(lookup) => lookup.answers().to_vec(),
        Err(e) if e.is_no_records_found() => Vec::new(),
        Err(e) if wanted != DnsType::CNAME => {
            // A CNAME to a name these servers do not serve makes the
            // resolver's follow-up query fail; the CNAME is still the
            // answer about this name.
            match resolver.lookup(name.clone(), DnsType::CNAME).await {
                Ok(lookup) if !lookup.answers().is_empty() => lookup.answers().to_vec(),
                _ => return Err(failed(&e)),
            }
        }
        Err(e) => return Err(failed(&e)),
    };
    Ok(judge(p, &name, &records))
}

/// Compares what DNS answered for `p.name` with the plan.
fn judge(p: &PlannedRecord, name: &Name, records: &[Record]) -> Observation {
    let wanted = dns_type(p.record_type);
    if wanted != DnsType::CNAME && records.iter().any(|r| r.record_type() == DnsType::CNAME) {
        // An alias where something else is planned: nothing may sit beside
        // a CNAME (RFC 1034 §3.6.2), so it is not the planned record even
        // when its target serves the same data.
        let answers = records
            .iter()
            .filter_map(|r| Some(format!("{} {}", r.record_type(), render(r)?)))
            .collect();
        return Observation {
            status: RecordStatus::Mismatch,
            answers,
        };
    }
    let own: Vec<&Record> = records
        .iter()
        .filter(|r| r.record_type() == wanted && r.name == *name)
        .collect();
    let mut answers: Vec<String> = own.iter().filter_map(|r| render(r)).collect();
    let verified = match (p.record_type, p.purpose) {
        (RecordType::TXT, Purpose::Spf) => {
            // Other apex TXT records (site verifications) are not ours to
            // judge. Two SPF records are a permanent error (RFC 7208 §4.5),
            // so exactly one must exist and authorise our mechanisms.
            answers.retain(|t| plan::is_spf(t));
            answers.len() == 1 && plan::spf_satisfies(&answers[0], &p.content)
        }
        (RecordType::TXT, _) => answers.iter().any(|t| same_tags(t, &p.content)),
        (RecordType::MX, _) => own.iter().any(|r| match &r.data {
            RData::MX(mx) => {
                same_host(&bare(&mx.exchange), &p.content)
                    && p.priority.is_none_or(|want| want == mx.preference)
            }
            _ => false,
        }),
        (RecordType::A | RecordType::AAAA, _) => {
            let want = p.content.trim().parse::<IpAddr>().ok();
            own.iter().any(|r| match &r.data {
                RData::A(a) => want == Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => want == Some(IpAddr::V6(a.0)),
                _ => false,
            })
        }
        (RecordType::CNAME, _) => answers.iter().any(|t| same_host(t, &p.content)),
    };
    let status = match (verified, answers.is_empty()) {
        (true, _) => RecordStatus::Verified,
        (false, true) => RecordStatus::Missing,
        (false, false) => RecordStatus::Mismatch,
    };
    Observation { status, answers }
}

fn same_host(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// DKIM and DMARC records are tag lists (RFC 6376 §3.2, RFC 7489 §6.4):
/// whitespace around `;` and a trailing `;` do not change them.
fn same_tags(observed: &str, planned: &str) -> bool {
    fn tags(s: &str) -> Vec<&str> {
        s.split(';')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect()
    }
    tags(observed) == tags(planned)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use hickory_resolver::proto::rr::rdata::{A, AAAA, CNAME, MX, TXT};

    use super::*;

    fn planned(purpose: Purpose, record_type: RecordType, content: &str) -> PlannedRecord {
        PlannedRecord {
            purpose,
            record_type,
            name: "acme.example".into(),
            content: content.into(),
            priority: (record_type == RecordType::MX).then_some(10),
        }
    }

    fn name() -> Name {
        fqdn("acme.example").unwrap()
    }

    fn rec(data: RData) -> Record {
        Record::from_rdata(name(), 300, data)
    }

    fn txt(parts: &[&str]) -> Record {
        rec(RData::TXT(TXT::new(
            parts.iter().map(|s| (*s).to_owned()).collect(),
        )))
    }

    fn status(p: &PlannedRecord, records: &[Record]) -> RecordStatus {
        judge(p, &name(), records).status
    }

    #[test]
    fn spf_is_judged_by_mechanisms_among_the_apex_txt() {
        let p = planned(Purpose::Spf, RecordType::TXT, "v=spf1 ip4:203.0.113.7 -all");
        let verification = txt(&["google-site-verification=abc"]);
        let merged = txt(&["v=spf1 include:_spf.google.com ", "ip4:203.0.113.7 ~all"]);
        let obs = judge(&p, &name(), &[verification.clone(), merged.clone()]);
        assert_eq!(obs.status, RecordStatus::Verified);
        assert_eq!(
            obs.answers,
            ["v=spf1 include:_spf.google.com ip4:203.0.113.7 ~all"]
        );
        let other = txt(&["v=spf1 include:_spf.google.com ~all"]);
        assert_eq!(
            status(&p, std::slice::from_ref(&other)),
            RecordStatus::Mismatch
        );
        assert_eq!(status(&p, &[verification]), RecordStatus::Missing);
        // RFC 7208 §4.5: two SPF records are an error, whatever they say.
        assert_eq!(status(&p, &[merged, other]), RecordStatus::Mismatch);
    }

    #[test]
    fn tag_lists_ignore_spacing_around_semicolons() {
        let p = planned(
            Purpose::Dmarc,
            RecordType::TXT,
            "v=DMARC1; p=none; rua=mailto:d@acme.example",
        );
        assert_eq!(
            status(
                &p,
                &[txt(&["v=DMARC1;p=none ;", " rua=mailto:d@acme.example;"])]
            ),
            RecordStatus::Verified
        );
        assert_eq!(
            status(
                &p,
                &[txt(&["v=DMARC1; p=reject; rua=mailto:d@acme.example"])]
            ),
            RecordStatus::Mismatch
        );
        assert_eq!(status(&p, &[]), RecordStatus::Missing);
    }

    #[test]
    fn mx_compares_host_and_priority() {
        let p = planned(Purpose::Mx, RecordType::MX, "mail.acme.example");
        let mx = |pref, host: &str| rec(RData::MX(MX::new(pref, fqdn(host).unwrap())));
        let obs = judge(&p, &name(), &[mx(10, "MAIL.acme.example")]);
        assert_eq!(obs.status, RecordStatus::Verified);
        assert_eq!(obs.answers, ["10 mail.acme.example"]);
        assert_eq!(
            status(&p, &[mx(20, "mail.acme.example")]),
            RecordStatus::Mismatch
        );
        assert_eq!(
            status(
                &p,
                &[mx(1, "aspmx.l.google.com"), mx(10, "mail.acme.example")]
            ),
            RecordStatus::Verified
        );
    }

    #[test]
    fn addresses_and_aliases() {
        let a = planned(Purpose::MailHost, RecordType::A, "203.0.113.7");
        let v4 = |ip: [u8; 4]| rec(RData::A(A(Ipv4Addr::from(ip))));
        assert_eq!(status(&a, &[v4([203, 0, 113, 7])]), RecordStatus::Verified);
        assert_eq!(status(&a, &[v4([192, 0, 2, 1])]), RecordStatus::Mismatch);
        let v6 = planned(Purpose::MailHostV6, RecordType::AAAA, "2001:db8::7");
        let six: Ipv6Addr = "2001:db8:0:0::7".parse().unwrap();
        assert_eq!(
            status(&v6, &[rec(RData::AAAA(AAAA(six)))]),
            RecordStatus::Verified
        );
        let alias = rec(RData::CNAME(CNAME(fqdn("elsewhere.example").unwrap())));
        let obs = judge(&a, &name(), std::slice::from_ref(&alias));
        assert_eq!(obs.status, RecordStatus::Mismatch);
        assert_eq!(obs.answers, ["CNAME elsewhere.example"]);
        let c = planned(Purpose::Tracking, RecordType::CNAME, "Elsewhere.example.");
        assert_eq!(status(&c, &[alias]), RecordStatus::Verified);
    }

    #[test]
    fn server_lists_parse() {
        assert_eq!(
            parse_servers("1.1.1.1, 127.0.0.1:5353 [::1]:53").unwrap(),
            vec![
                "1.1.1.1:53".parse::<SocketAddr>().unwrap(),
                "127.0.0.1:5353".parse().unwrap(),
                "[::1]:53".parse().unwrap(),
            ]
        );
        assert!(parse_servers("").unwrap().is_empty());
        assert!(parse_servers("dns.example").is_err());
        assert!(DnsChecker::new(Some(Vec::new())).servers.is_none());
    }
}
