//! `kumo.dkim.rsa_sha256_signer` and `msg:dkim_sign` as KumoMTA signs:
//! crates/message/src/dkim.rs builds a kumo_dkim signer (crates/dkim) with
//! relaxed/relaxed canonicalization unless told otherwise, the `headers`
//! list and `over_sign`, and `msg:dkim_sign` prepends the DKIM-Signature
//! it computes over the message as it stands.
//!
//! mail-auth's signer cannot over-sign (it lists each present instance
//! once), so the signature is built here with `rsa` + `sha2`, following
//! RFC 6376; the tests verify it with mail-auth.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mlua::prelude::*;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::key_source;

#[derive(Clone, Copy, PartialEq)]
enum Canon {
    Relaxed,
    Simple,
}

impl Canon {
    fn from_param(value: Option<String>) -> LuaResult<Self> {
        // crates/message/src/dkim.rs: `Canon` defaults to Relaxed.
        match value.as_deref() {
            None | Some("Relaxed") => Ok(Self::Relaxed),
            Some("Simple") => Ok(Self::Simple),
            Some(other) => Err(LuaError::runtime(format!(
                "unknown variant `{other}`, expected `Relaxed` or `Simple`"
            ))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Relaxed => "relaxed",
            Self::Simple => "simple",
        }
    }
}

/// A built signer: the key is parsed when it is made, as KumoMTA does
/// (a bad key fails the `rsa_sha256_signer` call, not the signing).
pub struct Signer {
    pub domain: String,
    pub selector: String,
    headers: Vec<String>,
    over_sign: bool,
    header_canon: Canon,
    body_canon: Canon,
    key: RsaPrivateKey,
    /// The parameters as given, for tests that check what the policy asked.
    pub recorded: Value,
}

impl Signer {
    pub fn from_params(lua: &Lua, params: &LuaTable) -> LuaResult<Self> {
        super::config::check(lua, "rsa_sha256_signer", LuaValue::Table(params.clone()))?;
        let domain: String = params.get("domain")?;
        let selector: String = params.get("selector")?;
        let headers: Vec<String> = params.get("headers")?;
        // kumo_dkim SignerBuilder::with_signed_headers: "missing From in
        // signed headers" (RFC 6376 §5.4: From MUST be signed).
        if !headers.iter().any(|h| h.eq_ignore_ascii_case("from")) {
            return Err(LuaError::runtime("missing From in signed headers"));
        }
        // configure_kumo_dkim refuses what it cannot do; `expiration` it can,
        // but nothing here models the x= tag, so it is refused too.
        for field in ["atps", "atpsh", "agent_user_identifier", "expiration"] {
            if !params.get::<LuaValue>(field)?.is_nil() {
                return Err(LuaError::runtime(format!(
                    "{field} is not currently supported by the stand-in"
                )));
            }
        }
        for flag in ["body_length", "reporting"] {
            if params.get::<Option<bool>>(flag)?.unwrap_or(false) {
                return Err(LuaError::runtime(format!(
                    "{flag} is not currently supported for RSA keys"
                )));
            }
        }
        let data = key_source(params.get("key")?)?;
        let key = rsa_key(&data)?;
        let over_sign: Option<bool> = params.get("over_sign")?;
        Ok(Self {
            recorded: serde_json::json!({
                "domain": domain, "selector": selector, "headers": headers,
                "over_sign": over_sign,
                "key_data": String::from_utf8_lossy(&data),
            }),
            domain,
            selector,
            headers,
            over_sign: over_sign.unwrap_or(false),
            header_canon: Canon::from_param(params.get("header_canonicalization")?)?,
            body_canon: Canon::from_param(params.get("body_canonicalization")?)?,
            key,
        })
    }

    /// The DKIM-Signature value (after `DKIM-Signature: `) for `message`,
    /// dated `time`.
    pub fn sign(&self, message: &[u8], time: i64) -> LuaResult<String> {
        // CFSigner::sign parses the message as text first.
        if std::str::from_utf8(message).is_err() {
            return Err(LuaError::runtime(
                "DKIM signer: message is not ASCII or UTF-8",
            ));
        }
        let (headers, body) = split(message);
        let body_hash = STANDARD.encode(Sha256::digest(canonical_body(self.body_canon, body)));

        // With over_sign each listed name appears once more than the
        // message has it, so a header added later (a second From, a
        // List-Unsubscribe where there was none) breaks the signature
        // (RFC 6376 §8.15); without it each name is listed once.
        let mut h = Vec::new();
        for name in &self.headers {
            let present = headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
                .count();
            let times = if self.over_sign { present + 1 } else { 1 };
            h.extend(std::iter::repeat_n(name.to_ascii_lowercase(), times));
        }

        let unsigned = format!(
            "v=1; a=rsa-sha256; d={}; s={};\r\n\tc={}/{}; bh={body_hash};\r\n\th={}; t={time};\r\n\tb=",
            self.domain,
            self.selector,
            self.header_canon.name(),
            self.body_canon.name(),
            h.join(":"),
        );

        // RFC 6376 §5.4.2: each listed name takes the next instance from
        // the bottom; a name with none left contributes nothing.
        let mut input = Vec::new();
        let mut used = vec![false; headers.len()];
        for name in &h {
            let found = (0..headers.len())
                .rev()
                .find(|&i| !used[i] && headers[i].0.eq_ignore_ascii_case(name.as_bytes()));
            if let Some(i) = found {
                used[i] = true;
                canonical_header(self.header_canon, headers[i].0, headers[i].1, &mut input);
            }
        }
        // §3.7: the signature header itself, b= empty, without its CRLF.
        let own = format!(" {unsigned}");
        canonical_header(
            self.header_canon,
            b"DKIM-Signature",
            own.as_bytes(),
            &mut input,
        );
        input.truncate(input.len() - 2);

        let digest = Sha256::digest(&input);
        let signature = self
            .key
            .sign(Pkcs1v15Sign::new::<Sha256>(), &digest)
            .map_err(|e| LuaError::runtime(format!("dkim_sign: {e}")))?;
        Ok(format!("{unsigned}{}", STANDARD.encode(signature)))
    }
}

impl LuaUserData for Signer {
    fn add_fields<F: LuaUserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("domain", |_, this| Ok(this.domain.clone()));
        fields.add_field_method_get("selector", |_, this| Ok(this.selector.clone()));
    }
}

