//! The generated first admin password, when nobody is at a terminal to
//! read it: a server started by systemd prints into the journal, which
//! every member of `adm`/`systemd-journal` may read, and keeps it for
//! months. So without a terminal the password goes to a file only its
//! owner can read, the log says where, and the file is removed when that
//! admin first changes the password.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

const FILE: &str = "initial-admin-password";
const EMAIL_LINE: &str = "email: ";

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// Writes `email` and `password` to the file (mode 0600, replacing one a
/// wiped database left behind) and returns its path.
pub fn write(data_dir: &Path, email: &str, password: &SecretString) -> std::io::Result<PathBuf> {
    let path = path(data_dir);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    writeln!(
        file,
        "{EMAIL_LINE}{email}\npassword: {}",
        password.expose_secret()
    )?;
    file.sync_all()?;
    Ok(path)
}

/// Removes the file if it holds `email`'s first password: that password
/// has just been changed, so the file only holds a stale secret.
pub fn forget(data_dir: &Path, email: &str) {
    let path = path(data_dir);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    let names = text
        .lines()
        .filter_map(|l| l.strip_prefix(EMAIL_LINE))
        .any(|e| e.trim().eq_ignore_ascii_case(email));
    if names && let Err(e) = std::fs::remove_file(&path) {
        tracing::warn!(path = %path.display(), error = %e, "could not remove the initial admin password file");
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn only_its_owner_reads_it_and_only_that_admin_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let secret = SecretString::from("s3cret-generated".to_owned());
        let written = write(dir.path(), "admin@localhost", &secret).unwrap();
        let mode = std::fs::metadata(&written).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            std::fs::read_to_string(&written)
                .unwrap()
                .contains("password: s3cret-generated")
        );
        forget(dir.path(), "someone@else.test");
        assert!(written.exists(), "another user's change keeps it");
        forget(dir.path(), "Admin@Localhost");
        assert!(!written.exists());
        forget(dir.path(), "admin@localhost");
    }
}
