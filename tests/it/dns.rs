//! The loopback DNS server: what it serves from the shared zones, over UDP
//! and TCP. The propagation checker and DKIM verification against it are in
//! the submodules.

mod checker;
pub(crate) mod dkim;

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::op::{Edns, Message, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use inboxgrove::domains::dkim::{self as dkim_keys, KeyPair};
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::OnceCell;

use crate::support::dns_server::{DnsServer, txt_strings};
use crate::support::zones::Zones;

const ZONE: &str = "acme.example";

/// One 2048-bit key for every test: generating one takes seconds in a
/// debug build.
async fn key() -> &'static KeyPair {
    static KEY: OnceCell<KeyPair> = OnceCell::const_new();
    KEY.get_or_init(|| async { dkim_keys::generate().await.unwrap() })
        .await
}

/// A TXT value as Cloudflare stores a long one: quoted and split in two.
fn quoted_split(value: &str, at: usize) -> String {
    format!("\"{}\" \"{}\"", &value[..at], &value[at..])
}

fn quoted(value: &str) -> String {
    format!("\"{value}\"")
}

async fn server_with(records: &[(&str, &str, &str, Option<u16>)]) -> (Zones, DnsServer) {
    let zones = Zones::default();
    zones.add_zone(ZONE);
    for (t, name, content, priority) in records {
        zones.add_record(ZONE, t, name, content, *priority);
    }
    let server = DnsServer::start(zones.clone()).await;
    (zones, server)
}

#[derive(Clone, Copy, Debug)]
enum Transport {
    Udp,
    Tcp,
}

fn query(name: &str, qtype: RecordType, edns: bool) -> Vec<u8> {
    let mut m = Message::query();
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if edns {
        m.set_edns(Edns::new());
    }
    m.to_vec().unwrap()
}

async fn exchange(addr: SocketAddr, bytes: &[u8], via: Transport) -> Message {
    let reply = async {
        match via {
            Transport::Udp => {
                let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                sock.send_to(bytes, addr).await.unwrap();
                let mut buf = vec![0; 65_535];
                let n = sock.recv(&mut buf).await.unwrap();
                buf.truncate(n);
                buf
            }
            Transport::Tcp => {
                // RFC 1035 §4.2.2: each message prefixed by its length.
                let mut conn = TcpStream::connect(addr).await.unwrap();
                let len = u16::try_from(bytes.len()).unwrap();
                conn.write_all(&len.to_be_bytes()).await.unwrap();
                conn.write_all(bytes).await.unwrap();
                let len = conn.read_u16().await.unwrap();
                let mut buf = vec![0; usize::from(len)];
                conn.read_exact(&mut buf).await.unwrap();
                buf
            }
        }
    };
    let buf = tokio::time::timeout(Duration::from_secs(5), reply)
        .await
        .expect("the server answers");
    Message::from_vec(&buf).unwrap()
}

async fn ask(addr: SocketAddr, name: &str, qtype: RecordType, via: Transport) -> Message {
    exchange(addr, &query(name, qtype, true), via).await
}

/// Answer records as `TYPE text`, text as the checker renders it.
fn shown(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            let text = match &r.data {
                RData::A(a) => a.0.to_string(),
                RData::AAAA(a) => a.0.to_string(),
                RData::MX(mx) => format!("{} {}", mx.preference, mx.exchange),
                RData::CNAME(c) => c.0.to_string(),
                RData::NS(ns) => ns.0.to_string(),
                RData::SOA(soa) => format!("{} {}", soa.mname, soa.minimum),
                RData::TXT(t) => t
                    .txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<Vec<_>>()
                    .join("|"),
                other => format!("{other:?}"),
            };
            format!("{} {text}", r.record_type())
        })
        .collect()
}

/// A resolver that asks only the loopback server, over one transport.
fn resolver(addr: SocketAddr, via: Transport) -> TokioResolver {
    let mut ns = match via {
        Transport::Udp => NameServerConfig::udp(addr.ip()),
        Transport::Tcp => NameServerConfig::tcp(addr.ip()),
    };
    for c in &mut ns.connections {
        c.port = addr.port();
    }
    let config = ResolverConfig::from_parts(None, Vec::new(), vec![ns]);
    let mut builder = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
    builder.options_mut().cache_size = 0;
    builder.options_mut().timeout = Duration::from_secs(2);
    builder.build().unwrap()
}

