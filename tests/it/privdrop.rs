//! The mail root survives kumod's privilege drop. KumoMTA's unit starts
//! kumod as root with `--user kumod`, and kumod then calls only
//! `setgid(<kumod's primary gid>)` and `seteuid(<kumod's uid>)`
//! (crates/kumod/src/main.rs, `Opt::drop_privs`): no `initgroups`, so
//! groups from /etc/group never apply, while the supplementary groups the
//! root process already holds stay. The package's drop-in for
//! `kumomta.service` gives it those groups (`SupplementaryGroups=`, set by
//! systemd before exec). Here a child process gets exactly those
//! credentials — the groups read from the shipped drop-in, the modes from
//! the policy's own `get_queue_config` — and writes a message as KumoMTA's
//! maildir delivery does; then Dovecot's mail user reads, flags and expunges
//! it, and the server (its unit's `SupplementaryGroups=`) lists it for the
//! inbound quota. Without the groups the first `mkdir` is refused.
//!
//! The credentials are set by util-linux's `setpriv`, which then execs
//! coreutils (a shell would reset an effective uid that differs from the
//! real one): the crate forbids `unsafe`, which `CommandExt::pre_exec`
//! needs. Numeric ids with no passwd or group entry stand in for the
//! system accounts, so this needs root (as CI and ./scripts/test have).

use std::ffi::OsStr;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mlua::prelude::LuaNil;
use nix::unistd::{Gid, Group, Uid, User, geteuid};
use serde_json::json;

use crate::support::kumo_stub::KumoStub;

const KUMO_DROP_IN: &str = include_str!("../../packaging/kumomta.service.d/inboxgrove.conf");
const SERVER_UNIT: &str = include_str!("../../packaging/inboxgrove.service");
const SETPRIV: &str = "/usr/bin/setpriv";
/// The policy's queue for hosted mailboxes (`MAILDIR_QUEUE` in init.lua).
const MAILDIR_QUEUE: &str = "inboxgrove.maildir";
const MESSAGE: &str = "From: a@example.net\r\nTo: ada@grove.test\r\nSubject: hi\r\n\r\nhello\r\n";

/// Who runs a child, and how its credentials are set.
enum As {
    /// kumod after `drop_privs`: real uid root, effective uid kumod, real
    /// and effective gid kumod, and the supplementary groups it started
    /// with.
    Kumod {
        uid: u32,
        gid: u32,
        groups: Vec<u32>,
    },
    /// A service started by systemd with `User=`/`Group=` and
    /// `SupplementaryGroups=` (the server; Dovecot's mail processes with
    /// no extra groups).
    Service {
        uid: u32,
        gid: u32,
        groups: Vec<u32>,
    },
}

/// Numeric stand-ins for the system accounts: each id is free both as a
/// uid and as a gid, so no file or process of this host is theirs.
struct Ids {
    kumod: u32,
    mail: u32,
    tls: u32,
    server: u32,
}

impl Ids {
    fn pick() -> Self {
        let mut free = (60000..65000).filter(|id| {
            User::from_uid(Uid::from_raw(*id)).unwrap().is_none()
                && Group::from_gid(Gid::from_raw(*id)).unwrap().is_none()
        });
        let mut next = || free.next().expect("no free id in 60000..65000");
        Self {
            kumod: next(),
            mail: next(),
            tls: next(),
            server: next(),
        }
    }

    /// The gid systemd gives a group named in a unit.
    fn group(&self, name: &str) -> u32 {
        match name {
            "inboxgrove-mail" => self.mail,
            "inboxgrove-tls" => self.tls,
            other => panic!("a unit names the group {other}, which this test does not know"),
        }
    }

    /// The gids of the `SupplementaryGroups=` of `unit`.
    fn supplementary(&self, unit: &str) -> Vec<u32> {
        let mut gids: Vec<u32> = unit_values(unit, "SupplementaryGroups")
            .iter()
            .map(|name| self.group(name))
            .collect();
        gids.sort_unstable();
        gids
    }
}

