//! The engine-only marker on warmup mail: a header the engine adds when it
//! submits a message and the policy removes before signing, turned into
//! `warmup: true` by send-check. Its value is a MAC of the Message-ID and
//! the sending mailbox under a key only this appliance holds, so no
//! mailbox owner can pass campaign mail off as warmup to escape its limit.

use crate::vault::Vault;

/// A deliberately plain name: it never leaves the host (the policy strips
/// it), and a name that says "warmup" would only help a filter.
pub const HEADER: &str = "X-Grove-Ref";

const PURPOSE: &str = "warmup-marker";

fn normalise(message_id: &str, sender: &str) -> (String, String) {
    (
        message_id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned(),
        sender.trim().to_ascii_lowercase(),
    )
}

/// The marker for a message `sender` submits with `message_id` (with or
/// without its angle brackets).
pub fn make(vault: &Vault, message_id: &str, sender: &str) -> String {
    let (id, sender) = normalise(message_id, sender);
    hex::encode(vault.mac(PURPOSE, &[id.as_bytes(), sender.as_bytes()]))
}

/// Whether `marker` is the one [`make`] gives; compared in constant time.
pub fn verify(vault: &Vault, message_id: &str, sender: &str, marker: &str) -> bool {
    let expected = make(vault, message_id, sender);
    let given = marker.trim().to_ascii_lowercase();
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_binds_the_message_and_its_sender() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, _) = Vault::load_or_create(dir.path()).unwrap();
        let m = make(&vault, "<abc@d.test>", "Ann@D.test");
        assert!(verify(&vault, "abc@d.test", "ann@d.test", &m));
        assert!(!verify(&vault, "<abd@d.test>", "ann@d.test", &m));
        assert!(!verify(&vault, "<abc@d.test>", "bob@d.test", &m));
        assert!(!verify(&vault, "<abc@d.test>", "ann@d.test", &m[..63]));
        let other_dir = tempfile::tempdir().unwrap();
        let (other, _) = Vault::load_or_create(other_dir.path()).unwrap();
        assert!(
            !verify(&other, "<abc@d.test>", "ann@d.test", &m),
            "another appliance's key"
        );
    }
}