#[tokio::test]
async fn serves_each_type_authoritatively_over_udp_and_tcp() {
    let (_zones, server) = server_with(&[
        ("A", "mail.acme.example", "203.0.113.7", None),
        ("AAAA", "mail.acme.example", "2001:db8::7", None),
        ("MX", ZONE, "mail.acme.example", Some(10)),
        ("TXT", ZONE, "\"v=spf1 ip4:203.0.113.7 -all\"", None),
        ("TXT", ZONE, "google-site-verification=abc", None),
        (
            "CNAME",
            "track.acme.example",
            "track.inboxgrove.example",
            None,
        ),
        ("CAA", ZONE, "0 issue \"letsencrypt.org\"", None),
    ])
    .await;
    let cases: [(&str, RecordType, &[&str]); 7] = [
        ("mail.acme.example.", RecordType::A, &["A 203.0.113.7"]),
        (
            "mail.acme.example.",
            RecordType::AAAA,
            &["AAAA 2001:db8::7"],
        ),
        (
            "acme.example.",
            RecordType::MX,
            &["MX 10 mail.acme.example."],
        ),
        (
            "ACME.example.",
            RecordType::TXT,
            &[
                "TXT v=spf1 ip4:203.0.113.7 -all",
                "TXT google-site-verification=abc",
            ],
        ),
        (
            "track.acme.example.",
            RecordType::CNAME,
            &["CNAME track.inboxgrove.example."],
        ),
        (
            "acme.example.",
            RecordType::NS,
            &["NS ada.ns.test.", "NS bob.ns.test."],
        ),
        ("acme.example.", RecordType::SOA, &["SOA ada.ns.test. 60"]),
    ];
    for via in [Transport::Udp, Transport::Tcp] {
        for (name, qtype, want) in cases {
            let reply = ask(server.addr(), name, qtype, via).await;
            assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
            assert!(reply.metadata.authoritative, "{via:?} {name} {qtype}: AA");
            assert_eq!(shown(&reply.answers), want, "{via:?} {name} {qtype}");
        }
    }

    // The same through a resolver that speaks TCP only.
    let tcp = resolver(server.addr(), Transport::Tcp);
    let mx = tcp.lookup("acme.example.", RecordType::MX).await.unwrap();
    assert_eq!(shown(mx.answers()), ["MX 10 mail.acme.example."]);
    let a = tcp
        .lookup("mail.acme.example.", RecordType::A)
        .await
        .unwrap();
    assert_eq!(shown(a.answers()), ["A 203.0.113.7"]);
}

#[tokio::test]
async fn aliases_inside_the_zones_are_followed() {
    let (_zones, server) = server_with(&[
        ("CNAME", "www.acme.example", "mail.acme.example", None),
        ("A", "mail.acme.example", "203.0.113.7", None),
    ])
    .await;
    let reply = ask(
        server.addr(),
        "www.acme.example.",
        RecordType::A,
        Transport::Udp,
    )
    .await;
    assert_eq!(
        shown(&reply.answers),
        ["CNAME mail.acme.example.", "A 203.0.113.7"]
    );
}

#[tokio::test]
async fn tells_nxdomain_from_nodata_and_refuses_foreign_names() {
    let (_zones, server) = server_with(&[
        ("A", "mail.acme.example", "203.0.113.7", None),
        (
            "TXT",
            "sel._domainkey.acme.example",
            "\"v=DKIM1; p=\"",
            None,
        ),
    ])
    .await;
    let addr = server.addr();
    for via in [Transport::Udp, Transport::Tcp] {
        let nx = ask(addr, "nope.acme.example.", RecordType::A, via).await;
        assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
        assert!(nx.metadata.authoritative && nx.answers.is_empty());
        assert_eq!(shown(&nx.authorities), ["SOA ada.ns.test. 60"]);

        let nodata = ask(addr, "mail.acme.example.", RecordType::TXT, via).await;
        assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
        assert!(nodata.answers.is_empty());
        assert_eq!(shown(&nodata.authorities), ["SOA ada.ns.test. 60"]);

        // An empty non-terminal exists (RFC 8020).
        let ent = ask(addr, "_domainkey.acme.example.", RecordType::TXT, via).await;
        assert_eq!(ent.metadata.response_code, ResponseCode::NoError);

        let foreign = ask(addr, "example.net.", RecordType::A, via).await;
        assert_eq!(foreign.metadata.response_code, ResponseCode::Refused);
        assert!(!foreign.metadata.authoritative);
    }

    let r = resolver(addr, Transport::Udp);
    let nx = r
        .lookup("nope.acme.example.", RecordType::A)
        .await
        .unwrap_err();
    assert!(nx.is_nx_domain(), "{nx}");
    let nodata = r
        .lookup("mail.acme.example.", RecordType::MX)
        .await
        .unwrap_err();
    assert!(
        nodata.is_no_records_found() && !nodata.is_nx_domain(),
        "{nodata}"
    );
}

