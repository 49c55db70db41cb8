//! Which of the server's public addresses a domain's mail leaves from.
//!
//! KumoMTA sends through egress sources gathered in pools
//! (`kumo.make_egress_source`, `kumo.make_egress_pool`; fact sheet §7 and
//! KumoMTA's `crates/kumod/src/egress_source.rs`). The policy asks the
//! control endpoint for them ([`Plan`]), and routes each submitted message
//! to its domain's pool through the message's `tenant` (the queue config
//! names the pool). A domain bound to one address keeps its reputation to
//! itself; an unbound one uses the default source, which binds no address
//! and lets the system route: on a VPS whose public address is NAT'ed
//! (not on any interface), binding it would fail every delivery.

use std::net::{IpAddr, UdpSocket};

use serde::Serialize;
use uuid::Uuid;

use super::service::{DomainError, DomainView, Orchestrator};
use crate::store::domains as repo;

/// The pool of domains bound to no address.
pub const DEFAULT_POOL: &str = "inboxgrove";
const DEFAULT_SOURCE: &str = "inboxgrove-default";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    pub name: String,
    /// The local address KumoMTA binds; `None` lets the system choose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_address: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pool {
    pub name: String,
    pub sources: Vec<String>,
}

/// Every source and pool the policy may be asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub sources: Vec<Source>,
    pub pools: Vec<Pool>,
}

/// A source name KumoMTA can use anywhere a name goes (queue and site
/// names, log records): the address with `.` and `:` made `-`.
pub fn source_name(ip: IpAddr) -> String {
    format!("ip-{}", ip.to_string().replace(['.', ':'], "-"))
}

/// The pool a domain bound to `ip` (or to nothing) sends through.
pub fn pool_for(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| DEFAULT_POOL.to_owned(), source_name)
}

/// The default pool plus one single-source pool for each of `addresses`
/// (the configured public addresses and any a domain is bound to),
/// without repeats.
pub fn plan(addresses: impl IntoIterator<Item = IpAddr>) -> Plan {
    let mut sources = vec![Source {
        name: DEFAULT_SOURCE.to_owned(),
        source_address: None,
    }];
    let mut pools = vec![Pool {
        name: DEFAULT_POOL.to_owned(),
        sources: vec![DEFAULT_SOURCE.to_owned()],
    }];
    for ip in addresses {
        let name = source_name(ip);
        if sources.iter().any(|s| s.name == name) {
            continue;
        }
        sources.push(Source {
            name: name.clone(),
            source_address: Some(ip),
        });
        pools.push(Pool {
            name: name.clone(),
            sources: vec![name],
        });
    }
    Plan { sources, pools }
}

impl Orchestrator {
    /// Binds a domain's mail to `ip` (`None`: back to the default). The
    /// address must be one of the server's public addresses, since SPF
    /// authorises only those, and one this machine has, since KumoMTA
    /// cannot send from an address it cannot bind.
    pub async fn set_egress_ip(
        &self,
        id: Uuid,
        scope: Option<Uuid>,
        ip: Option<IpAddr>,
    ) -> Result<DomainView, DomainError> {
        self.get(id, scope).await?;
        if let Some(ip) = ip {
            self.check_egress_ip(ip)?;
        }
        let now = self.clock.now();
        self.store
            .write(move |tx| repo::set_egress_ip(tx, id, ip, now))
            .await?;
        self.mailboxes.tell_kumomta();
        self.view(id, None).await
    }

    /// The addresses a domain may be bound to: the server's public ones.
    pub fn egress_choices(&self) -> Vec<IpAddr> {
        let settings = self.settings.get();
        let s = &settings.domains;
        [s.public_ipv4.map(IpAddr::V4), s.public_ipv6.map(IpAddr::V6)]
            .into_iter()
            .flatten()
            .collect()
    }

    fn check_egress_ip(&self, ip: IpAddr) -> Result<(), DomainError> {
        let public = self.egress_choices();
        if !public.contains(&ip) {
            let listed: Vec<String> = public.iter().map(IpAddr::to_string).collect();
            return Err(DomainError::Invalid {
                field: "egress_ip",
                message: format!(
                    "{ip} is not one of this server's public addresses ({}); SPF authorises only those. Set it as public_ipv4 or public_ipv6 on the settings page first",
                    if listed.is_empty() {
                        "none set".to_owned()
                    } else {
                        listed.join(", ")
                    }
                ),
            });
        }
        UdpSocket::bind((ip, 0)).map_err(|e| DomainError::Invalid {
            field: "egress_ip",
            message: format!(
                "this machine has no interface with {ip} ({e}), so KumoMTA could not send from it; leave egress_ip unset to send from the address the system routes from"
            ),
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_own_source_and_pool_once() {
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        let v6: IpAddr = "2001:db8::7".parse().unwrap();
        let plan = plan([v4, v6, v4]);
        let names: Vec<&str> = plan.pools.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["inboxgrove", "ip-203-0-113-7", "ip-2001-db8--7"]);
        assert_eq!(plan.sources[0].source_address, None);
        assert_eq!(plan.sources[2].source_address, Some(v6));
        assert_eq!(plan.pools[2].sources, ["ip-2001-db8--7"]);
        assert_eq!(pool_for(Some(v6)), plan.pools[2].name);
        assert_eq!(pool_for(None), DEFAULT_POOL);
    }
}