/// The values of `key=` in a unit's `[Service]` section, as systemd reads
/// a list setting (systemd.exec(5)): the lines add up, an empty assignment
/// clears what came before.
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    let mut section = "";
    let mut values = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[Service]"
            && let Some(value) = line
                .strip_prefix(key)
                .and_then(|rest| rest.trim_start().strip_prefix('='))
        {
            if value.trim().is_empty() {
                values.clear();
            }
            values.extend(value.split_whitespace().map(str::to_owned));
        }
    }
    values
}

/// `dir_mode` and `file_mode` of the policy's maildir queue, from
/// `kumo-policy/init.lua` itself.
fn policy_modes(dir: &Path, mail_root: &Path) -> (u32, u32) {
    let secret = dir.join("kumo.secret");
    std::fs::write(&secret, "00").unwrap();
    let stub = KumoStub::load(&json!({
        "control_secret_file": secret,
        "hostname": "mail.grove.test",
        "mail_root": mail_root,
    }));
    let out = stub.fire("get_queue_config", (MAILDIR_QUEUE, LuaNil, LuaNil, LuaNil));
    let protocol = stub.json(&out.value())["params"]["protocol"].clone();
    let mode = |key: &str| {
        u32::try_from(
            protocol[key]
                .as_u64()
                .unwrap_or_else(|| panic!("{key}: {protocol}")),
        )
        .unwrap()
    };
    (mode("dir_mode"), mode("file_mode"))
}

