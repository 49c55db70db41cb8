//! The per-mailbox storage quota (issue 7: a mailbox cannot fill the
//! disk), shared by Dovecot and the KumoMTA policy.
//!
//! Dovecot keeps each mailbox's usage in the Maildir++ `maildirsize` file
//! (<https://www.courier-mta.org/imap/README.maildirquota.html>): a first
//! line with the limit (`1073741824S` or `1073741824S,1000C`), then one
//! `<bytes> <messages>` line per change, negative after an expunge. The
//! usage is the sum of those lines. KumoMTA delivers into the maildir
//! itself, past Dovecot, and does not add its deliveries to that file, so
//! the usage InboxGrove checks is the larger of the file's sum and the
//! bytes of the messages actually in the maildir; the policy refuses mail
//! for a full mailbox before it is written.

use std::path::{Path, PathBuf};

use super::DovecotError;

/// Where mail lives when nothing else is configured:
/// `<mail root>/<domain>/<local part>/Maildir`, as KumoMTA delivers.
pub const DEFAULT_MAIL_ROOT: &str = "/var/lib/inboxgrove-mail";

/// A storage quota as Dovecot's `quota_rule` writes it: a number with an
/// optional unit, `1G`, `512M`; units are powers of 1024, as in Dovecot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    text: String,
    bytes: u64,
}

impl Quota {
    pub fn parse(raw: &str) -> Result<Self, DovecotError> {
        let s = raw.trim().to_ascii_uppercase();
        let digits = s.trim_end_matches(['K', 'M', 'G', 'T']);
        let unit_len = s.len() - digits.len();
        if digits.is_empty() || unit_len > 1 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(DovecotError::Invalid(format!(
                "quota {raw:?} must be a size like 1G, 512M or 2048K"
            )));
        }
        let shift = match &s[digits.len()..] {
            "K" => 10,
            "M" => 20,
            "G" => 30,
            "T" => 40,
            _ => 0,
        };
        let bytes = digits
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(1 << shift))
            .ok_or_else(|| DovecotError::Invalid(format!("quota {raw:?} is too large")))?;
        if bytes == 0 {
            return Err(DovecotError::Invalid(
                "quota must be above zero (a mailbox needs room for mail)".into(),
            ));
        }
        Ok(Self { text: s, bytes })
    }

    /// As Dovecot's `quota_rule` takes it.
    pub fn as_dovecot(&self) -> &str {
        &self.text
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Default for Quota {
    fn default() -> Self {
        Self {
            text: "1G".into(),
            bytes: 1 << 30,
        }
    }
}

impl std::str::FromStr for Quota {
    type Err = DovecotError;
    fn from_str(s: &str) -> Result<Self, DovecotError> {
        Self::parse(s)
    }
}

/// The bytes a `maildirsize` text says are used: the sum of the first
/// column of every line after the limit line. Never below zero (deltas
/// that over-count deletes), saturating rather than wrapping on absurd
/// sums.
pub fn used_bytes(text: &str) -> Result<u64, DovecotError> {
    let mut lines = text.lines();
    if lines.next().is_none_or(|limit| limit.trim().is_empty()) {
        return Err(DovecotError::Invalid(
            "maildirsize has no limit line".into(),
        ));
    }
    let mut total: i128 = 0;
    for (n, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let mut fields = line.split_whitespace().map(str::parse::<i64>);
        let (Some(Ok(bytes)), Some(Ok(_count)), None) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(DovecotError::Invalid(format!(
                "maildirsize line {} is not `<bytes> <messages>`: {line:?}",
                n + 2
            )));
        };
        total += i128::from(bytes);
    }
    Ok(u64::try_from(total.max(0)).unwrap_or(u64::MAX))
}

/// The `Maildir` of the mailbox `<local>@<domain>`.
pub fn maildir_path(mail_root: &Path, domain: &str, local: &str) -> PathBuf {
    mail_root.join(domain).join(local).join("Maildir")
}

/// Bytes of the messages in a maildir: the files in `new/` and `cur/` of
/// the inbox and of every folder (Maildir++ folders are `.Name`
/// directories beside them). `tmp/` holds deliveries not yet finished.
/// A mailbox that never had mail has no maildir and uses nothing.
pub fn walk_usage(maildir: &Path) -> std::io::Result<u64> {
    let mut folders = vec![maildir.to_owned()];
    match std::fs::read_dir(maildir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry?;
                if entry.file_name().to_string_lossy().starts_with('.')
                    && entry.file_type()?.is_dir()
                {
                    folders.push(entry.path());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    }
    let mut total = 0u64;
    for folder in folders {
        for sub in ["new", "cur"] {
            let entries = match std::fs::read_dir(folder.join(sub)) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                let meta = entry?.metadata()?;
                if meta.is_file() {
                    total = total.saturating_add(meta.len());
                }
            }
        }
    }
    Ok(total)
}

