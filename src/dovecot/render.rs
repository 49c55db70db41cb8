//! The Dovecot configuration, rendered from `packaging/dovecot/dovecot.conf.in`
//! for the installed paths. Production and the tests render it the same way
//! (only ports, paths and users differ), so the tests run what ships.

use std::path::PathBuf;

use super::DovecotError;
use super::quota::Quota;

const TEMPLATE: &str = include_str!("../../packaging/dovecot/dovecot.conf.in");

/// Every value the template needs.
#[derive(Debug, Clone)]
pub struct Params {
    /// Addresses Dovecot listens on, Dovecot syntax (`*, ::`).
    pub listen: String,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub base_dir: PathBuf,
    pub state_dir: PathBuf,
    /// A file, or `syslog`.
    pub log_path: String,
    pub internal_user: String,
    pub login_user: String,
    /// The system user and group that own every maildir.
    pub mail_user: String,
    pub mail_group: String,
    /// `<mail_root>/<domain>/<local part>/Maildir`, as KumoMTA delivers.
    pub mail_root: PathBuf,
    /// This binary, run as the checkpassword helper.
    pub binary: PathBuf,
    /// `http://IP:PORT` of the control listener.
    pub control_url: String,
    pub secret_file: PathBuf,
    pub ssl_cert: PathBuf,
    pub ssl_key: PathBuf,
    pub quota: Quota,
}

/// A value goes into the file as it is: Dovecot splits the checkpassword
/// `args` on spaces and expands `%` in them, so those (and line breaks,
/// quotes) would change what runs.
fn plain(name: &str, value: &str) -> Result<String, DovecotError> {
    if value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || "%\"'<{}#\\".contains(c))
    {
        return Err(DovecotError::Invalid(format!(
            "{name} {value:?} must be non-empty, without spaces, quotes or any of % < {{ }} # \\"
        )));
    }
    Ok(value.to_owned())
}

fn path(name: &str, p: &std::path::Path) -> Result<String, DovecotError> {
    if !p.is_absolute() {
        return Err(DovecotError::Invalid(format!(
            "{name} {} must be an absolute path",
            p.display()
        )));
    }
    plain(name, &p.to_string_lossy())
}

pub fn render(p: &Params) -> Result<String, DovecotError> {
    if !p
        .listen
        .chars()
        .all(|c| c.is_ascii_hexdigit() || ".:*, ".contains(c))
        || p.listen.trim().is_empty()
    {
        return Err(DovecotError::Invalid(format!(
            "listen {:?} must be addresses like `*, ::` or 127.0.0.1",
            p.listen
        )));
    }
    let log_path = if p.log_path == "syslog" {
        p.log_path.clone()
    } else {
        path("log path", std::path::Path::new(&p.log_path))?
    };
    let values = [
        ("listen", p.listen.clone()),
        ("imap_port", p.imap_port.to_string()),
        ("imaps_port", p.imaps_port.to_string()),
        ("base_dir", path("base dir", &p.base_dir)?),
        ("state_dir", path("state dir", &p.state_dir)?),
        ("log_path", log_path),
        ("internal_user", plain("internal user", &p.internal_user)?),
        ("login_user", plain("login user", &p.login_user)?),
        ("mail_user", plain("mail user", &p.mail_user)?),
        ("mail_group", plain("mail group", &p.mail_group)?),
        ("mail_root", path("mail root", &p.mail_root)?),
        ("binary", path("binary", &p.binary)?),
        ("control_url", plain("control url", &p.control_url)?),
        ("secret_file", path("secret file", &p.secret_file)?),
        ("ssl_cert", path("TLS certificate", &p.ssl_cert)?),
        ("ssl_key", path("TLS key", &p.ssl_key)?),
        ("quota", p.quota.as_dovecot().to_owned()),
    ];
    let mut out = TEMPLATE.to_owned();
    for (key, value) in values {
        out = out.replace(&format!("{{{{{key}}}}}"), &value);
    }
    // Invariant of the template: every placeholder has a value above.
    debug_assert!(!out.contains("{{"), "unfilled placeholder in {out}");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            listen: "*, ::".into(),
            imap_port: 143,
            imaps_port: 993,
            base_dir: "/run/dovecot".into(),
            state_dir: "/var/lib/dovecot".into(),
            log_path: "syslog".into(),
            internal_user: "dovecot".into(),
            login_user: "dovenull".into(),
            mail_user: "inboxgrove-mail".into(),
            mail_group: "inboxgrove-mail".into(),
            mail_root: "/var/lib/inboxgrove-mail".into(),
            binary: "/usr/bin/inboxgrove".into(),
            control_url: "http://127.0.0.1:8081".into(),
            secret_file: "/etc/dovecot/inboxgrove.secret".into(),
            ssl_cert: "/var/lib/inboxgrove/tls/cert.pem".into(),
            ssl_key: "/var/lib/inboxgrove/tls/key.pem".into(),
            quota: Quota::default(),
        }
    }

    #[test]
    fn the_production_config_has_every_value() {
        let text = render(&params()).unwrap();
        assert!(!text.contains("{{"));
        assert!(text.contains(
            "args = /usr/bin/inboxgrove checkpassword --control-url http://127.0.0.1:8081 --secret-file /etc/dovecot/inboxgrove.secret\n"
        ));
        assert!(text.contains("home=/var/lib/inboxgrove-mail/%d/%n\n"));
        assert!(text.contains("quota_rule = *:storage=1G\n"));
        assert!(text.contains("quota = maildir:User quota\n"));
        assert!(text.contains("ssl = required\n"));
        assert!(text.contains("    port = 993\n"));
        for folder in ["Sent", "Drafts", "Junk", "Trash", "Archive"] {
            assert!(
                text.contains(&format!("special_use = \\{folder}\n")),
                "{folder}"
            );
        }
    }

    #[test]
    fn values_that_would_change_the_command_are_refused() {
        let mut p = params();
        p.secret_file = "/etc/dove cot/secret".into();
        assert!(render(&p).is_err());
        let mut p = params();
        p.binary = "/usr/bin/inboxgrove%u".into();
        assert!(render(&p).is_err());
        let mut p = params();
        p.mail_root = "relative/mail".into();
        assert!(render(&p).is_err());
        let mut p = params();
        p.listen = "0.0.0.0\n!include /etc/passwd".into();
        assert!(render(&p).is_err());
    }
}
