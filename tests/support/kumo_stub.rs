//! Runs `kumo-policy/init.lua` in Lua 5.4 (mlua, as KumoMTA embeds it)
//! against a stand-in `kumo` module, so tests drive the policy's real
//! handlers. The event registry, memoize and message objects live in
//! `kumo_stub.lua`; this file adds what must be native: an HTTP client whose
//! requests really go out, JSON, digests, and the harness that fires events
//! and reads outcomes. Sessions, AUTH and DATA as kumod runs them are in
//! `kumo_stub/session.{lua,rs}`, DKIM signing in `kumo_stub/dkim.rs`,
//! maildir delivery in `kumo_stub/maildir.rs`.
//!
//! HTTP calls block on the test's tokio runtime, so every call into Lua
//! goes through `block_in_place`: tests using the stub run on the
//! multi-threaded runtime.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use mlua::prelude::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;

mod config;
mod dkim;
mod egress;
mod http;
mod maildir;
mod session;
mod shaping;

use dkim::Signer;
pub use http::HttpCall;

const STUB: &str = include_str!("kumo_stub.lua");
const EXTRAS: &str = include_str!("kumo_stub/extras.lua");

/// What a handler did.
#[derive(Debug)]
pub enum Outcome {
    Returned(Vec<LuaValue>),
    /// `kumo.reject(code, message)`.
    Rejected(u16, String),
    /// Any other Lua error: KumoMTA answers `421 4.3.0 technical
    /// difficulties` in SMTP handlers and retries in delivery handlers.
    Failed(String),
}

impl Outcome {
    /// The first returned value; panics on a rejection or error.
    pub fn value(&self) -> LuaValue {
        match self {
            Self::Returned(v) => v.first().cloned().unwrap_or(LuaNil),
            other => panic!("expected a return, got {other:?}"),
        }
    }

    pub fn rejected(&self) -> (u16, &str) {
        match self {
            Self::Rejected(code, message) => (*code, message),
            other => panic!("expected kumo.reject, got {other:?}"),
        }
    }
}

pub struct KumoStub {
    lua: Lua,
    stub: LuaTable,
    calls: Arc<Mutex<Vec<HttpCall>>>,
    signers: Arc<Mutex<Vec<Value>>>,
    /// The config's `mail_root`: deliveries must land inside it.
    mail_root: Option<PathBuf>,
    _config: tempfile::NamedTempFile,
}

impl KumoStub {
    /// Loads `kumo-policy/init.lua` with `config` as its inboxgrove.json.
    pub fn load(config: &Value) -> Self {
        Self::try_load(config).unwrap_or_else(|e| panic!("init.lua did not load: {e}"))
    }

    /// Same, returning the error the policy raised while loading.
    pub fn try_load(config: &Value) -> Result<Self, String> {
        Self::try_load_source(config, &policy_source())
    }

