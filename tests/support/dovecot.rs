//! A real Dovecot (Debian's `dovecot-imapd`) as a child process, configured
//! by `inboxgrove dovecot-config` exactly as production is, only with
//! loopback high ports, a temp mail root and temp state. Shared by the
//! integration tests and the IMAP benchmark.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

// A second Dovecot playing an external mail provider (warmup tests).
#[path = "dovecot/provider.rs"]
mod provider;

const DOVECOT: &str = "/usr/sbin/dovecot";

/// The users Dovecot's processes and the maildirs run as. Root runs the
/// Debian ones (`dovecot`, `dovenull`) and `nobody:nogroup` for mail, so
/// the maildirs are shared through their group as with KumoMTA.
struct Users {
    internal: String,
    login: String,
    mail: String,
    group: String,
}

fn users() -> Users {
    let me = |flag: &str| {
        let out = Command::new("id").arg(flag).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    if me("-u") == "0" {
        Users {
            internal: "dovecot".into(),
            login: "dovenull".into(),
            mail: "nobody".into(),
            group: "nogroup".into(),
        }
    } else {
        let (user, group) = (me("-un"), me("-gn"));
        Users {
            internal: user.clone(),
            login: user.clone(),
            mail: user,
            group,
        }
    }
}

fn ids(name: &str, flag: &str) -> u32 {
    let out = Command::new("id").args([flag, name]).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether Dovecot is installed. Without it the tests are skipped, loudly,
/// except under CI, where the test setup must have installed it.
pub fn available() -> bool {
    if Path::new(DOVECOT).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{DOVECOT} is missing under CI: scripts/test installs dovecot-imapd from scripts/test-packages.txt"
    );
    eprintln!(
        "\n*** SKIPPED: {DOVECOT} is not installed (apt-get install dovecot-imapd, or run ./scripts/test) ***\n"
    );
    false
}

pub struct Dovecot {
    pub imap: SocketAddr,
    pub imaps: SocketAddr,
    /// LMTP (RFC 2033), on the provider Dovecot only.
    pub lmtp: Option<SocketAddr>,
    /// The certificate Dovecot presents (InboxGrove's self-signed one).
    pub cert: PathBuf,
    pub mail_root: PathBuf,
    /// Group that owns the maildirs, as KumoMTA's delivery would use.
    pub mail_gid: u32,
    dir: TempDir,
    child: Child,
}

impl Dovecot {
    /// Starts Dovecot in front of the appliance whose control listener is
    /// `control` (`http://IP:PORT`) and whose data dir is `data_dir`.
    pub async fn start(control: &str, data_dir: &Path) -> Self {
        Self::start_with(control, data_dir, &[]).await
    }

    /// As [`Dovecot::start`], with more `dovecot-config` flags (such as
    /// `--tls-dir` and `--hostname`).
    pub async fn start_with(control: &str, data_dir: &Path, flags: &[&std::ffi::OsStr]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // Dovecot's unprivileged processes must reach the files below.
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let users = users();
        let (mail_uid, mail_gid) = (ids(&users.mail, "-u"), ids(&users.mail, "-g"));
        let mail_root = root.join("mail");
        std::fs::create_dir(&mail_root).unwrap();
        // The production layout: setgid and group-writable, so whatever
        // KumoMTA (another user of the group) creates stays shared.
        std::fs::set_permissions(&mail_root, std::fs::Permissions::from_mode(0o2770)).unwrap();
        chown(&mail_root, Some(mail_uid), Some(mail_gid)).unwrap();
        // The copy of Dovecot's credential its auth process reads.
        let secret = root.join("inboxgrove.secret");
        std::fs::copy(data_dir.join("dovecot.secret"), &secret).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (imap_port, imaps_port) = (free_port(), free_port());
        let exe = env!("CARGO_BIN_EXE_inboxgrove");
        let control_listen = control.trim_start_matches("http://");
        let rendered = Command::new(exe)
            .args(["dovecot-config", "--data-dir"])
            .arg(data_dir)
            .args(["--control-listen", control_listen])
            .args(["--imap-listen", "127.0.0.1"])
            .args(["--imap-port", &imap_port.to_string()])
            .args(["--imaps-port", &imaps_port.to_string()])
            .arg("--base-dir")
            .arg(root.join("run"))
            .arg("--state-dir")
            .arg(root.join("state"))
            .arg("--log-path")
            .arg(root.join("dovecot.log"))
            .args(["--internal-user", &users.internal])
            .args(["--login-user", &users.login])
            .args(["--mail-user", &users.mail])
            .args(["--mail-group", &users.group])
            .arg("--mail-root")
            .arg(&mail_root)
            .arg("--secret-file")
            .arg(&secret)
            .args(flags)
            .env_remove("INBOXGROVE_CONFIG")
            .output()
            .unwrap();
        assert!(
            rendered.status.success(),
            "dovecot-config: {}",
            String::from_utf8_lossy(&rendered.stderr)
        );
        let conf = root.join("dovecot.conf");
        std::fs::write(&conf, &rendered.stdout).unwrap();
        for d in ["run", "state"] {
            std::fs::create_dir(root.join(d)).unwrap();
        }
        let child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self {
            imap: ([127, 0, 0, 1], imap_port).into(),
            imaps: ([127, 0, 0, 1], imaps_port).into(),
            lmtp: None,
            cert: data_dir.join("certs/self-signed/cert.pem"),
            mail_root,
            mail_gid,
            dir,
            child,
        };
        server.wait_until_listening().await;
        server
    }

    async fn wait_until_listening(&self) {
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(self.imaps).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("Dovecot did not listen within 5 s:\n{}", self.log());
    }

    /// Dovecot's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// Where KumoMTA delivers mail for `email`.
    pub fn maildir(&self, email: &str) -> PathBuf {
        let (local, domain) = email.split_once('@').unwrap();
        self.mail_root.join(domain).join(local).join("Maildir")
    }

    /// Writes `message` into `email`'s maildir as KumoMTA's maildir
    /// delivery does: directories 2770 and files 0660 in the mail group, the
    /// file written under tmp/ and renamed into new/.
    pub fn deliver(&self, email: &str, name: &str, message: &[u8]) {
        let maildir = self.maildir(email);
        let mut made = self.mail_root.clone();
        for part in maildir.strip_prefix(&self.mail_root).unwrap().components() {
            made.push(part);
            self.shared_dir(&made);
        }
        for sub in ["tmp", "new", "cur"] {
            self.shared_dir(&maildir.join(sub));
        }
        let tmp = maildir.join("tmp").join(name);
        std::fs::write(&tmp, message).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o660)).unwrap();
        chown(&tmp, None, Some(self.mail_gid)).unwrap();
        std::fs::rename(&tmp, maildir.join("new").join(name)).unwrap();
    }

    /// Every directory from the domain down to `Maildir/new` and `tmp` is
    /// setgid and group-writable in the mail group.
    pub fn assert_group_shared(&self, email: &str) {
        use std::os::unix::fs::MetadataExt;
        let maildir = self.maildir(email);
        let mut dirs = vec![maildir.join("new"), maildir.join("tmp")];
        let mut at = maildir.clone();
        while at != self.mail_root {
            dirs.push(at.clone());
            at.pop();
        }
        for dir in dirs {
            let meta = std::fs::metadata(&dir).unwrap();
            assert_eq!(
                (meta.mode() & 0o2070, meta.gid()),
                (0o2070, self.mail_gid),
                "{} is {:o}",
                dir.display(),
                meta.mode()
            );
        }
    }

    fn shared_dir(&self, path: &Path) {
        if !path.exists() {
            std::fs::create_dir(path).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o2770)).unwrap();
            chown(path, None, Some(self.mail_gid)).unwrap();
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its login and auth processes.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}