/// Runs `program args…` with the credentials of `who`.
fn run(who: &As, program: &str, args: &[&OsStr], stdin: Option<&str>) -> Output {
    // setgid as root sets the real and effective gid; seteuid only the
    // effective uid, where systemd's User= sets both.
    let (uid_flag, uid, gid, groups) = match who {
        As::Kumod { uid, gid, groups } => ("--euid", uid, gid, groups),
        As::Service { uid, gid, groups } => ("--reuid", uid, gid, groups),
    };
    let mut cmd = Command::new(SETPRIV);
    cmd.args(["--regid", &gid.to_string(), uid_flag, &uid.to_string()]);
    if groups.is_empty() {
        cmd.arg("--clear-groups");
    } else {
        let list: Vec<String> = groups.iter().map(u32::to_string).collect();
        cmd.args(["--groups", &list.join(",")]);
    }
    cmd.arg("--").arg(program).args(args);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

/// Same, failing the test with the child's stderr unless it succeeds.
fn ok(who: &As, program: &str, args: &[&OsStr]) -> String {
    let out = run(who, program, args, None);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn os(path: &Path) -> &OsStr {
    path.as_os_str()
}

/// A temp dir others may traverse, holding the mail root as the package
/// makes it: root:inboxgrove-mail 2770.
fn mail_root(ids: &Ids) -> (tempfile::TempDir, PathBuf) {
    assert!(
        geteuid().is_root(),
        "tests/it/privdrop.rs must run as root: it hands files to other users and drops \
         privileges as kumod does (./scripts/test and CI run as root)"
    );
    assert!(
        Path::new(SETPRIV).exists(),
        "{SETPRIV} (util-linux) is missing"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = dir.path().join("mail");
    std::fs::create_dir(&root).unwrap();
    chown(&root, Some(0), Some(ids.mail)).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o2770)).unwrap();
    (dir, root)
}

/// `(real, effective)` of a `Uid:`/`Gid:` line and the `Groups:` of a
/// /proc/<pid>/status.
fn credentials(status: &str) -> ((u32, u32), (u32, u32), Vec<u32>) {
    let field = |name: &str| -> Vec<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {status}"))
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect()
    };
    let (uid, gid) = (field("Uid:"), field("Gid:"));
    let mut groups = field("Groups:");
    groups.sort_unstable();
    ((uid[0], uid[1]), (gid[0], gid[1]), groups)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kumod_writes_maildirs_that_dovecot_and_the_server_share_with_the_drop_in_groups() {
    let ids = Ids::pick();
    let (dir, root) = mail_root(&ids);
    let (dir_mode, file_mode) = policy_modes(dir.path(), &root);
    let kumod = As::Kumod {
        uid: ids.kumod,
        gid: ids.kumod,
        groups: ids.supplementary(KUMO_DROP_IN),
    };

    // The child's credentials are kumod's after drop_privs: root only as
    // the real uid, kumod's own gid, the drop-in's groups.
    let status = ok(&kumod, "cat", &[OsStr::new("/proc/self/status")]);
    assert_eq!(
        credentials(&status),
        (
            (0, ids.kumod),
            (ids.kumod, ids.kumod),
            ids.supplementary(KUMO_DROP_IN)
        ),
        "{status}"
    );

    // KumoMTA's maildir delivery (crates/maildir/src/lib.rs): each missing
    // directory made, then given dir_mode; the message created in tmp/,
    // given file_mode, written, renamed into new/.
    let maildir = root.join("grove.test/ada/Maildir");
    let mut dirs = vec![
        root.join("grove.test"),
        root.join("grove.test/ada"),
        maildir.clone(),
    ];
    dirs.extend(["cur", "new", "tmp"].map(|d| maildir.join(d)));
    for d in &dirs {
        ok(&kumod, "mkdir", &[os(d)]);
        ok(
            &kumod,
            "chmod",
            &[OsStr::new(&format!("{dir_mode:o}")), os(d)],
        );
    }
    let name = "1764650000.#0M1P1.mail.grove.test";
    let tmp = maildir.join("tmp").join(name);
    ok(&kumod, "touch", &[os(&tmp)]);
    ok(
        &kumod,
        "chmod",
        &[OsStr::new(&format!("{file_mode:o}")), os(&tmp)],
    );
    let wrote = run(&kumod, "tee", &[os(&tmp)], Some(MESSAGE));
    assert!(wrote.status.success(), "{wrote:?}");
    let new = maildir.join("new").join(name);
    ok(&kumod, "mv", &[os(&tmp), os(&new)]);

    // All of it in the mail group (the setgid root), with the policy's modes.
    for d in &dirs {
        let meta = std::fs::metadata(d).unwrap();
        assert_eq!(
            (meta.mode() & 0o7777, meta.gid()),
            (dir_mode, ids.mail),
            "{}",
            d.display()
        );
    }
    let meta = std::fs::metadata(&new).unwrap();
    assert_eq!((meta.mode() & 0o7777, meta.gid()), (file_mode, ids.mail));

    // The server lists the maildir for the inbound quota, through its own
    // unit's SupplementaryGroups=.
    let server = As::Service {
        uid: ids.server,
        gid: ids.server,
        groups: ids.supplementary(SERVER_UNIT),
    };
    let listed = ok(&server, "ls", &[os(&maildir.join("new"))]);
    assert_eq!(listed.trim(), name);

    // Dovecot's mail user (uid and gid inboxgrove-mail, no other group)
    // reads the message, flags it (a rename into cur/), writes its own
    // files and folders, and expunges it.
    let dovecot = As::Service {
        uid: ids.mail,
        gid: ids.mail,
        groups: Vec::new(),
    };
    assert_eq!(ok(&dovecot, "cat", &[os(&new)]), MESSAGE);
    let seen = maildir.join("cur").join(format!("{name}:2,S"));
    ok(&dovecot, "mv", &[os(&new), os(&seen)]);
    ok(&dovecot, "touch", &[os(&maildir.join("dovecot-uidlist"))]);
    // Dovecot gives a folder it makes the mail root's mode and group (the
    // real one does, tests/it/dovecot.rs).
    ok(
        &dovecot,
        "mkdir",
        &[OsStr::new("-m2770"), os(&maildir.join(".Sent"))],
    );
    ok(&dovecot, "rm", &[os(&seen)]);
    assert!(!seen.exists());

    // And kumod delivers into what Dovecot made.
    ok(&kumod, "touch", &[os(&maildir.join(".Sent/tmp-probe"))]);
}

#[test]
fn without_the_drop_in_groups_kumod_cannot_create_a_maildir() {
    let ids = Ids::pick();
    let (_dir, root) = mail_root(&ids);
    // What `kumod --user kumod` holds when its groups come from /etc/group
    // alone: none but its own.
    let kumod = As::Kumod {
        uid: ids.kumod,
        gid: ids.kumod,
        groups: Vec::new(),
    };
    let domain = root.join("grove.test");
    let out = run(&kumod, "mkdir", &[os(&domain)], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("Permission denied"),
        "{out:?}"
    );
    assert!(!domain.exists());
}