    /// Loads `source` in place of `kumo-policy/init.lua` (a policy edited
    /// by a test, or a few lines exercising the stand-in itself).
    pub fn try_load_source(config: &Value, source: &str) -> Result<Self, String> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        serde_json::to_writer(&mut file, config).unwrap();
        let lua = Lua::new();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let signers = Arc::new(Mutex::new(Vec::new()));
        let native = natives(&lua, calls.clone(), signers.clone()).unwrap();
        let stub: LuaTable = lua
            .load(STUB)
            .set_name("@tests/support/kumo_stub.lua")
            .call(native.clone())
            .unwrap();
        lua.load(session::SESSION)
            .set_name("@tests/support/kumo_stub/session.lua")
            .call::<()>((stub.clone(), native))
            .unwrap();
        let env: LuaTable = stub.get("env").unwrap();
        env.set(
            "INBOXGROVE_POLICY_CONFIG",
            file.path().to_str().unwrap().to_owned(),
        )
        .unwrap();
        let path = policy_path();
        tokio::task::block_in_place(|| {
            lua.load(source)
                .set_name(format!("@{}", path.display()))
                .exec()
        })
        .map_err(|e| e.to_string())?;
        Ok(Self {
            lua,
            stub,
            calls,
            signers,
            mail_root: config["mail_root"].as_str().map(PathBuf::from),
            _config: file,
        })
    }

    /// Fires `event` with `args`, as KumoMTA would.
    pub fn fire(&self, event: &str, args: impl IntoLuaMulti) -> Outcome {
        let mut args = args.into_lua_multi(&self.lua).unwrap();
        args.push_front(event.into_lua(&self.lua).unwrap());
        self.run("call", args)
    }

    /// Calls `object:method(args…)` on an object the policy returned.
    pub fn invoke(&self, object: &LuaTable, method: &str, args: impl IntoLuaMulti) -> Outcome {
        let mut args = args.into_lua_multi(&self.lua).unwrap();
        args.push_front(method.into_lua(&self.lua).unwrap());
        args.push_front(LuaValue::Table(object.clone()));
        self.run("invoke", args)
    }

    fn run(&self, entry: &str, args: LuaMultiValue) -> Outcome {
        let f: LuaFunction = self.stub.get(entry).unwrap();
        let out: Vec<LuaValue> = tokio::task::block_in_place(|| f.call::<LuaMultiValue>(args))
            .unwrap()
            .into_iter()
            .collect();
        let tag = out[0].to_string().unwrap();
        match tag.as_str() {
            "ok" => Outcome::Returned(out[1..].to_vec()),
            "rejected" => Outcome::Rejected(
                u16::try_from(out[1].as_integer().unwrap()).unwrap(),
                out[2].to_string().unwrap(),
            ),
            _ => Outcome::Failed(out[1].to_string().unwrap()),
        }
    }

    /// A message made at DATA in session `conn` (see `session.lua`).
    /// `spec`: `{sender, recipients: [one], headers: [[n, v]…], body}`.
    pub fn message(&self, spec: Value, conn: &LuaTable) -> LuaTable {
        self.stub_fn("message", (self.to_lua(&spec), conn.clone()))
    }

    /// A log-hook message whose body is `record`.
    pub fn log_message(&self, record: &Value) -> LuaTable {
        self.stub_fn("log_message", record.to_string())
    }

    /// An EnvelopeAddress (`.email`, `.user`, `.domain`).
    pub fn address(&self, email: &str) -> LuaTable {
        self.stub_fn("address", email)
    }

    /// A Lua sequence of `items`, e.g. a batch for `send_batch`.
    pub fn list(&self, items: &[LuaTable]) -> LuaTable {
        self.lua
            .create_sequence_from(items.iter().cloned())
            .unwrap()
    }

    fn stub_fn(&self, name: &str, args: impl IntoLuaMulti) -> LuaTable {
        let f: LuaFunction = self.stub.get(name).unwrap();
        f.call(args).unwrap_or_else(|e| panic!("stub.{name}: {e}"))
    }

    pub fn to_lua(&self, v: &Value) -> LuaValue {
        self.lua.to_value_with(v, ser_options()).unwrap()
    }

    /// JSON of a Lua value (tables, strings, numbers, booleans, nil).
    pub fn json(&self, v: &LuaValue) -> Value {
        self.lua.from_value(v.clone()).unwrap()
    }

    /// JSON of a field of the stub's state: `listeners`, `spools`,
    /// `log_hooks`, `logs`, `caches`…
    pub fn state(&self, field: &str) -> Value {
        self.json(&self.stub.get::<LuaValue>(field).unwrap())
    }

    pub fn meta(&self, object: &LuaTable, key: &str) -> Value {
        let meta: LuaTable = object.get("_meta").unwrap();
        self.json(&meta.get::<LuaValue>(key).unwrap())
    }

    pub fn header(&self, msg: &LuaTable, name: &str) -> Option<String> {
        msg.call_method("get_first_named_header_value", name)
            .unwrap()
    }

    pub fn header_names(&self, msg: &LuaTable) -> Vec<String> {
        msg.call_method("header_names", ()).unwrap()
    }

    /// Every `kumo.dkim.rsa_sha256_signer` call's parameters.
    pub fn signers(&self) -> Vec<Value> {
        self.signers.lock().unwrap().clone()
    }

    pub fn http_calls(&self) -> Vec<HttpCall> {
        self.calls.lock().unwrap().clone()
    }

    /// Moves the memoize caches' clock `seconds` on, expiring what their
    /// TTL says has expired.
    pub fn advance(&self, seconds: u64) {
        let now: u64 = self.stub.get("clock").unwrap();
        self.stub.set("clock", now + seconds).unwrap();
    }

    /// Makes the policy read `real` where it names the KumoMTA path
    /// `kumo_path` (the shaping files, which do not exist here).
    pub fn map_file(&self, kumo_path: &str, real: &Path) {
        let files: LuaTable = self.stub.get("files").unwrap();
        files
            .set(kumo_path, real.to_str().unwrap().to_owned())
            .unwrap();
    }

    /// `kumo.bump_config_epoch()`.
    pub fn bump_epoch(&self) {
        let kumo: LuaTable = self.stub.get("kumo").unwrap();
        let bump: LuaFunction = kumo.get("bump_config_epoch").unwrap();
        bump.call::<()>(()).unwrap();
    }
}

fn policy_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kumo-policy/init.lua")
}

/// The text of `kumo-policy/init.lua`.
pub fn policy_source() -> String {
    std::fs::read_to_string(policy_path()).unwrap()
}

