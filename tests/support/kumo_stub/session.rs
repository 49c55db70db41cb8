//! The harness side of `session.lua`: open an SMTP session on a listener
//! the policy started, STARTTLS, EHLO, AUTH PLAIN and DATA as kumod runs
//! them (crates/kumod/src/smtp_server.rs), and the natives those need.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mlua::prelude::*;
use serde_json::{Map, Value};

use super::{KumoStub, Outcome};

pub(super) const SESSION: &str = include_str!("session.lua");

/// The stand-in's clock reads this (2026-12-01T00:00:00Z) plus the
/// memoize clock, for Received dates, DKIM `t=` and maildir file names.
pub(super) const EPOCH: i64 = 1_796_083_200;

/// The server's own address on an unspecified listen address: TEST-NET-1
/// (RFC 5737) and the IPv6 documentation prefix (RFC 3849).
const SERVER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

pub(super) fn natives(lua: &Lua, t: &LuaTable) -> LuaResult<()> {
    t.set("epoch", EPOCH)?;
    t.set(
        "session_addresses",
        lua.create_function(|lua, (listen, peer): (String, String)| {
            let (via, from) = addresses(&listen, &peer).map_err(LuaError::runtime)?;
            let out = lua.create_table()?;
            out.set("via", via.to_string())?;
            out.set("from", from.to_string())?;
            out.set("via_ip", via.ip().to_string())?;
            out.set("peer_ip", from.ip().to_string())?;
            Ok(out)
        })?,
    )?;
    t.set("hostname", lua.create_function(|_, ()| Ok(hostname()))?)?;
    t.set(
        "cidr_contains",
        lua.create_function(|_, (list, ip): (Vec<String>, String)| {
            let ip: IpAddr = ip.parse().map_err(LuaError::external)?;
            list.iter()
                .map(|c| cidr_contains(c, ip))
                .try_fold(false, |any, hit| hit.map(|h| any || h))
                .map_err(LuaError::runtime)
        })?,
    )?;
    t.set(
        "rfc2822",
        lua.create_function(|_, secs: i64| {
            chrono::DateTime::from_timestamp(secs, 0)
                .map(|d| d.to_rfc2822())
                .ok_or_else(|| LuaError::runtime("time out of range"))
        })?,
    )?;
    t.set(
        "kumo_ref",
        lua.create_function(
            |lua, (recipient, names, meta): (String, Vec<String>, LuaTable)| {
                // TraceHeaders::apply_supplemental (smtp_server.rs).
                let mut object = Map::new();
                object.insert("_@_".into(), Value::from("\\_/"));
                object.insert("recipient".into(), Value::from(recipient));
                for name in names {
                    let value: Value = lua.from_value(meta.get::<LuaValue>(name.as_str())?)?;
                    object.insert(name, value);
                }
                Ok(STANDARD.encode(Value::Object(object).to_string()))
            },
        )?,
    )?;
    Ok(())
}

/// The session's local and peer addresses as kumod's socket reports them.
/// An IPv4 socket (`0.0.0.0`) takes IPv4 peers only; an IPv6 wildcard
/// socket is dual-stack on Linux and sees IPv4 peers as mapped addresses.
fn addresses(listen: &str, peer: &str) -> Result<(SocketAddr, SocketAddr), String> {
    let listen: SocketAddr = listen
        .parse()
        .map_err(|e| format!("stub: listen {listen:?}: {e}"))?;
    let peer: SocketAddr = peer
        .parse()
        .map_err(|e| format!("stub: peer {peer:?}: {e}"))?;
    let from = match (listen.ip(), peer.ip()) {
        (IpAddr::V4(_), IpAddr::V6(_)) => {
            return Err(format!(
                "stub: {peer} cannot connect to {listen}: an IPv4 socket takes no IPv6 peers"
            ));
        }
        (IpAddr::V6(l), IpAddr::V4(p)) if l.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(p.to_ipv6_mapped()), peer.port())
        }
        (IpAddr::V6(_), IpAddr::V4(_)) => {
            return Err(format!("stub: {peer} cannot connect to {listen}"));
        }
        _ => peer,
    };
    let local = match listen.ip() {
        ip if !ip.is_unspecified() => ip,
        _ if from.ip().is_loopback() => from.ip(),
        IpAddr::V4(_) => IpAddr::V4(SERVER_V4),
        IpAddr::V6(_) => IpAddr::V6(SERVER_V6),
    };
    Ok((SocketAddr::new(local, listen.port()), from))
}

