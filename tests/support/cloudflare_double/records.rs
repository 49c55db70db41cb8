//! The record store behind the Cloudflare double: validation as the API
//! does it, duplicate and CNAME conflicts, TXT quoting and splitting, and
//! the all-or-nothing batch.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiErr, Record, Zone, err, record_json};

#[derive(Debug, Default, Deserialize)]
pub(super) struct Input {
    id: Option<String>,
    #[serde(rename = "type")]
    record_type: Option<String>,
    name: Option<String>,
    content: Option<String>,
    ttl: Option<u32>,
    proxied: Option<bool>,
    priority: Option<u16>,
    comment: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Batch {
    #[serde(default)]
    pub(super) deletes: Vec<Input>,
    #[serde(default)]
    pub(super) patches: Vec<Input>,
    #[serde(default)]
    pub(super) puts: Vec<Input>,
    #[serde(default)]
    pub(super) posts: Vec<Input>,
}

fn invalid(detail: impl std::fmt::Display) -> ApiErr {
    err(400, 1004, format!("DNS Validation Error: {detail}"))
}

fn no_record() -> ApiErr {
    err(404, 81044, "Record does not exist.")
}

/// Applies the batch to a copy and keeps it only if every item succeeds:
/// Cloudflare runs a batch in one transaction (§1.5).
pub(super) fn run_batch(zone: &mut Zone, batch: Batch) -> Result<Value, ApiErr> {
    let mut records = zone.records.clone();
    let mut out = json!({ "deletes": [], "patches": [], "puts": [], "posts": [] });
    let position = |records: &[Record], item: &Input| {
        let id = item
            .id
            .as_deref()
            .ok_or_else(|| invalid("id is required"))?;
        records
            .iter()
            .position(|r| r.id == id)
            .ok_or_else(no_record)
    };
    let mut push = |key: &str, r: &Record| {
        if let Some(list) = out[key].as_array_mut() {
            list.push(record_json(r));
        }
    };
    for item in &batch.deletes {
        let at = position(&records, item)?;
        push("deletes", &records.remove(at));
    }
    for (key, items, partial) in [
        ("patches", &batch.patches, true),
        ("puts", &batch.puts, false),
    ] {
        for item in items {
            let at = position(&records, item)?;
            let base = partial.then(|| records[at].clone());
            let id = records[at].id.clone();
            let updated = build(&zone.name, base, item, id)?;
            check_conflicts(&records, &updated, Some(at))?;
            push(key, &updated);
            records[at] = updated;
        }
    }
    for item in &batch.posts {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let created = build(&zone.name, None, item, id)?;
        check_conflicts(&records, &created, None)?;
        push("posts", &created);
        records.push(created);
    }
    zone.records = records;
    Ok(out)
}

/// `@`, a relative name or an FQDN, as Cloudflare stores it (§1.4).
fn absolute(zone: &str, raw: &str) -> String {
    let name = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    if name == "@" || name == zone {
        zone.to_owned()
    } else if name.ends_with(&format!(".{zone}")) {
        name
    } else {
        format!("{name}.{zone}")
    }
}

/// A record from `item` over `base` (a patch) or from nothing (post, put).
fn build(zone: &str, base: Option<Record>, item: &Input, id: String) -> Result<Record, ApiErr> {
    let base = base.unwrap_or(Record {
        id: String::new(),
        record_type: String::new(),
        name: String::new(),
        content: String::new(),
        priority: None,
        ttl: 1,
        proxied: false,
        comment: None,
    });
    let record_type = item.record_type.clone().unwrap_or(base.record_type);
    let name = item
        .name
        .as_deref()
        .map_or(base.name, |n| absolute(zone, n));
    let content = item.content.clone().unwrap_or(base.content);
    let priority = item.priority.or(base.priority);
    if record_type.is_empty() || name.is_empty() {
        return Err(invalid("type and name are required"));
    }
    let content = match record_type.as_str() {
        "A" => (content.trim().parse::<Ipv4Addr>())
            .map_err(|_| invalid("Content for A record must be a valid IPv4 address."))?
            .to_string(),
        "AAAA" => (content.trim().parse::<Ipv6Addr>())
            .map_err(|_| invalid("Content for AAAA record must be a valid IPv6 address."))?
            .to_string(),
        "MX" | "CNAME" | "NS" => content.trim().trim_end_matches('.').to_ascii_lowercase(),
        "TXT" => store_txt(&content)?,
        _ => content,
    };
    if content.is_empty() {
        return Err(invalid("content is required"));
    }
    if record_type == "MX" && priority.is_none() {
        return Err(invalid("MX records need a priority"));
    }
    let proxied = item.proxied.unwrap_or(base.proxied);
    if proxied && !matches!(record_type.as_str(), "A" | "AAAA" | "CNAME") {
        return Err(err(400, 9004, "This record type cannot be proxied."));
    }
    let ttl = item.ttl.unwrap_or(base.ttl);
    if ttl != 1 && !(60..=86_400).contains(&ttl) {
        return Err(invalid(
            "TTL must be between 60 and 86400 seconds, or 1 for Automatic.",
        ));
    }
    Ok(Record {
        id,
        record_type,
        name,
        content,
        priority,
        ttl,
        proxied,
        comment: item.comment.clone().or(base.comment),
    })
}

/// Duplicates (81057 for a new record, 81058 for an edit) and CNAMEs
/// beside other records (81053/81054; RFC 1034 §3.6.2).
fn check_conflicts(records: &[Record], r: &Record, skip: Option<usize>) -> Result<(), ApiErr> {
    let others = || {
        (records.iter().enumerate())
            .filter(move |(i, o)| Some(*i) != skip && o.name == r.name)
            .map(|(_, o)| o)
    };
    if others().any(|o| o.record_type == r.record_type && o.content == r.content) {
        return Err(match skip {
            None => err(400, 81057, "Record already exists."),
            Some(_) => err(400, 81058, "An identical record already exists."),
        });
    }
    if r.record_type == "CNAME" && others().next().is_some() {
        let message = "An A, AAAA, or CNAME record with that host already exists.";
        return Err(err(400, 81053, message));
    }
    if others().any(|o| o.record_type == "CNAME") {
        return Err(err(
            400,
            81054,
            "A CNAME record with that host already exists.",
        ));
    }
    Ok(())
}

/// TXT content as Cloudflare stores and echoes it: quoted character-strings
/// of at most 255 bytes, quotes added to bare content and long strings
/// split (§1.8), with `"` and `\` escaped.
fn store_txt(content: &str) -> Result<String, ApiErr> {
    let strings = if content.trim_start().starts_with('"') {
        parse_strings(content.trim())?
    } else {
        vec![content.to_owned()]
    };
    if strings.iter().map(String::len).sum::<usize>() > 2048 {
        return Err(invalid("TXT content must be at most 2048 characters"));
    }
    let mut out = Vec::new();
    for s in &strings {
        let mut chunk = String::new();
        for c in s.chars() {
            if chunk.len() + c.len_utf8() > 255 {
                out.push(quote(&chunk));
                chunk.clear();
            }
            chunk.push(c);
        }
        out.push(quote(&chunk));
    }
    Ok(out.join(" "))
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `"a" "b\"c"` → ["a", "b\"c"]; refuses unbalanced quoting.
fn parse_strings(content: &str) -> Result<Vec<String>, ApiErr> {
    let mut strings = Vec::new();
    let mut chars = content.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => continue,
            '"' => {}
            _ => return Err(invalid("TXT content has text outside its quotes")),
        }
        let mut s = String::new();
        loop {
            match chars.next() {
                Some('"') => break,
                Some('\\') => s.extend(chars.next()),
                Some(c) => s.push(c),
                None => return Err(invalid("TXT content has an unterminated quote")),
            }
        }
        strings.push(s);
    }
    Ok(strings)
}