/// JSON null is Lua nil, as KumoMTA's serde module does (fact sheet §3).
fn ser_options() -> LuaSerializeOptions {
    LuaSerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false)
}

fn json_to_lua(lua: &Lua, text: &str) -> LuaResult<LuaValue> {
    let v: Value = serde_json::from_str(text).into_lua_err()?;
    lua.to_value_with(&v, ser_options())
}

fn natives(
    lua: &Lua,
    calls: Arc<Mutex<Vec<HttpCall>>>,
    signers: Arc<Mutex<Vec<Value>>>,
) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    let handle = Handle::current();
    t.set(
        "build_client",
        lua.create_function(move |lua, params: Option<LuaTable>| {
            let timeout = match params.map(|p| p.get::<LuaValue>("timeout")).transpose()? {
                None | Some(LuaNil) => None,
                Some(d) => Some(duration(lua, d)?),
            };
            Ok(http::Client::new(timeout, handle.clone(), calls.clone()))
        })?,
    )?;
    t.set(
        "json_encode",
        lua.create_function(|lua, v: LuaValue| {
            let json: Value =
                lua.from_value_with(v, LuaDeserializeOptions::new().sort_keys(true))?;
            Ok(json.to_string())
        })?,
    )?;
    t.set(
        "json_parse",
        lua.create_function(|lua, text: String| json_to_lua(lua, &text))?,
    )?;
    t.set(
        "json_load",
        lua.create_function(|lua, path: String| {
            json_to_lua(lua, &std::fs::read_to_string(path).into_lua_err()?)
        })?,
    )?;
    t.set(
        "secrets_load",
        lua.create_function(|lua, source: LuaValue| lua.create_string(key_source(source)?))?,
    )?;
    t.set(
        "sha256",
        lua.create_function(|lua, parts: LuaVariadic<LuaValue>| {
            let mut h = Sha256::new();
            for p in parts.iter() {
                h.update(digest_input(lua, p)?);
            }
            digest(lua, &h.finalize())
        })?,
    )?;
    t.set(
        "hmac_sha256",
        lua.create_function(|lua, (key, msg): (LuaValue, LuaValue)| {
            let mac = hmac_sha256(&key_source(key)?, &digest_input(lua, &msg)?);
            digest(lua, &mac)
        })?,
    )?;
    t.set(
        "base64url_nopad_encode",
        lua.create_function(|_, s: LuaString| Ok(URL_SAFE_NO_PAD.encode(s.as_bytes())))?,
    )?;
    t.set(
        "rsa_sha256_signer",
        lua.create_function(move |lua, params: LuaTable| {
            let signer = Signer::from_params(lua, &params)?;
            signers.lock().unwrap().push(signer.recorded.clone());
            Ok(signer)
        })?,
    )?;
    t.set(
        "dkim_sign",
        lua.create_function(|_, (signer, data, now): (LuaAnyUserData, LuaString, i64)| {
            signer.borrow::<Signer>()?.sign(&data.as_bytes(), now)
        })?,
    )?;
    session::natives(lua, &t)?;
    t.set(
        "is_signer",
        lua.create_function(|_, v: LuaValue| {
            Ok(matches!(v, LuaValue::UserData(ud) if ud.is::<Signer>()))
        })?,
    )?;
    t.set(
        "freeze",
        lua.create_function(|_, table: LuaTable| Ok(Frozen(table)))?,
    )?;
    t.set(
        "check",
        lua.create_function(|lua, (kind, params): (String, LuaValue)| {
            config::check(lua, &kind, thaw(lua, params)?)
        })?,
    )?;
    t.set(
        "seconds",
        lua.create_function(|lua, d: LuaValue| Ok(duration(lua, d)?.as_secs_f64()))?,
    )?;
    t.set(
        "memoizable",
        lua.create_function(|lua, v: LuaValue| memoizable(lua, &v))?,
    )?;
    t.set(
        "shaping_load",
        lua.create_function(|lua, files: Vec<Vec<String>>| {
            let files = files.into_iter().map(|f| (f[0].clone(), f[1].clone()));
            shaping::load(lua, files.collect())
        })?,
    )?;
    t.set(
        "extras",
        lua.create_function(|lua, args: LuaMultiValue| {
            lua.load(EXTRAS)
                .set_name("@tests/support/kumo_stub/extras.lua")
                .call::<()>(args)
        })?,
    )?;
    Ok(t)
}

