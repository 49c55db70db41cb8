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
    /// Names served with another certificate than `ssl_cert`.
    pub local_names: Vec<LocalName>,
    pub quota: Quota,
}

/// A host name (asked for by SNI) and the certificate served to it.
#[derive(Debug, Clone)]
pub struct LocalName {
    pub name: String,
    pub cert: PathBuf,
    pub key: PathBuf,
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

/// One `local_name` block per name (Dovecot 2.3: the block applies when the
/// client's SNI is that name, and its `ssl_cert`/`ssl_key` replace the
/// global ones). The names come from the certificate manifest, which the
/// unprivileged appliance writes and root renders into Dovecot's config,
/// so each must be a plain DNS name and nothing else.
fn local_names(names: &[LocalName]) -> Result<String, DovecotError> {
    let mut out = String::new();
    for n in names {
        let dns = !n.name.is_empty()
            && n.name.len() <= 253
            && n.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !dns {
            return Err(DovecotError::Invalid(format!(
                "certificate name {:?} is not a DNS name",
                n.name
            )));
        }
        out.push_str(&format!(
            "local_name {} {{\n  ssl_cert = <{}\n  ssl_key = <{}\n}}\n",
            n.name.to_ascii_lowercase(),
            path("TLS certificate", &n.cert)?,
            path("TLS key", &n.key)?,
        ));
    }
    Ok(out)
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
        ("local_names", local_names(&p.local_names)?),
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
            ssl_cert: "/var/lib/inboxgrove-tls/self-signed/cert.pem".into(),
            ssl_key: "/var/lib/inboxgrove-tls/self-signed/key.pem".into(),
            local_names: Vec::new(),
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
    fn each_other_bundle_name_gets_a_local_name_block_and_only_dns_names_do() {
        let mut p = params();
        p.local_names = vec![LocalName {
            name: "Mail.B.test".into(),
            cert: "/var/lib/inboxgrove-tls/live/mail-2/fullchain.pem".into(),
            key: "/var/lib/inboxgrove-tls/live/mail-2/privkey.pem".into(),
        }];
        let text = render(&p).unwrap();
        assert!(text.contains(
            "local_name mail.b.test {\n  ssl_cert = </var/lib/inboxgrove-tls/live/mail-2/fullchain.pem\n  ssl_key = </var/lib/inboxgrove-tls/live/mail-2/privkey.pem\n}\n"
        ));
        // The manifest is the unprivileged side's; a name must not open a
        // block or a setting of its own in root's Dovecot.
        for bad in ["a.test {\n", "a.test}", "*.a.test", "a test", ""] {
            p.local_names[0].name = bad.into();
            assert!(render(&p).is_err(), "{bad:?}");
        }
        p.local_names[0].name = "a.test".into();
        p.local_names[0].key = "relative/privkey.pem".into();
        assert!(render(&p).is_err());
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