/// Whether `cidr` (`a.b.c.d/n`, `v6/n` or a bare address) holds `ip`; an
/// IPv4-mapped peer counts as its IPv4 address.
fn cidr_contains(cidr: &str, ip: IpAddr) -> Result<bool, String> {
    let (net, len) = cidr.split_once('/').unwrap_or((cidr, ""));
    let net: IpAddr = net.parse().map_err(|e| format!("{cidr:?}: {e}"))?;
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let (a, b, bits) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => (u128::from(n.to_bits()), u128::from(i.to_bits()), 32),
        (IpAddr::V6(n), IpAddr::V6(i)) => (n.to_bits(), i.to_bits(), 128),
        _ => return Ok(false),
    };
    let len: u32 = if len.is_empty() {
        bits
    } else {
        len.parse().map_err(|e| format!("{cidr:?}: {e}"))?
    };
    if len > bits {
        return Err(format!("{cidr:?}: prefix longer than the address"));
    }
    let shift = bits - len;
    Ok(len == 0 || (a >> shift) == (b >> shift))
}

/// kumod's default hostname is gethostname(), "localhost" if unreadable
/// (smtp_server.rs default_hostname).
pub(super) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

impl KumoStub {
    /// Fires `pre_init` then `init`, as kumod does when it starts
    /// (crates/kumod/src/main.rs); panics if either fails.
    pub fn start(&self) {
        for event in ["pre_init", "init"] {
            match self.fire(event, ()) {
                Outcome::Returned(_) => {}
                other => panic!("{event} failed: {other:?}"),
            }
        }
    }

    /// A session from `peer` (`ip:port`) on the listener the policy
    /// started whose `listen` or `meta.x_listener` is `listener`.
    pub fn session(&self, listener: &str, peer: &str) -> LuaTable {
        self.stub_fn("session", (listener, peer))
    }

    pub fn starttls(&self, conn: &LuaTable) -> (u16, String) {
        self.reply("starttls", conn.clone())
    }

    pub fn ehlo(&self, conn: &LuaTable, domain: &str) -> (u16, String) {
        self.reply("ehlo", (conn.clone(), domain))
    }

    /// AUTH PLAIN with `authz` (empty: none given), `authc` and
    /// `password`; the SMTP reply kumod would send.
    pub fn auth_plain(
        &self,
        conn: &LuaTable,
        authz: &str,
        authc: &str,
        password: &str,
    ) -> (u16, String) {
        self.reply("auth_plain", (conn.clone(), authz, authc, password))
    }

    pub fn mail_from(&self, conn: &LuaTable, sender: &str) -> (u16, String) {
        self.reply("mail_from", (conn.clone(), sender))
    }

    pub fn rcpt_to(&self, conn: &LuaTable, recipient: &str) -> (u16, String) {
        self.reply("rcpt_to", (conn.clone(), recipient))
    }

    /// DATA for the open transaction, `spec` `{headers: [[n, v]…], body}`:
    /// kumod's reply and the messages it made, one per recipient.
    pub fn data(&self, conn: &LuaTable, spec: Value) -> (u16, String, Vec<LuaTable>) {
        let f: LuaFunction = self.stub.get("data").unwrap();
        let args = (conn.clone(), self.to_lua(&spec));
        tokio::task::block_in_place(|| f.call(args)).unwrap_or_else(|e| panic!("stub.data: {e}"))
    }

    /// `smtp_server_message_received` for `msg` made from `conn`, then the
    /// supplemental trace header when it was accepted.
    pub fn receive(&self, msg: &LuaTable, conn: &LuaTable) -> Outcome {
        let args = (msg.clone(), conn.clone())
            .into_lua_multi(&self.lua)
            .unwrap();
        self.run("receive", args)
    }

    /// The message's bytes as kumod would spool them: headers, blank line,
    /// body.
    pub fn raw(&self, msg: &LuaTable) -> String {
        msg.call_method("get_data", ()).unwrap()
    }

    fn reply(&self, name: &str, args: impl IntoLuaMulti) -> (u16, String) {
        let f: LuaFunction = self.stub.get(name).unwrap();
        let (code, text): (u16, String) = tokio::task::block_in_place(|| f.call(args))
            .unwrap_or_else(|e| panic!("stub.{name}: {e}"));
        (code, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_report_addresses_as_the_kernel_does() {
        let (via, from) = addresses("0.0.0.0:587", "198.51.100.7:40123").unwrap();
        assert_eq!(
            (via.to_string(), from.to_string()),
            ("192.0.2.1:587".into(), "198.51.100.7:40123".into())
        );
        assert!(addresses("0.0.0.0:25", "[2001:db8::25]:50000").is_err());
        let (_, mapped) = addresses("[::]:25", "198.51.100.7:1").unwrap();
        assert_eq!(mapped.to_string(), "[::ffff:198.51.100.7]:1");
        let (via, _) = addresses("0.0.0.0:25", "127.0.0.1:9").unwrap();
        assert_eq!(via.to_string(), "127.0.0.1:25");
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(cidr_contains("127.0.0.1", ip("127.0.0.1")).unwrap());
        assert!(cidr_contains("10.0.0.0/8", ip("::ffff:10.1.2.3")).unwrap());
        assert!(!cidr_contains("255.255.255.255/32", ip("198.51.100.7")).unwrap());
        assert!(!cidr_contains("::1", ip("127.0.0.1")).unwrap());
    }
}
