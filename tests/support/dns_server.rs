//! A real DNS server on loopback, in-process, answering over UDP and TCP on
//! one port from the shared [`Zones`], as the provider's nameservers would:
//! authoritatively, reading the zones live so a record the Cloudflare
//! double (or a test) writes is served on the next query.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, MX, NS, PTR, SOA, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};

use super::zones::{self, Zones};

/// Cloudflare stores `ttl: 1` for "automatic", which it serves as 300 s.
const AUTO_TTL: u32 = 300;
/// The SOA minimum: how long resolvers may cache a negative answer
/// (RFC 2308 §4).
const NEGATIVE_TTL: u32 = 60;
/// Longest CNAME chain followed inside the served zones.
const MAX_CHAIN: usize = 8;

pub struct DnsServer {
    addr: SocketAddr,
    server: Server<Authority>,
}

impl DnsServer {
    /// Binds UDP and TCP on the same free loopback port and starts
    /// answering; stops when dropped.
    pub async fn start(zones: Zones) -> DnsServer {
        let (udp, tcp) = bind_pair().await;
        let addr = udp.local_addr().expect("udp socket has an address");
        let mut server = Server::new(Authority { zones });
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 32);
        DnsServer { addr, server }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        // Dropping the server aborts its tasks as well; cancelling first
        // lets the listeners stop cleanly.
        self.server.shutdown_token().cancel();
    }
}

/// UDP on port 0 lets the OS pick; that port may be taken for TCP by
/// someone else, so try again with a new one.
async fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let port = udp.local_addr().expect("udp address").port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)).await {
            return (udp, tcp);
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}

struct Authority {
    zones: Zones,
}

/// `RequestHandler` is declared with `#[async_trait]`; this is the
/// signature that macro expands to, written out so the tests need no
/// `async-trait` dependency of their own.
impl RequestHandler for Authority {
    fn handle_request<'life0, 'life1, 'async_trait, R, T>(
        &'life0 self,
        request: &'life1 Request,
        response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'async_trait>>
    where
        R: ResponseHandler + 'async_trait,
        T: Time + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.respond(request, response_handle))
    }
}

