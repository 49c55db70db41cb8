//! Who a message says it is from: the From and Sender headers (RFC 5322
//! §3.6.2), parsed with `mail-parser` and held to the mailbox the SMTP
//! session authenticated as.
//!
//! The rules, each refused with a reason that says what to fix:
//! - exactly one From header (RFC 5322 §3.6 allows one), holding exactly one
//!   mailbox: no address list, no group;
//! - that address is the authenticated mailbox (case-insensitively);
//! - the display name holds nothing that looks like an address;
//! - a Sender header, if there is one, is exactly one address, the mailbox.

use std::borrow::Cow;

use mail_parser::parsers::MessageStream;
use mail_parser::{Address, HeaderValue};

/// A From header value that passed every rule; only [`check`] makes one.
#[derive(Debug, PartialEq, Eq)]
pub struct VerifiedFrom {
    address: String,
}

impl VerifiedFrom {
    pub fn address(&self) -> &str {
        &self.address
    }
}

/// Why the headers do not name the mailbox; the text follows `5.7.1 `.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("the message has no From header; add 'From: {0}'")]
    NoFrom(String),
    #[error("the message has {0} From headers; send exactly one, 'From: {1}'")]
    ManyFrom(usize, String),
    #[error("the message has {0} Sender headers; send at most one, 'Sender: {1}'")]
    ManySender(usize, String),
    #[error("the {0} header must be exactly one address ({1}), not a list, a group or text")]
    NotOne(&'static str, String),
    #[error("the {0} header must be {1}, not {2}")]
    Other(&'static str, String, String),
    #[error(
        "the From header's display name may not contain an address; use a plain name, e.g. 'From: Your Name <{0}>'"
    )]
    AddressInName(String),
}

/// The one address in a header value, with its display name, or `None`
/// when the value is not exactly one mailbox.
fn single(raw: &str) -> Option<(Option<String>, String)> {
    // The parser reads up to the end of the header field (a line break not
    // followed by white space), so the value gets one.
    let mut value = raw.trim_end_matches(['\r', '\n']).to_owned();
    value.push_str("\r\n");
    let mut stream = MessageStream::new(value.as_bytes());
    let parsed = stream.parse_address();
    // A line break that is not folding ends the field early: what follows
    // would be another header smuggled into this one.
    if stream.remaining() > 0 {
        return None;
    }
    let HeaderValue::Address(Address::List(list)) = parsed else {
        return None;
    };
    let [addr] = list.as_slice() else {
        return None;
    };
    let address = addr.address.as_deref().map(str::trim)?;
    // A bare word, a URL or an empty `<>` is not a mailbox.
    let (local, domain) = address.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() || address.chars().any(char::is_whitespace) {
        return None;
    }
    Some((addr.name.as_ref().map(Cow::to_string), address.to_owned()))
}

/// Whether a display name holds something a reader could take for an
/// address. Refused even when that address is the mailbox itself: mail
/// clients often show only the name, and a rule of "no address in the
/// name" cannot be fooled by a look-alike (`me@mine.test` with a
/// zero-width space, a full-width `＠`), where comparing the name with the
/// mailbox could be. The cost to an honest sender is a plain name.
fn looks_like_address(name: &str) -> bool {
    name.chars().any(|c| matches!(c, '@' | '＠' | '﹫'))
}

