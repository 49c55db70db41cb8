//! `inboxgrove dovecot-config` (renders Dovecot's configuration) and the
//! hidden `inboxgrove checkpassword` Dovecot runs for each IMAP login.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::config::{ServeArgs, Settings};
use crate::dovecot::checkpassword::{self, Control, Verdict};
use crate::dovecot::render::{self, LocalName, Params};
use crate::dovecot::{DovecotError, tls};
use crate::tls::{Manifest, mail};

#[derive(Debug, Args)]
pub struct DovecotConfigCli {
    /// The server's settings (control listener, TLS certificate …).
    #[command(flatten)]
    pub settings: ServeArgs,
    #[command(flatten)]
    pub dovecot: DovecotArgs,
}

/// Where Dovecot runs; the defaults are Debian's and the installed paths.
/// The mail root and quota are the server's settings (`--mail-root`,
/// `--mailbox-quota`), so Dovecot and deliveries use the same ones.
#[derive(Debug, Clone, Args)]
pub struct DovecotArgs {
    /// Addresses Dovecot listens on, Dovecot syntax
    #[arg(long, default_value = "*, ::")]
    pub imap_listen: String,
    /// IMAP with STARTTLS
    #[arg(long, default_value_t = 143)]
    pub imap_port: u16,
    /// IMAP over TLS; the port every credential export names
    #[arg(long, default_value_t = crate::inboxes::IMAP_PORT)]
    pub imaps_port: u16,
    #[arg(long, default_value = "/run/dovecot")]
    pub base_dir: PathBuf,
    #[arg(long, default_value = "/var/lib/dovecot")]
    pub state_dir: PathBuf,
    /// A file, or syslog
    #[arg(long, default_value = "syslog")]
    pub log_path: String,
    #[arg(long, default_value = "dovecot")]
    pub internal_user: String,
    #[arg(long, default_value = "dovenull")]
    pub login_user: String,
    /// The system user owning every maildir (shared with KumoMTA by group)
    #[arg(long, default_value = "inboxgrove-mail")]
    pub mail_user: String,
    #[arg(long, default_value = "inboxgrove-mail")]
    pub mail_group: String,
    /// The inboxgrove binary Dovecot runs [default: this one]
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// A copy of <data-dir>/dovecot.secret (Dovecot's credential: IMAP
    /// logins and mailbox lookups only) readable by Dovecot's auth process
    #[arg(long, default_value = INSTALLED_SECRET)]
    pub secret_file: PathBuf,
}

/// Prints the configuration for these settings, making the self-signed
/// certificate first if none is configured.
pub fn config(args: &DovecotArgs, settings: &Settings) -> anyhow::Result<()> {
    let manifest = Manifest::load(&settings.tls_dir)?;
    // The banner name's bundle is the default, as for KumoMTA; every other
    // bundle's names get a `local_name` block, since Dovecot chooses by SNI.
    let default = mail::default_cert(settings, &manifest, &settings.doctor.mail_hostname());
    if default.source == mail::Source::SelfSigned {
        let paths = tls::default_paths(&settings.tls_dir);
        let names = tls::SELF_SIGNED_NAMES.map(str::to_owned);
        if tls::ensure_self_signed(&paths, &names)? {
            eprintln!(
                "made a self-signed certificate {}; until certificates are issued for the mail hosts, sequencers refuse it",
                paths.cert.display()
            );
        }
    }
    let local_names = mail::named_certs(&settings.tls_dir, &manifest, &default)
        .into_iter()
        .map(|n| LocalName {
            name: n.name,
            cert: n.cert,
            key: n.key,
        })
        .collect();
    let binary = match &args.binary {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("cannot tell where this binary is")?,
    };
    let params = Params {
        listen: args.imap_listen.clone(),
        imap_port: args.imap_port,
        imaps_port: args.imaps_port,
        base_dir: args.base_dir.clone(),
        state_dir: args.state_dir.clone(),
        log_path: args.log_path.clone(),
        internal_user: args.internal_user.clone(),
        login_user: args.login_user.clone(),
        mail_user: args.mail_user.clone(),
        mail_group: args.mail_group.clone(),
        mail_root: settings.mail.root.clone(),
        binary,
        control_url: settings.control_url(),
        secret_file: args.secret_file.clone(),
        ssl_cert: std::path::absolute(default.cert)?,
        ssl_key: std::path::absolute(default.key)?,
        local_names,
        quota: settings.mail.quota.clone(),
    };
    print!("{}", render::render(&params)?);
    Ok(())
}

/// Where the installer puts Dovecot's copy of its credential.
pub const INSTALLED_SECRET: &str = "/etc/dovecot/inboxgrove.secret";

#[derive(Debug, Clone, Args)]
pub struct CheckpasswordArgs {
    /// The control listener, http://IP:PORT
    #[arg(long)]
    pub control_url: String,
    /// File holding Dovecot's control credential
    #[arg(long)]
    pub secret_file: PathBuf,
    /// The reply program Dovecot appends; not run (the fields are written
    /// to fd 4 directly).
    #[arg(trailing_var_arg = true, hide = true)]
    pub reply: Vec<String>,
}

/// Runs one checkpassword exchange and returns the exit code. Every failure
/// that is not a refusal is temporary (111), so a stopped appliance makes
/// clients retry instead of telling them the password is wrong.
pub fn checkpassword(args: &CheckpasswordArgs) -> u8 {
    match exchange(args) {
        Ok(code) => code,
        Err(e) => {
            // Dovecot writes the helper's stderr to its log; no secret is
            // in any of these messages.
            eprintln!("inboxgrove checkpassword: {e}");
            checkpassword::EXIT_TEMPORARY
        }
    }
}

fn exchange(args: &CheckpasswordArgs) -> Result<u8, DovecotError> {
    // Dovecot's pipes, opened through /dev/fd because this crate forbids
    // the unsafe code `File::from_raw_fd` needs.
    let io = |path: &str| {
        let path = PathBuf::from(path);
        move |source| DovecotError::Io { path, source }
    };
    let mut raw = Vec::new();
    std::fs::File::open("/dev/fd/3")
        .map_err(io("/dev/fd/3"))?
        .take(checkpassword::MAX_INPUT + 1)
        .read_to_end(&mut raw)
        .map_err(io("/dev/fd/3"))?;
    let input = checkpassword::parse_input(&raw)?;
    let control = Control::new(&args.control_url, &args.secret_file)?;
    let lookup = std::env::var("AUTHORIZED").is_ok_and(|v| v == "1");
    if lookup && std::env::var_os("CREDENTIALS_LOOKUP").is_some() {
        return Err(DovecotError::Protocol(
            "only plaintext mechanisms (PLAIN, LOGIN) are supported".into(),
        ));
    }
    let verdict = if lookup {
        checkpassword::lookup(&control, &input.user)?
    } else {
        let source = std::env::var("TCPREMOTEIP")
            .ok()
            .and_then(|ip| ip.parse().ok());
        checkpassword::authenticate(&control, &input, source)?
    };
    let Verdict::Ok(email) = verdict else {
        return Ok(if lookup {
            checkpassword::EXIT_LOOKUP_UNKNOWN
        } else {
            checkpassword::EXIT_REFUSED
        });
    };
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/fd/4")
        .and_then(|mut fd4| fd4.write_all(checkpassword::reply_fields(&email).as_bytes()))
        .map_err(io("/dev/fd/4"))?;
    Ok(if lookup {
        checkpassword::EXIT_LOOKUP_FOUND
    } else {
        checkpassword::EXIT_OK
    })
}