impl Authority {
    async fn respond<R: ResponseHandler>(&self, request: &Request, mut handle: R) -> ResponseInfo {
        let queries = request.queries.queries();
        let answer = if request.metadata.op_code != OpCode::Query {
            Answer::error(ResponseCode::NotImp)
        } else if queries.len() != 1 {
            // RFC 9619: a query carries exactly one question.
            Answer::error(ResponseCode::FormErr)
        } else {
            let qname = Name::from(queries[0].name().clone());
            let zones = self.zones.lock();
            answer(&zones, &qname, queries[0].query_type())
        };

        // RFC 6891 §6.2.3: answer EDNS with EDNS; without it a UDP answer
        // is capped at 512 bytes and a longer one comes back truncated.
        let edns = request.edns.as_ref().map(|theirs| {
            let mut ours = Edns::new();
            ours.set_max_payload(theirs.max_payload().max(512));
            ours.set_version(0);
            ours
        });
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &edns {
            builder.edns(edns);
        }
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = answer.authoritative;
        metadata.response_code = answer.code;
        let response = builder.build(
            metadata,
            answer.answers.iter(),
            answer.authority.iter(),
            std::iter::empty(),
            std::iter::empty(),
        );
        match handle.send_response(response).await {
            Ok(info) => info,
            Err(_) => {
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

#[derive(Debug)]
struct Answer {
    code: ResponseCode,
    authoritative: bool,
    answers: Vec<Record>,
    authority: Vec<Record>,
}

impl Answer {
    fn error(code: ResponseCode) -> Self {
        Answer {
            code,
            authoritative: false,
            answers: Vec::new(),
            authority: Vec::new(),
        }
    }
}

fn lower(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

fn within(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}"))
}

/// The most specific zone that holds `name`.
fn zone_of<'z>(zones: &'z [zones::Zone], name: &str) -> Option<&'z zones::Zone> {
    zones
        .iter()
        .filter(|z| within(name, &z.name.to_ascii_lowercase()))
        .max_by_key(|z| z.name.len())
}

fn answer(zones: &[zones::Zone], qname: &Name, qtype: RecordType) -> Answer {
    let name = lower(qname);
    let Some(zone) = zone_of(zones, &name) else {
        // Not ours to answer, as Cloudflare's servers refuse names of zones
        // they do not host.
        return Answer::error(ResponseCode::Refused);
    };
    match resolve(zones, zone, &name, qtype) {
        Ok(answers) if !answers.is_empty() => Answer {
            code: ResponseCode::NoError,
            authoritative: true,
            answers,
            authority: Vec::new(),
        },
        Ok(_) => Answer {
            // RFC 2308 §2.1/§2.2: NXDOMAIN when the name does not exist,
            // NODATA (NOERROR, no answers) when it has other types; both
            // with the zone's SOA for the negative TTL (§3).
            code: if exists(zone, &name) {
                ResponseCode::NoError
            } else {
                ResponseCode::NXDomain
            },
            authoritative: true,
            answers: Vec::new(),
            authority: soa(zone).into_iter().collect(),
        },
        Err(_) => Answer::error(ResponseCode::ServFail),
    }
}

/// The records answering `name`/`qtype`, following CNAMEs while their
/// targets are served here (RFC 1034 §4.3.2 step 3.a).
fn resolve(
    zones: &[zones::Zone],
    zone: &zones::Zone,
    name: &str,
    qtype: RecordType,
) -> Result<Vec<Record>, String> {
    let mut out = Vec::new();
    let (mut zone, mut name) = (zone, name.to_owned());
    for _ in 0..MAX_CHAIN {
        let here = records_at(zone, &name)?;
        let alias = here.iter().find_map(|r| match &r.data {
            RData::CNAME(CNAME(target)) => Some((r.clone(), lower(target))),
            _ => None,
        });
        let Some((alias, target)) =
            alias.filter(|_| !matches!(qtype, RecordType::CNAME | RecordType::ANY))
        else {
            out.extend(
                here.into_iter()
                    .filter(|r| qtype == RecordType::ANY || r.record_type() == qtype),
            );
            return Ok(out);
        };
        out.push(alias);
        match zone_of(zones, &target) {
            Some(next) => (zone, name) = (next, target),
            None => return Ok(out),
        }
    }
    Ok(out)
}

/// Whether `name` exists in `zone`: the apex, a name with records, or an
/// empty non-terminal above one (RFC 8020 §2).
fn exists(zone: &zones::Zone, name: &str) -> bool {
    let apex = zone.name.to_ascii_lowercase();
    name == apex
        || zone
            .records
            .iter()
            .any(|r| r.name == name || r.name.ends_with(&format!(".{name}")))
}

fn fqdn(name: &str) -> Result<Name, String> {
    Name::from_ascii(format!("{}.", name.trim_end_matches('.'))).map_err(|e| format!("{name}: {e}"))
}

fn soa(zone: &zones::Zone) -> Result<Record, String> {
    let apex = fqdn(&zone.name)?;
    let primary = match zone.name_servers.first() {
        Some(ns) => fqdn(ns)?,
        None => fqdn(&format!("ns.{}", zone.name))?,
    };
    let rdata = SOA::new(
        primary,
        fqdn(&format!("dns.{}", zone.name))?,
        2_026_010_101,
        10_000,
        2_400,
        604_800,
        NEGATIVE_TTL,
    );
    Ok(Record::from_rdata(apex, NEGATIVE_TTL, RData::SOA(rdata)))
}

/// Every record served at `name`: the apex SOA and NS set (from the zone's
/// assigned nameservers) and the stored records of the types served here.
fn records_at(zone: &zones::Zone, name: &str) -> Result<Vec<Record>, String> {
    let owner = fqdn(name)?;
    let mut out = Vec::new();
    if name == zone.name.to_ascii_lowercase() {
        out.push(soa(zone)?);
        for ns in &zone.name_servers {
            out.push(Record::from_rdata(
                owner.clone(),
                AUTO_TTL,
                RData::NS(NS(fqdn(ns)?)),
            ));
        }
    }
    for r in zone.records.iter().filter(|r| r.name == name) {
        if let Some(rdata) = rdata(r)? {
            let ttl = if r.ttl <= 1 { AUTO_TTL } else { r.ttl };
            out.push(Record::from_rdata(owner.clone(), ttl, rdata));
        }
    }
    Ok(out)
}

/// A stored record as wire data; `None` for types this server does not
/// serve (CAA, HTTPS …), which still make their name exist.
fn rdata(r: &zones::Record) -> Result<Option<RData>, String> {
    let content = r.content.trim();
    let bad = |what: &str| {
        format!(
            "{} record {} has invalid {what}: {content}",
            r.record_type, r.name
        )
    };
    Ok(Some(match r.record_type.to_ascii_uppercase().as_str() {
        "A" => RData::A(A(content.parse().map_err(|_| bad("address"))?)),
        "AAAA" => RData::AAAA(AAAA(content.parse().map_err(|_| bad("address"))?)),
        "MX" => RData::MX(MX::new(r.priority.unwrap_or(0), fqdn(content)?)),
        "CNAME" => RData::CNAME(CNAME(fqdn(content)?)),
        "NS" => RData::NS(NS(fqdn(content)?)),
        // Reverse zones (RFC 1035 §3.5), for the doctor's PTR check.
        "PTR" => RData::PTR(PTR(fqdn(content)?)),
        "TXT" => {
            let strings = txt_strings(content);
            RData::TXT(TXT::from_bytes(strings.iter().map(Vec::as_slice).collect()))
        }
        _ => return Ok(None),
    }))
}

/// Cloudflare's stored TXT content as DNS character-strings (RFC 1035
/// §3.3.14): quoted strings, possibly several (`"a" "b"`), with `\"`, `\\`
/// and `\DDD` escapes (RFC 1035 §5.1); unquoted content as is. Either way
/// no string is longer than 255 bytes.
pub fn txt_strings(content: &str) -> Vec<Vec<u8>> {
    let t = content.trim();
    let quoted = t.len() >= 2 && t.starts_with('"') && t.ends_with('"');
    let strings = if quoted {
        parse_quoted(t)
    } else {
        vec![t.as_bytes().to_vec()]
    };
    let mut out: Vec<Vec<u8>> = strings
        .iter()
        .flat_map(|s| s.chunks(255).map(<[u8]>::to_vec))
        .collect();
    if out.is_empty() {
        out.push(Vec::new());
    }
    out
}

fn parse_quoted(t: &str) -> Vec<Vec<u8>> {
    let bytes = t.as_bytes();
    let mut strings = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        let Some(s) = current.as_mut() else {
            if b == b'"' {
                current = Some(Vec::new());
            }
            continue;
        };
        match b {
            b'"' => strings.extend(current.take()),
            b'\\' if i + 2 < bytes.len() && bytes[i..i + 3].iter().all(u8::is_ascii_digit) => {
                let digits = std::str::from_utf8(&bytes[i..i + 3]).unwrap_or("0");
                s.push(digits.parse::<u16>().map_or(b'?', |n| n.min(255) as u8));
                i += 3;
            }
            b'\\' if i < bytes.len() => {
                s.push(bytes[i]);
                i += 1;
            }
            other => s.push(other),
        }
    }
    // An unterminated last string still counts.
    strings.extend(current);
    strings
}
