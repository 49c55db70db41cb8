//! Delivery through a queue whose protocol is a maildir, as kumod does it
//! (crates/kumod/src/queue/queue.rs, `DeliveryProto::Maildir`): the
//! `maildir_path` template is rendered per recipient with MiniJinja's
//! default environment (crates/kumo-template/src/lib.rs, so an unknown
//! `meta.x` renders as an empty string), then crates/maildir/src/lib.rs
//! creates `cur/ new/ tmp/` and writes the message into `tmp/` before
//! renaming it into `new/`.

use std::fs::{self, OpenOptions, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use mlua::prelude::*;
use serde_json::{Value, json};

use super::KumoStub;

/// Unique file names within the process, as the maildir crate's COUNTER.
static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl KumoStub {
    /// Delivers `msg` through its queue (meta `queue`, else its recipient
    /// domain, resolved with `get_queue_config`) into the maildir the
    /// template names, one file per recipient; returns the files written.
    /// Fails unless the queue delivers to a maildir and each rendered path
    /// is absolute, free of `..` and inside the configured `mail_root`.
    pub fn deliver(&self, msg: &LuaTable) -> Result<Vec<PathBuf>, String> {
        let root = self
            .mail_root
            .clone()
            .ok_or("stub: the policy config has no mail_root")?;
        let plan_fn: LuaFunction = self.stub.get("maildir_plan").unwrap();
        let plan: LuaTable =
            tokio::task::block_in_place(|| plan_fn.call(msg.clone())).map_err(|e| e.to_string())?;
        let now: i64 = self
            .stub
            .get::<LuaFunction>("now")
            .and_then(|f| f.call(()))
            .map_err(|e| e.to_string())?;
        let text = |key: &str| plan.get::<Option<String>>(key).map_err(|e| e.to_string());
        let template = text("template")?.ok_or("maildir_path must be a string")?;
        let dir_mode: Option<u32> = plan.get("dir_mode").map_err(|e| e.to_string())?;
        let file_mode: Option<u32> = plan.get("file_mode").map_err(|e| e.to_string())?;
        let data: LuaString = plan.get("data").map_err(|e| e.to_string())?;
        let sender: LuaTable = plan.get("sender").map_err(|e| e.to_string())?;
        let recipients: Vec<LuaTable> = plan.get("recipients").map_err(|e| e.to_string())?;
        let part = |t: &LuaTable, key: &str| -> String {
            t.get::<Option<String>>(key)
                .ok()
                .flatten()
                .unwrap_or_default()
        };

        let mut written = Vec::new();
        for recipient in &recipients {
            // The context of queue.rs; absent components are null, which
            // MiniJinja prints (unlike an undefined name, printed empty).
            let context = json!({
                "meta": self.json(&plan.get("meta").map_err(|e| e.to_string())?),
                "queue": text("queue")?,
                "campaign": text("campaign")?,
                "tenant": text("tenant")?,
                "domain": text("domain")?,
                "routing_domain": text("routing_domain")?,
                "local_part": part(recipient, "user"),
                "domain_part": part(recipient, "domain"),
                "email": part(recipient, "email"),
                "sender_local_part": part(&sender, "user"),
                "sender_domain_part": part(&sender, "domain"),
                "sender_email": part(&sender, "email"),
            });
            let path = render(&template, &context)?;
            let maildir = contained(&path, &root)?;
            written.push(store(
                &maildir,
                dir_mode,
                file_mode,
                data.as_bytes().as_ref(),
                now,
            )?);
        }
        Ok(written)
    }
}

fn render(template: &str, context: &Value) -> Result<String, String> {
    minijinja::Environment::new()
        .render_named_str("maildir_path", template, context)
        .map_err(|e| format!("maildir_path {template:?}: {e}"))
}

/// The harness's guard, not kumod's (kumod writes wherever the template
/// points, relative to its working directory if the path is relative).
fn contained(rendered: &str, root: &Path) -> Result<PathBuf, String> {
    let path = PathBuf::from(rendered);
    if !path.is_absolute() {
        return Err(format!("maildir path {rendered:?} is not absolute"));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(format!("maildir path {rendered:?} climbs with .."));
    }
    if !path.starts_with(root) {
        return Err(format!(
            "maildir path {rendered:?} is outside the mail root {}",
            root.display()
        ));
    }
    Ok(path)
}

/// `Maildir::create_dirs`: each missing directory (parents too) is made
/// and, when `dir_mode` is set, given exactly that mode.
fn create_dir_all(path: &Path, mode: Option<u32>) -> Result<(), String> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(format!(
                "{} already exists as non-directory",
                path.display()
            ));
        }
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(e.to_string()),
        Err(_) => {}
    }
    if let Some(parent) = path.parent() {
        create_dir_all(parent, mode)?;
    }
    match fs::create_dir(path) {
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(()),
        other => other.map_err(|e| format!("failed to create maildir {}: {e}", path.display()))?,
    }
    if let Some(mode) = mode {
        fs::set_permissions(path, Permissions::from_mode(mode)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `Maildir::store_new`: a unique name in `tmp/`, `file_mode` applied,
/// written and synced, then renamed into `new/` with device, inode and
/// size in the name.
fn store(
    maildir: &Path,
    dir_mode: Option<u32>,
    file_mode: Option<u32>,
    data: &[u8],
    now: i64,
) -> Result<PathBuf, String> {
    for sub in ["cur", "new", "tmp"] {
        create_dir_all(&maildir.join(sub), dir_mode)?;
    }
    let pid = std::process::id();
    let host = super::session::hostname();
    let fail = |e: std::io::Error| format!("failed to store message to maildir: {e}");
    let (tmp, mut file, counter) = loop {
        let counter = COUNTER.fetch_add(1, Ordering::SeqCst);
        let tmp = maildir
            .join("tmp")
            .join(format!("{now}.#{counter:x}M0P{pid}.{host}"));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => break (tmp, file, counter),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(fail(e)),
        }
    };
    if let Some(mode) = file_mode {
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(fail)?;
    }
    file.write_all(data).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    let meta = file.metadata().map_err(fail)?;
    let name = format!(
        "{now}.#{counter:x}M0P{pid}V{}I{}.{host},S={}",
        meta.dev(),
        meta.ino(),
        meta.size()
    );
    let new = maildir.join("new").join(name);
    fs::rename(&tmp, &new).map_err(fail)?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_as_kumod_renders_them() {
        let ctx = json!({ "meta": { "x_maildir": "/m/a" } });
        assert_eq!(render("{{ meta.x_maildir }}", &ctx).unwrap(), "/m/a");
        // Lenient: a missing meta key is empty, so the path goes relative.
        assert_eq!(render("{{ meta.x_other }}", &ctx).unwrap(), "");
        assert!(contained("", Path::new("/m")).is_err());
        assert!(contained("/m/../etc", Path::new("/m")).is_err());
        assert!(contained("/elsewhere/a", Path::new("/m")).is_err());
    }
}
