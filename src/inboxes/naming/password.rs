//! Passwords for generated mailboxes. Nobody types them: they go out once in
//! the credentials CSV and into a sequencer, so they are long and random
//! rather than memorable.

use rand::seq::SliceRandom;
use rand::{CryptoRng, Rng, RngCore};
use secrecy::SecretString;

/// 24 characters from 71 symbols is about 147 bits, beyond any guessing,
/// and still fits every sequencer's password field.
pub const PASSWORD_LEN: usize = 24;

const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const DIGITS: &[u8] = b"0123456789";
/// No `"` `\` (JSON escapes), `,` `"` (CSV quoting), `'` `` ` `` `$` `&`
/// `;` `|` `<` `>` `(` `)` or space (shell), and no `!`, which bash expands
/// from history even inside double quotes. SMTP AUTH carries the password
/// base64-encoded (RFC 4954 §4), so any of these is fine on the wire.
const SYMBOLS: &[u8] = b"@#%^*-_=+";

/// A random password of [`PASSWORD_LEN`] characters with at least one upper-
/// case letter, lower-case letter, digit and symbol, for providers and
/// sequencers that insist on each class. The first character is always a
/// letter: a CSV cell starting with `=`, `+`, `-` or `@` is run as a formula
/// by spreadsheet programs (OWASP "CSV Injection"), and a leading `-` reads
/// as a command-line option.
///
/// Callers pass `rand::rngs::OsRng`; tests pass a seeded `StdRng`.
pub fn generate_password(rng: &mut (impl RngCore + CryptoRng)) -> SecretString {
    let all: Vec<u8> = [UPPER, LOWER, DIGITS, SYMBOLS].concat();
    let letters: Vec<u8> = [UPPER, LOWER].concat();

    let mut rest: Vec<char> = [UPPER, LOWER, DIGITS, SYMBOLS]
        .iter()
        .map(|set| pick(rng, set))
        .collect();
    while rest.len() < PASSWORD_LEN - 1 {
        rest.push(pick(rng, &all));
    }
    rest.shuffle(rng);

    let mut password = String::with_capacity(PASSWORD_LEN);
    password.push(pick(rng, &letters));
    password.extend(rest);
    SecretString::from(password)
}

fn pick(rng: &mut impl RngCore, set: &[u8]) -> char {
    char::from(set[rng.gen_range(0..set.len())])
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use secrecy::ExposeSecret;

    use super::*;

    fn sample(n: usize) -> Vec<String> {
        let mut rng = StdRng::seed_from_u64(7);
        (0..n)
            .map(|_| generate_password(&mut rng).expose_secret().to_owned())
            .collect()
    }

    #[test]
    fn every_password_has_each_class_and_a_letter_first() {
        for p in sample(1000) {
            assert!(p.len() >= 20, "{p}");
            assert_eq!(p.chars().count(), PASSWORD_LEN);
            for set in [UPPER, LOWER, DIGITS, SYMBOLS] {
                assert!(
                    p.bytes().any(|b| set.contains(&b)),
                    "{p} lacks one of {set:?}"
                );
            }
            assert!(p.bytes().all(|b| {
                [UPPER, LOWER, DIGITS, SYMBOLS]
                    .iter()
                    .any(|s| s.contains(&b))
            }));
            assert!(p.starts_with(|c: char| c.is_ascii_alphabetic()), "{p}");
        }
    }

    #[test]
    fn passwords_use_the_whole_alphabet_and_do_not_repeat() {
        let passwords = sample(1000);
        let distinct: HashSet<_> = passwords.iter().collect();
        assert_eq!(distinct.len(), passwords.len());
        let seen: HashSet<u8> = passwords.iter().flat_map(|p| p.bytes()).collect();
        for set in [UPPER, LOWER, DIGITS, SYMBOLS] {
            for b in set {
                assert!(seen.contains(b), "{} never appears", char::from(*b));
            }
        }
    }

    #[test]
    fn the_class_guarantee_is_not_always_in_the_same_place() {
        // Shuffled: the guaranteed symbol is not pinned to one position.
        let positions: HashSet<usize> = sample(200)
            .iter()
            .filter_map(|p| p.bytes().position(|b| SYMBOLS.contains(&b)))
            .collect();
        assert!(positions.len() > 5, "{positions:?}");
    }
}