/// kumo_dkim DkimPrivateKey::rsa_key: PKCS#1 or PKCS#8, DER or PEM.
fn rsa_key(data: &[u8]) -> LuaResult<RsaPrivateKey> {
    let pem = std::str::from_utf8(data).ok();
    RsaPrivateKey::from_pkcs1_der(data)
        .ok()
        .or_else(|| RsaPrivateKey::from_pkcs8_der(data).ok())
        .or_else(|| pem.and_then(|p| RsaPrivateKey::from_pkcs1_pem(p).ok()))
        .or_else(|| pem.and_then(|p| RsaPrivateKey::from_pkcs8_pem(p).ok()))
        .ok_or_else(|| LuaError::runtime("rsa_sha256_signer: the key is not an RSA private key"))
}

type Field<'a> = (&'a [u8], &'a [u8]);

/// The header fields (name, raw value after the colon, folding kept) and
/// the body of a CRLF message (RFC 5322 §2.2, §3.5).
fn split(message: &[u8]) -> (Vec<Field<'_>>, &[u8]) {
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut rest = message;
    loop {
        if rest.is_empty() {
            return (fields, rest);
        }
        if rest.starts_with(b"\r\n") {
            return (fields, &rest[2..]);
        }
        // A field runs to the CRLF not followed by folding whitespace.
        let mut end = 0;
        let line_end = loop {
            match rest[end..].windows(2).position(|w| w == b"\r\n") {
                Some(i) => {
                    let at = end + i;
                    if matches!(rest.get(at + 2), Some(b' ' | b'\t')) {
                        end = at + 2;
                        continue;
                    }
                    break at;
                }
                None => break rest.len(),
            }
        };
        let field = &rest[..line_end];
        let colon = field.iter().position(|&b| b == b':').unwrap_or(field.len());
        let value = field.get(colon + 1..).unwrap_or(b"");
        fields.push((&field[..colon], value));
        rest = rest.get(line_end + 2..).unwrap_or(b"");
    }
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// RFC 6376 §3.4.1 (simple: as is) and §3.4.2 (relaxed: lower-case name,
/// unfolded value, whitespace runs as one space, none at either end).
fn canonical_header(canon: Canon, name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    match canon {
        Canon::Simple => {
            out.extend_from_slice(name);
            out.push(b':');
            out.extend_from_slice(value);
        }
        Canon::Relaxed => {
            let name = name.trim_ascii_end();
            out.extend(name.iter().map(u8::to_ascii_lowercase));
            out.push(b':');
            let unfolded: Vec<u8> = value
                .iter()
                .copied()
                .filter(|&b| b != b'\r' && b != b'\n')
                .collect();
            let mut space = false;
            let mut started = false;
            for b in unfolded {
                if is_wsp(b) {
                    space = started;
                    continue;
                }
                if space {
                    out.push(b' ');
                    space = false;
                }
                out.push(b);
                started = true;
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// RFC 6376 §3.4.3 (simple) and §3.4.4 (relaxed): trailing empty lines
/// dropped; relaxed also drops whitespace at line ends and folds runs.
fn canonical_body(canon: Canon, body: &[u8]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = body
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
        .collect();
    if canon == Canon::Relaxed {
        for line in &mut lines {
            let mut folded = Vec::with_capacity(line.len());
            for &b in line.iter() {
                if is_wsp(b) {
                    if folded.last().is_none_or(|&l| l != b' ') {
                        folded.push(b' ');
                    }
                } else {
                    folded.push(b);
                }
            }
            while folded.last() == Some(&b' ') {
                folded.pop();
            }
            *line = folded;
        }
    }
    while lines.last().is_some_and(Vec::is_empty) {
        lines.pop();
    }
    if lines.is_empty() {
        // An empty body is "" relaxed but one CRLF simple.
        return if canon == Canon::Simple {
            b"\r\n".to_vec()
        } else {
            Vec::new()
        };
    }
    let mut out = Vec::with_capacity(body.len() + 2);
    for line in lines {
        out.extend_from_slice(&line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relaxed_canonicalization_follows_rfc_6376_examples() {
        // RFC 6376 §3.4.5.
        let mut out = Vec::new();
        canonical_header(Canon::Relaxed, b"A", b" X", &mut out);
        canonical_header(Canon::Relaxed, b"B ", b" Y\t\r\n\tZ  ", &mut out);
        assert_eq!(out, b"a:X\r\nb:Y Z\r\n");
        assert_eq!(
            canonical_body(Canon::Relaxed, b" C \r\nD \t E\r\n\r\n\r\n"),
            b" C\r\nD E\r\n"
        );
    }
}