/// `CacheValue::from_lua` (crates/mod-memoize/src/lib.rs): userdata only
/// with a `__memoize` metamethod (failing, as kumod does, with "error
/// converting Lua nil to function"), tables keyed by strings or integers,
/// anything else only if it converts to JSON (so never a function).
fn memoizable(lua: &Lua, value: &LuaValue) -> LuaResult<()> {
    match value {
        LuaValue::UserData(ud) => ud.metatable()?.get::<LuaFunction>("__memoize").map(drop),
        LuaValue::Table(t) => t.pairs::<LuaValue, LuaValue>().try_for_each(|pair| {
            let (k, v) = pair?;
            if !matches!(k, LuaValue::Integer(_) | LuaValue::String(_)) {
                return Err(LuaError::runtime(format!(
                    "table key {k:?} cannot be used as a key in a memoizable table"
                )));
            }
            memoizable(lua, &v)
        }),
        other => lua.from_value::<Value>(other.clone()).map(drop),
    }
}

/// A copy of `value` with memoized tables turned back into plain ones, as
/// kumod's `from_lua_value` reads a userdata through its `__pairs`.
fn thaw(lua: &Lua, value: LuaValue) -> LuaResult<LuaValue> {
    let table = match &value {
        LuaValue::UserData(ud) if ud.is::<Frozen>() => ud.borrow::<Frozen>()?.0.clone(),
        LuaValue::Table(t) => t.clone(),
        _ => return Ok(value),
    };
    let copy = lua.create_table()?;
    for pair in table.pairs::<LuaValue, LuaValue>() {
        let (k, v) = pair?;
        copy.raw_set(k, thaw(lua, v)?)?;
    }
    Ok(LuaValue::Table(copy))
}

/// A duration as KumoMTA reads one (`crates/duration-serde`).
fn duration(lua: &Lua, value: LuaValue) -> LuaResult<Duration> {
    lua.from_value::<config::Dur>(value).map(|d| d.0)
}

/// A KeySource: a path, or `{ key_data = … }` (fact sheet §4).
fn key_source(source: LuaValue) -> LuaResult<Vec<u8>> {
    match source {
        LuaValue::String(path) => std::fs::read(path.to_str()?.as_ref()).into_lua_err(),
        LuaValue::Table(t) => match t.get::<Option<LuaString>>("key_data")? {
            Some(data) => Ok(data.as_bytes().to_vec()),
            None => Err(LuaError::runtime("stub: only path and key_data KeySources")),
        },
        other => Err(LuaError::runtime(format!(
            "not a KeySource: {}",
            other.type_name()
        ))),
    }
}

/// kumo.digest feeds strings as bytes and anything else as its JSON.
fn digest_input(lua: &Lua, v: &LuaValue) -> LuaResult<Vec<u8>> {
    Ok(match v {
        LuaValue::String(s) => s.as_bytes().to_vec(),
        other => {
            let json: Value = lua.from_value(other.clone())?;
            json.to_string().into_bytes()
        }
    })
}

/// RFC 2104 HMAC with SHA-256.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The Digest object: encodings as fields, hex when printed.
fn digest(lua: &Lua, bytes: &[u8]) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    let hex = hex::encode(bytes);
    t.set("bytes", lua.create_string(bytes)?)?;
    t.set("hex", hex.clone())?;
    t.set("base64", STANDARD.encode(bytes))?;
    t.set("base64url", URL_SAFE.encode(bytes))?;
    t.set("base64url_nopad", URL_SAFE_NO_PAD.encode(bytes))?;
    let mt = lua.create_table()?;
    mt.set(
        "__tostring",
        lua.create_function(move |_, _: LuaValue| Ok(hex.clone()))?,
    )?;
    t.set_metatable(Some(mt))?;
    Ok(t)
}

/// A memoized table: readable (index, `#`, `pairs`), not writable, and of
/// type userdata, as KumoMTA's MemoizedTable (fact sheet §3).
struct Frozen(LuaTable);

impl LuaUserData for Frozen {
    fn add_methods<M: LuaUserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(LuaMetaMethod::Index, |_, this, key: LuaValue| {
            Ok(match this.0.get::<LuaValue>(key)? {
                LuaValue::Table(t) => LuaEither::Left(Frozen(t)),
                other => LuaEither::Right(other),
            })
        });
        methods.add_meta_method(LuaMetaMethod::Len, |_, this, ()| Ok(this.0.raw_len()));
        methods.add_meta_method(
            LuaMetaMethod::NewIndex,
            |_, _, (_k, _v): (LuaValue, LuaValue)| -> LuaResult<()> {
                Err(LuaError::runtime("stub: a memoized table is read-only"))
            },
        );
        methods.add_meta_method(LuaMetaMethod::Pairs, |lua, this, ()| {
            let next: LuaFunction = lua.globals().get("next")?;
            Ok((next, this.0.clone(), LuaNil))
        });
    }
}
