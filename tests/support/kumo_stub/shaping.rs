//! `kumo.shaping.load` as the stand-in `policy-extras.shaping` needs it
//! (`crates/kumo-api-types/src/shaping.rs`): every file is read (a missing
//! one is an error), TOML unless the name ends in `.json`; entries of later
//! files merge over earlier ones key by key unless they set
//! `replace_base`; each entry's keys, and those of its `sources`, must be
//! egress path options, so a misspelt option fails the load.

use mlua::prelude::*;
use serde_json::{Map, Value};

use super::config::check;

/// Keys of a shaping entry that are not egress path options
/// (`PartialEntry` in `crates/kumo-api-types/src/shaping.rs`).
const ENTRY_KEYS: &[&str] = &[
    "mx_rollup",
    "replace_base",
    "automation",
    "sources",
    "provider_connection_limit",
    "provider_max_message_rate",
];

/// Loads `files`, each `(name as the policy wrote it, path to read)`, and
/// returns the merged entries by domain (or site) name.
pub fn load(lua: &Lua, files: Vec<(String, String)>) -> LuaResult<LuaValue> {
    let mut merged: Map<String, Value> = Map::new();
    for (name, path) in files {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| LuaError::runtime(format!("shaping: {name}: {e}")))?;
        let data: Value = if name.ends_with(".json") {
            serde_json::from_str(&text).map_err(|e| LuaError::runtime(format!("{name}: {e}")))?
        } else {
            let table: toml::Table =
                toml::from_str(&text).map_err(|e| LuaError::runtime(format!("{name}: {e}")))?;
            serde_json::to_value(table).into_lua_err()?
        };
        let Value::Object(entries) = data else {
            return Err(LuaError::runtime(format!("{name}: not a table of entries")));
        };
        for (domain, entry) in entries {
            // Provider blocks match by MX; the stand-in routes by domain only.
            if domain == "provider" {
                continue;
            }
            let entry = validate(lua, &name, &domain, entry)?;
            let replace = entry.get("replace_base") == Some(&Value::Bool(true));
            match merged.get_mut(&domain) {
                Some(Value::Object(base)) if !replace => base.extend(entry),
                _ => {
                    merged.insert(domain, Value::Object(entry));
                }
            }
        }
    }
    lua.to_value(&Value::Object(merged))
}

fn validate(lua: &Lua, file: &str, domain: &str, entry: Value) -> LuaResult<Map<String, Value>> {
    let Value::Object(entry) = entry else {
        return Err(LuaError::runtime(format!(
            "{file}: [{domain}] is not a table"
        )));
    };
    let context = |e: LuaError| LuaError::runtime(format!("{file}: [{domain}]: {e}"));
    let options = without(&entry, ENTRY_KEYS);
    check(lua, "make_egress_path", lua.to_value(&options)?).map_err(context)?;
    if let Some(sources) = entry.get("sources") {
        let Value::Object(sources) = sources else {
            return Err(context(LuaError::runtime("sources is not a table")));
        };
        for source in sources.values() {
            check(lua, "make_egress_path", lua.to_value(source)?).map_err(context)?;
        }
    }
    Ok(entry)
}

fn without(entry: &Map<String, Value>, keys: &[&str]) -> Value {
    Value::Object(
        entry
            .iter()
            .filter(|(k, _)| !keys.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}