#[tokio::test]
async fn a_2048_bit_dkim_record_comes_back_whole() {
    let value = dkim_keys::txt_value(&key().await.public_b64);
    assert!(value.len() > 400, "{}", value.len());
    let (_zones, server) = server_with(&[
        (
            "TXT",
            "split._domainkey.acme.example",
            &quoted_split(&value, 255),
            None,
        ),
        (
            "TXT",
            "whole._domainkey.acme.example",
            &quoted(&value),
            None,
        ),
        ("TXT", "bare._domainkey.acme.example", &value, None),
    ])
    .await;
    for via in [Transport::Udp, Transport::Tcp] {
        let r = resolver(server.addr(), via);
        for selector in ["split", "whole", "bare"] {
            let name = format!("{selector}._domainkey.acme.example.");
            let lookup = r.lookup(name.as_str(), RecordType::TXT).await.unwrap();
            let [record] = lookup.answers() else {
                panic!("one TXT record at {name}");
            };
            let RData::TXT(txt) = &record.data else {
                panic!("TXT at {name}");
            };
            assert!(txt.txt_data.iter().all(|s| s.len() <= 255));
            assert!(txt.txt_data.len() >= 2, "{selector}: split into strings");
            assert_eq!(txt.to_string(), value, "{via:?} {selector}");
        }
    }
}

#[tokio::test]
async fn answers_too_long_for_plain_udp_are_truncated_then_served_over_tcp() {
    let long = "x".repeat(700);
    let (_zones, server) = server_with(&[("TXT", "big.acme.example", &long, None)]).await;
    let plain = query("big.acme.example.", RecordType::TXT, false);
    let udp = exchange(server.addr(), &plain, Transport::Udp).await;
    assert!(
        udp.metadata.truncation,
        "RFC 1035 §4.2.1: 512 bytes over UDP"
    );
    let tcp = exchange(server.addr(), &plain, Transport::Tcp).await;
    assert!(!tcp.metadata.truncation);
    let strings = format!(
        "TXT {}|{}|{}",
        "x".repeat(255),
        "x".repeat(255),
        "x".repeat(190)
    );
    assert_eq!(shown(&tcp.answers), [strings]);
}

#[tokio::test]
async fn reflects_zone_changes_at_once() {
    let (zones, server) = server_with(&[]).await;
    let name = "_dmarc.acme.example.";
    let before = ask(server.addr(), name, RecordType::TXT, Transport::Udp).await;
    assert_eq!(before.metadata.response_code, ResponseCode::NXDomain);
    let id = zones.add_record(
        ZONE,
        "TXT",
        "_dmarc.acme.example",
        "\"v=DMARC1; p=none\"",
        None,
    );
    let after = ask(server.addr(), name, RecordType::TXT, Transport::Udp).await;
    assert_eq!(shown(&after.answers), ["TXT v=DMARC1; p=none"]);
    zones.remove_record(&id);
    let gone = ask(server.addr(), name, RecordType::TXT, Transport::Tcp).await;
    assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn cloudflare_txt_content_becomes_character_strings() {
    let strings = |c: &str| -> Vec<String> {
        txt_strings(c)
            .iter()
            .map(|s| String::from_utf8(s.clone()).unwrap())
            .collect()
    };
    assert_eq!(strings("\"a b\" \"c\""), ["a b", "c"]);
    assert_eq!(strings(r#""say \"hi\" \\o/""#), [r#"say "hi" \o/"#]);
    assert_eq!(strings(r#""caf\195\169""#), ["café"]);
    assert_eq!(strings("v=spf1 -all"), ["v=spf1 -all"]);
    assert_eq!(strings("\"\""), [""]);
    let long = "y".repeat(300);
    assert_eq!(strings(&long), ["y".repeat(255), "y".repeat(45)]);
    assert_eq!(strings(&quoted(&long)), ["y".repeat(255), "y".repeat(45)]);
}

#[tokio::test]
async fn survives_junk() {
    let (_zones, server) = server_with(&[("A", "mail.acme.example", "203.0.113.7", None)]).await;
    let addr = server.addr();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x1bad_d0d5);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut junk: Vec<Vec<u8>> = (0..200)
        .map(|_| {
            let len = rng.gen_range(0..600);
            (0..len).map(|_| rng.r#gen::<u8>()).collect()
        })
        .collect();
    // A header that promises a question it does not carry, a response
    // (never answered, against reflection), and a query with an unknown
    // opcode.
    junk.push(vec![0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
    junk.push(vec![0x12, 0x34, 0x80, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
    let mut odd = query("mail.acme.example.", RecordType::A, false);
    odd[2] |= 0x78;
    junk.push(odd);
    for packet in &junk {
        sock.send_to(packet, addr).await.unwrap();
    }
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(&[0x00, 0x05, 1, 2, 3, 4, 5, 0xff])
        .await
        .unwrap();
    drop(conn);

    for via in [Transport::Udp, Transport::Tcp] {
        let reply = ask(addr, "mail.acme.example.", RecordType::A, via).await;
        assert_eq!(shown(&reply.answers), ["A 203.0.113.7"], "{via:?}");
    }
}

/// A socket that takes queries and never answers, on a port where TCP is
/// refused: a dead nameserver.
async fn silent_server() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}
