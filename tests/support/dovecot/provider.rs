//! A second real Dovecot playing an external mail provider for the warmup
//! tests: its own dovecot.conf (not `inboxgrove dovecot-config`), users in
//! a passwd-file with `{PLAIN}` passwords, maildirs with special-use
//! folders under the `INBOX.` namespace prefix (as some Dovecot providers
//! keep them, Warmbly #186), IMAPS with the given certificate, and an LMTP
//! listener (Debian's dovecot-lmtpd) whose deliveries run a Sieve script
//! (dovecot-sieve) before the user's own, so the test decides what lands
//! in Junk.

use std::os::unix::fs::{PermissionsExt, chown};
use std::path::Path;
use std::process::{Command, Stdio};

use super::{DOVECOT, Dovecot, free_port, ids, users};

impl Dovecot {
    /// Starts the provider with `users` (address, password) and the Sieve
    /// script `sieve` run before every delivery (folders are named with
    /// their prefix there: `fileinto "INBOX.Junk"`).
    pub async fn provider(users: &[(&str, &str)], sieve: &str, cert: &Path, key: &Path) -> Self {
        Self::provider_with(users, sieve, cert, key, "").await
    }

    /// As [`Dovecot::provider`], with `extra` appended to dovecot.conf
    /// (such as an `imap_capability` without MOVE).
    pub async fn provider_with(
        users: &[(&str, &str)],
        sieve: &str,
        cert: &Path,
        key: &Path,
        extra: &str,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let run_as = self::users();
        let (mail_uid, mail_gid) = (ids(&run_as.mail, "-u"), ids(&run_as.mail, "-g"));
        let mail_root = root.join("mail");
        for d in ["mail", "run", "state", "sieve"] {
            std::fs::create_dir(root.join(d)).unwrap();
        }
        // The mail user writes the maildirs and Sieve's compiled script.
        for d in ["mail", "sieve"] {
            chown(root.join(d), Some(mail_uid), Some(mail_gid)).unwrap();
        }
        let passwd: String = users
            .iter()
            .map(|(user, password)| {
                let (local, domain) = user.split_once('@').unwrap();
                let home = mail_root.join(domain).join(local);
                format!(
                    "{user}:{{PLAIN}}{password}:{mail_uid}:{mail_gid}::{}::\n",
                    home.display()
                )
            })
            .collect();
        let users_file = root.join("users");
        std::fs::write(&users_file, passwd).unwrap();
        std::fs::set_permissions(&users_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let script = root.join("sieve/before.sieve");
        std::fs::write(&script, sieve).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (imaps_port, lmtp_port) = (free_port(), free_port());
        let conf = format!(
            r#"protocols = imap lmtp
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
default_internal_user = {internal}
default_login_user = {login}
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = yes
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {users_file}
}}
userdb {{
  driver = passwd-file
  args = {users_file}
}}
first_valid_uid = 1
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  prefix = INBOX.
  separator = .
  mailbox Sent {{
    special_use = \Sent
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \Junk
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \Trash
    auto = subscribe
  }}
  mailbox Archive {{
    special_use = \Archive
    auto = subscribe
  }}
}}
protocol lmtp {{
  mail_plugins = $mail_plugins sieve
  postmaster_address = postmaster@provider.test
}}
plugin {{
  sieve_before = {script}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {imaps_port}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
"#,
            root = root.display(),
            internal = run_as.internal,
            login = run_as.login,
            cert = cert.display(),
            key = key.display(),
            users_file = users_file.display(),
            script = script.display(),
        );
        let conf_path = root.join("dovecot.conf");
        std::fs::write(&conf_path, format!("{conf}{extra}\n")).unwrap();
        let child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self {
            imap: ([127, 0, 0, 1], 0).into(),
            imaps: ([127, 0, 0, 1], imaps_port).into(),
            lmtp: Some(([127, 0, 0, 1], lmtp_port).into()),
            cert: cert.to_owned(),
            mail_root,
            mail_gid,
            dir,
            child,
        };
        server.wait_until_listening().await;
        server
    }
}