/// Bytes used by the mailbox whose `maildirsize` is at `path`; a mailbox
/// that never had mail has no file and uses nothing.
pub fn read_usage(path: &Path) -> Result<u64, DovecotError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            used_bytes(&text).map_err(|e| DovecotError::Invalid(format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(source) => Err(DovecotError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Whether the mailbox in `maildir` is at or over its quota. Blocking file
/// I/O. A `maildirsize` that cannot be read counts as nothing used, with a
/// warning: Dovecot rewrites a broken file at its next recalculation
/// (Maildir++), and the messages on disk are still counted.
pub fn is_full(maildir: &Path, quota: &Quota) -> bool {
    let counted = read_usage(&maildir.join("maildirsize")).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read a mailbox's maildirsize; counting only its files");
        0
    });
    let on_disk = walk_usage(maildir).unwrap_or_else(|e| {
        tracing::warn!(error = %e, path = %maildir.display(), "cannot measure a maildir");
        0
    });
    counted.max(on_disk) >= quota.bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_are_sizes_in_powers_of_1024() {
        let q = Quota::parse("512m").unwrap();
        assert_eq!((q.as_dovecot(), q.bytes()), ("512M", 512 << 20));
        assert_eq!(Quota::parse("2048").unwrap().bytes(), 2048);
        assert_eq!(Quota::default(), Quota::parse("1G").unwrap());
        for bad in ["", "G", "1GB", "-1G", "0", "0K", "1.5G", "99999999999T"] {
            assert!(Quota::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn usage_is_the_sum_of_the_deltas_after_the_limit_line() {
        assert_eq!(used_bytes("1073741824S\n1000 1\n2500 2\n").unwrap(), 3500);
        assert_eq!(used_bytes("1073741824S,1000C\n").unwrap(), 0);
        // Deletes are negative deltas; a trailing or blank line is no line.
        assert_eq!(used_bytes("1G\n5000 3\n-2000 -1\n\n").unwrap(), 3000);
        // Over-counted deletes never make usage negative.
        assert_eq!(used_bytes("0S\n100 1\n-500 -2\n").unwrap(), 0);
        // Padding as Dovecot writes it after recalculating.
        assert_eq!(used_bytes("1S\n   1234     5\n").unwrap(), 1234);
    }

    #[test]
    fn huge_numbers_saturate_instead_of_wrapping() {
        let big = i64::MAX;
        let text = format!("1S\n{big} 1\n{big} 1\n{big} 1\n");
        assert_eq!(used_bytes(&text).unwrap(), u64::MAX);
        // Beyond what a 64-bit delta can be: not a maildirsize.
        assert!(used_bytes("1S\n99999999999999999999 1\n").is_err());
    }

    #[test]
    fn malformed_files_are_errors() {
        for bad in [
            "",
            "\n100 1\n",
            "1S\n100\n",
            "1S\n100 1 7\n",
            "1S\nabc 1\n",
            "1S\n1.5 1\n",
        ] {
            assert!(used_bytes(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_missing_file_is_empty_and_a_broken_one_is_not_full() {
        let dir = tempfile::tempdir().unwrap();
        let maildir = maildir_path(dir.path(), "grove.test", "ana");
        assert!(maildir.ends_with("grove.test/ana/Maildir"));
        let path = maildir.join("maildirsize");
        assert_eq!(read_usage(&path).unwrap(), 0);
        let quota = Quota::parse("1K").unwrap();
        assert!(!is_full(&maildir, &quota));

        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "1024S\n1000 1\n").unwrap();
        assert!(!is_full(&maildir, &quota));
        std::fs::write(&path, "1024S\n1000 1\n24 1\n").unwrap();
        assert!(is_full(&maildir, &quota), "at the quota is full");
        std::fs::write(&path, "1024S\nnot a line\n").unwrap();
        assert!(read_usage(&path).is_err());
        assert!(!is_full(&maildir, &quota));
    }

    #[test]
    fn messages_on_disk_count_in_every_folder_but_not_in_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("Maildir");
        assert_eq!(walk_usage(&maildir).unwrap(), 0, "no maildir yet");
        let put = |rel: &str, bytes: usize| {
            let path = maildir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, vec![b'x'; bytes]).unwrap();
        };
        put("new/1.kumo", 1000);
        put("cur/2.dovecot:2,S", 500);
        put(".Junk/cur/3:2,", 24);
        put("tmp/4.partial", 10_000);
        put("dovecot.index.log", 7_000);
        assert_eq!(walk_usage(&maildir).unwrap(), 1524);
        let quota = Quota::parse("1K").unwrap();
        assert!(
            is_full(&maildir, &quota),
            "1524 bytes on disk, none counted"
        );
        std::fs::write(maildir.join("maildirsize"), "1024S\n20 1\n").unwrap();
        assert!(is_full(&maildir, &quota), "the larger of the two counts");
        let roomy = Quota::parse("2K").unwrap();
        assert!(!is_full(&maildir, &roomy));
        std::fs::write(maildir.join("maildirsize"), "2048S\n2048 9\n").unwrap();
        assert!(is_full(&maildir, &roomy), "Dovecot's own count still binds");
    }
}
