//! How this host reaches its own listeners.

use std::net::{IpAddr, SocketAddr};

use super::Settings;

/// The address to reach a listener on `addr` from this host: a wildcard
/// listener (`0.0.0.0`, `[::]`) is reached on loopback.
pub fn local_address(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        ip if ip.is_unspecified() => SocketAddr::new(IpAddr::from([127, 0, 0, 1]), addr.port()),
        _ => addr,
    }
}

impl Settings {
    /// `http://IP:PORT` of the control listener as the console, Dovecot's
    /// helper and KumoMTA on this host reach it.
    pub fn control_url(&self) -> String {
        format!("http://{}", local_address(self.control_listen))
    }
}