/// Checks the From and Sender header values (raw, as in the message) of a
/// message sent by the authenticated `mailbox` (lowercase).
pub fn check(
    mailbox: &str,
    from_headers: &[String],
    sender_headers: &[String],
) -> Result<VerifiedFrom, IdentityError> {
    let from = match from_headers {
        [] => return Err(IdentityError::NoFrom(mailbox.to_owned())),
        [one] => one,
        many => return Err(IdentityError::ManyFrom(many.len(), mailbox.to_owned())),
    };
    let (name, address) =
        single(from).ok_or_else(|| IdentityError::NotOne("From", mailbox.to_owned()))?;
    if !address.eq_ignore_ascii_case(mailbox) {
        return Err(IdentityError::Other("From", mailbox.to_owned(), address));
    }
    if name.as_deref().is_some_and(looks_like_address) {
        return Err(IdentityError::AddressInName(mailbox.to_owned()));
    }
    match sender_headers {
        [] => {}
        [one] => {
            let (_, sender) =
                single(one).ok_or_else(|| IdentityError::NotOne("Sender", mailbox.to_owned()))?;
            if !sender.eq_ignore_ascii_case(mailbox) {
                return Err(IdentityError::Other("Sender", mailbox.to_owned(), sender));
            }
        }
        many => return Err(IdentityError::ManySender(many.len(), mailbox.to_owned())),
    }
    Ok(VerifiedFrom {
        address: address.to_ascii_lowercase(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "me@mine.test";

    fn from(values: &[&str]) -> Result<VerifiedFrom, IdentityError> {
        let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        check(ME, &values, &[])
    }

    fn refused(value: &str) -> IdentityError {
        from(&[value]).expect_err(value)
    }

    #[test]
    fn the_mailbox_alone_or_with_a_plain_name_is_accepted() {
        for ok in [
            "me@mine.test",
            " <me@mine.test> ",
            "Me Myself <me@mine.test>",
            "ME@Mine.Test",
            "\"Lovelace, Ada\" <me@mine.test>",
            // RFC 2047 encoded-word display name.
            "=?utf-8?q?J=C3=BCrgen?= <me@mine.test>",
            // A comment is not part of the address (RFC 5322 §3.2.2).
            "me@mine.test (work)",
            // Folded over two lines.
            "Me\r\n <me@mine.test>",
        ] {
            assert_eq!(
                from(&[ok]).map(|v| v.address().to_owned()),
                Ok(ME.into()),
                "{ok}"
            );
        }
    }

    #[test]
    fn another_address_is_refused_however_it_is_dressed() {
        for spoof in [
            "<ceo@bank.example> (<me@mine.test>)",
            "ceo@bank.example",
            "Me <ceo@bank.example>",
            "=?utf-8?q?me=40mine=2Etest?= <ceo@bank.example>",
        ] {
            assert!(
                matches!(refused(spoof), IdentityError::Other("From", _, _)),
                "{spoof}: {:?}",
                refused(spoof)
            );
        }
        assert_eq!(
            refused("\"me@mine.test\" <ceo@bank.example>"),
            IdentityError::Other("From", ME.into(), "ceo@bank.example".into())
        );
    }

    #[test]
    fn lists_groups_and_garbage_are_not_one_address() {
        for bad in [
            "me@mine.test, ceo@bank.example",
            "Team: me@mine.test;",
            "Team: me@mine.test, ceo@bank.example;",
            "",
            "   ",
            "me",
            "<>",
            "<@mine.test>",
            "me@",
            "\u{0}\u{1}<<<>>>",
            "\"unterminated <me@mine.test>",
            "=?utf-8?b?!!!?= ((( ",
            "me@mine.test\r\nBcc: x@y.test",
            // mail-parser reads a quoted local part (RFC 5322 §3.4.1) as a
            // display name before an empty local part; refusing it is the
            // safe reading, and mailbox names never need quoting.
            "\"me\"@mine.test",
            "\"me@mine.test\"@bank.example",
        ] {
            let e = refused(bad);
            assert!(
                matches!(
                    e,
                    IdentityError::NotOne("From", _) | IdentityError::Other(..)
                ),
                "{bad:?}: {e:?}"
            );
        }
    }

    #[test]
    fn a_display_name_may_not_hold_an_address() {
        for name in [
            "\"me@mine.test\" <me@mine.test>",
            "=?utf-8?q?ceo=40bank=2Eexample?= <me@mine.test>",
            "\"ceo＠bank.example\" <me@mine.test>",
            // mail-parser gives a comment as the display name.
            "me@mine.test (<ceo@bank.example>)",
        ] {
            assert_eq!(
                refused(name),
                IdentityError::AddressInName(ME.into()),
                "{name}"
            );
        }
        assert!(
            refused("\"me@mine.test\" <me@mine.test>")
                .to_string()
                .contains("plain name")
        );
    }

    #[test]
    fn exactly_one_from_header() {
        assert_eq!(from(&[]), Err(IdentityError::NoFrom(ME.into())));
        assert_eq!(from(&[ME, ME]), Err(IdentityError::ManyFrom(2, ME.into())));
    }

    #[test]
    fn a_sender_header_must_be_the_mailbox() {
        let me = vec![ME.to_owned()];
        let sender = |v: &[&str]| {
            let v: Vec<String> = v.iter().map(|s| (*s).to_owned()).collect();
            check(ME, &me, &v)
        };
        assert!(sender(&[]).is_ok());
        assert!(sender(&["Me <ME@mine.test>"]).is_ok());
        assert_eq!(
            sender(&["ceo@bank.example"]),
            Err(IdentityError::Other(
                "Sender",
                ME.into(),
                "ceo@bank.example".into()
            ))
        );
        assert_eq!(
            sender(&["me@mine.test, ceo@bank.example"]),
            Err(IdentityError::NotOne("Sender", ME.into()))
        );
        assert_eq!(
            sender(&[ME, ME]),
            Err(IdentityError::ManySender(2, ME.into()))
        );
    }
}
