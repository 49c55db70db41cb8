//! `trusted_proxies`: the reverse proxies whose `X-Forwarded-For` names the
//! client. A header from any other peer is ignored, since whoever connects
//! can write one: believing it would let every request pick its own
//! throttle and rate-limit bucket.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;
use serde::Deserialize;

/// CIDRs (or single addresses) of the proxies in front of the public
/// listener; empty (the default) trusts none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ProxyList")]
pub struct TrustedProxies(Vec<IpNet>);

/// The TOML form: a list of strings, or one comma-separated string as the
/// flag and environment take.
#[derive(Deserialize)]
#[serde(untagged)]
enum ProxyList {
    One(String),
    Many(Vec<String>),
}

impl TryFrom<ProxyList> for TrustedProxies {
    type Error = String;
    fn try_from(list: ProxyList) -> Result<Self, String> {
        match list {
            ProxyList::One(s) => s.parse(),
            ProxyList::Many(v) => v.join(",").parse(),
        }
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in s.split([',', ' ']).map(str::trim).filter(|i| !i.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => match item.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip.to_canonical()),
                    Err(_) => {
                        return Err(format!(
                            "'{item}' is not an address or CIDR; give proxies like 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32"
                        ));
                    }
                },
            };
            if net.trunc() != net {
                return Err(format!(
                    "'{item}' has bits set past its prefix length; did you mean {}?",
                    net.trunc()
                ));
            }
            if net.prefix_len() == 0 {
                return Err(format!(
                    "'{item}' trusts every address, so any client could name itself in X-Forwarded-For; list only your proxies' addresses"
                ));
            }
            nets.push(net);
        }
        Ok(Self(nets))
    }
}

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client of a request that came from `peer` with these
    /// `X-Forwarded-For` values (in header order). Each proxy appends the
    /// address it was connected from, so walking from the right, the first
    /// hop that is not a trusted proxy is the client; an entry that is not
    /// an address stops the walk at the proxy that passed it on.
    pub fn client<'a>(&self, peer: IpAddr, forwarded: impl Iterator<Item = &'a str>) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let hops: Vec<&str> = forwarded.flat_map(|v| v.split(',')).collect();
        for hop in hops.iter().rev().map(|h| h.trim()) {
            let Some(ip) = parse_hop(hop) else { break };
            client = ip.to_canonical();
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// `192.0.2.1`, `2001:db8::1`, or either with a port (`[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn bad_entries_are_refused_with_the_reason() {
        for (input, says) in [
            ("10.0.0.0/33", "not an address or CIDR"),
            ("proxy.internal", "not an address or CIDR"),
            ("10.0.0.1/8", "did you mean 10.0.0.0/8"),
            ("0.0.0.0/0", "trusts every address"),
            ("10.0.0.0/8, ::/0", "trusts every address"),
            ("192.0.2.1,,fe80::/10 x", "'x' is not"),
        ] {
            let err = input.parse::<TrustedProxies>().unwrap_err();
            assert!(err.contains(says), "{input}: {err}");
        }
        let ok: TrustedProxies = " 10.0.0.0/8 192.0.2.7, 2001:db8::/32 ".parse().unwrap();
        assert_eq!(ok.0.len(), 3);
        assert!("".parse::<TrustedProxies>().unwrap().0.is_empty());
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let t: TrustedProxies = "10.0.0.0/8, 192.0.2.7".parse().unwrap();
        let proxy = ip("10.1.1.1");
        let hops = |v: &'static [&'static str]| v.iter().copied();
        // A client may prepend anything; only what our proxies added counts.
        let forged = hops(&["6.6.6.6, 203.0.113.5", "192.0.2.7"]);
        assert_eq!(t.client(proxy, forged), ip("203.0.113.5"));
        // An untrusted peer's header is ignored.
        let direct = ip("198.51.100.2");
        assert_eq!(t.client(direct, hops(&["203.0.113.5"])), direct);
        // No header, or garbage from the proxy: the proxy itself.
        assert_eq!(t.client(proxy, hops(&[])), proxy);
        assert_eq!(t.client(proxy, hops(&["unknown"])), proxy);
        // Ports and IPv4-mapped IPv6 are the plain address.
        assert_eq!(
            t.client(ip("::ffff:10.0.0.2"), hops(&["[2001:db8::5]:4711"])),
            ip("2001:db8::5")
        );
        // Nothing trusted: the header never matters.
        let none = TrustedProxies::default();
        assert_eq!(none.client(proxy, hops(&["203.0.113.5"])), proxy);
    }
}
