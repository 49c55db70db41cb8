//! The DNS data shared by the test doubles: the Cloudflare API double
//! writes records here and the loopback DNS server answers from here, so
//! what the API "publishes" is what DNS serves, as on the real internet.
//! Tests also edit it directly (manual DNS mode: the person creates the
//! records by hand).
#![allow(dead_code)]

use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    /// Any type, including ones InboxGrove never writes (CAA, HTTPS …).
    pub record_type: String,
    /// Fully qualified, lower case, no trailing dot.
    pub name: String,
    /// As Cloudflare stores it: TXT content quoted (`"v=spf1 -all"`,
    /// possibly split `"a" "b"`), MX/CNAME targets without trailing dot.
    pub content: String,
    pub priority: Option<u16>,
    pub ttl: u32,
    pub proxied: bool,
    pub comment: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Zone {
    pub id: String,
    pub name: String,
    pub account_id: String,
    pub name_servers: Vec<String>,
    pub records: Vec<Record>,
}

#[derive(Clone, Default)]
pub struct Zones(Arc<Mutex<Vec<Zone>>>);

impl Zones {
    pub fn lock(&self) -> MutexGuard<'_, Vec<Zone>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an empty zone; returns its id.
    pub fn add_zone(&self, name: &str) -> String {
        let mut zones = self.lock();
        let id = format!("zone{:028x}", zones.len() + 1);
        zones.push(Zone {
            id: id.clone(),
            name: name.to_owned(),
            account_id: "acct0000000000000000000000000001".to_owned(),
            name_servers: vec![format!("ada.ns.test"), format!("bob.ns.test")],
            records: Vec::new(),
        });
        id
    }

    /// Adds a record to the zone named `zone`; returns its id.
    pub fn add_record(
        &self,
        zone: &str,
        record_type: &str,
        name: &str,
        content: &str,
        priority: Option<u16>,
    ) -> String {
        let mut zones = self.lock();
        let z = zones
            .iter_mut()
            .find(|z| z.name == zone)
            .unwrap_or_else(|| panic!("no zone {zone}"));
        let id = format!("rec{:029x}", z.records.len() + 1 + rand_suffix());
        z.records.push(Record {
            id: id.clone(),
            record_type: record_type.to_owned(),
            name: name.to_ascii_lowercase(),
            content: content.to_owned(),
            priority,
            ttl: 1,
            proxied: false,
            comment: None,
        });
        id
    }

    pub fn records(&self, zone: &str) -> Vec<Record> {
        self.lock()
            .iter()
            .find(|z| z.name == zone)
            .map(|z| z.records.clone())
            .unwrap_or_default()
    }

    pub fn remove_record(&self, id: &str) {
        for z in self.lock().iter_mut() {
            z.records.retain(|r| r.id != id);
        }
    }
}

fn rand_suffix() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1 << 20, Ordering::Relaxed)
}
