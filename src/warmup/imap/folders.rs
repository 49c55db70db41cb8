//! What a folder's name and attributes say about mail found in it, where
//! new folders go, and the caller's names checked before they reach a
//! command line.

use async_imap::types::NameAttribute;

use super::ImapError;
use crate::warmup::Placement;

/// Names of spam folders on servers without RFC 6154 special-use
/// attributes (Outlook's "Junk E-mail", Yahoo's "Bulk Mail"), compared
/// case-insensitively with the last component of a folder's name.
const SPAM_NAMES: [&str; 5] = ["junk", "spam", "junk e-mail", "junk email", "bulk mail"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Inbox,
    Spam,
    Other,
    /// Not searched: \Noselect, virtual folders holding copies (\All,
    /// \Flagged, Gmail's \Important) and folders where a copy is no
    /// placement (\Sent, \Drafts, \Trash).
    Skip,
}

/// The folders of one mailbox as LIST "" "*" told them.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    folders: Vec<(String, Kind)>,
    delimiter: Option<String>,
    /// Where new folders go: `INBOX.` when every folder sits under INBOX.
    prefix: String,
}

impl Layout {
    /// From each folder's (name, delimiter, attributes).
    pub(super) fn new(
        names: impl Iterator<Item = (String, Option<String>, Vec<NameAttribute<'static>>)>,
    ) -> Self {
        let mut folders = Vec::new();
        let mut delimiter = None;
        for (name, delim, attributes) in names {
            if delimiter.is_none() {
                delimiter = delim.clone();
            }
            let kind = kind(&name, delim.as_deref(), &attributes);
            folders.push((name, kind));
        }
        // NAMESPACE (RFC 2342) would say this, but async-imap 0.12 cannot
        // parse its answer (imap-proto has no parser for it, and a response
        // it cannot parse wedges the stream). Where every folder but INBOX
        // is under INBOX<delimiter> (Dovecot's `prefix = INBOX.`, Courier),
        // new folders go there too.
        let prefix = match &delimiter {
            Some(d) => {
                let under = format!("INBOX{d}");
                let others: Vec<&String> = folders
                    .iter()
                    .map(|(n, _)| n)
                    .filter(|n| !n.eq_ignore_ascii_case("INBOX"))
                    .collect();
                if !others.is_empty() && others.iter().all(|n| n.starts_with(&under)) {
                    under
                } else {
                    String::new()
                }
            }
            None => String::new(),
        };
        Self {
            folders,
            delimiter,
            prefix,
        }
    }

    /// The folders to search, INBOX first, then spam, then the rest.
    pub(super) fn search_order(&self) -> Vec<(&str, Placement)> {
        let mut out = Vec::new();
        for (want, placement) in [
            (Kind::Inbox, Placement::Inbox),
            (Kind::Spam, Placement::Spam),
            (Kind::Other, Placement::Other),
        ] {
            out.extend(
                self.folders
                    .iter()
                    .filter(|(_, k)| *k == want)
                    .map(|(n, _)| (n.as_str(), placement)),
            );
        }
        out
    }

    /// The full name of the caller's folder `name` if it exists, as given
    /// or under the prefix.
    pub(super) fn existing(&self, name: &str) -> Option<String> {
        if name.eq_ignore_ascii_case("INBOX") {
            return Some("INBOX".into());
        }
        let prefixed = format!("{}{name}", self.prefix);
        self.folders
            .iter()
            .map(|(n, _)| n)
            .find(|n| **n == prefixed || *n == name)
            .cloned()
    }

    /// The names to try creating `name` as, in order: under the prefix;
    /// where the list told nothing (a mailbox with INBOX alone), also under
    /// INBOX.
    pub(super) fn candidates(&self, name: &str) -> Vec<String> {
        let mut out = vec![format!("{}{name}", self.prefix)];
        if let (true, Some(d)) = (self.prefix.is_empty(), &self.delimiter) {
            out.push(format!("INBOX{d}{name}"));
        }
        out
    }
}

fn kind(name: &str, delimiter: Option<&str>, attributes: &[NameAttribute<'_>]) -> Kind {
    let skip = attributes.iter().any(|a| match a {
        NameAttribute::NoSelect
        | NameAttribute::All
        | NameAttribute::Flagged
        | NameAttribute::Sent
        | NameAttribute::Drafts
        | NameAttribute::Trash => true,
        NameAttribute::Extension(e) => {
            e.eq_ignore_ascii_case("\\Important") || e.eq_ignore_ascii_case("\\NonExistent")
        }
        _ => false,
    });
    if skip {
        return Kind::Skip;
    }
    if name.eq_ignore_ascii_case("INBOX") {
        return Kind::Inbox;
    }
    let last = match delimiter {
        Some(d) if !d.is_empty() => name.rsplit(d).next().unwrap_or(name),
        _ => name,
    };
    if attributes.iter().any(|a| matches!(a, NameAttribute::Junk))
        || SPAM_NAMES.iter().any(|s| last.eq_ignore_ascii_case(s))
    {
        Kind::Spam
    } else {
        Kind::Other
    }
}

/// A Message-ID (RFC 5322 §3.6.4 `msg-id`), with or without its angle
/// brackets, as the id without them; refused if it could not be quoted
/// in a SEARCH or would match more than itself.
pub(super) fn message_id(raw: &str) -> Result<String, ImapError> {
    let trimmed = raw.trim();
    let id = trimmed
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(trimmed);
    let ok = !id.is_empty()
        && id.contains('@')
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\\'));
    if ok {
        Ok(id.to_owned())
    } else {
        Err(ImapError::Invalid(format!(
            "{raw:?} is not a Message-ID (id-left@id-right)"
        )))
    }
}

/// A folder name of the caller's (such as "Warmup"): printable ASCII, so
/// it needs no modified UTF-7 (RFC 3501 §5.1.3), and no wildcard.
pub(super) fn folder_name(raw: &str) -> Result<String, ImapError> {
    let ok = !raw.is_empty()
        && raw.len() <= 200
        && raw
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && !matches!(b, b'"' | b'\\' | b'*' | b'%' | b'&'));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(ImapError::Invalid(format!(
            "{raw:?} is not a folder name (printable ASCII without \" \\ * % &)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(folders: &[(&str, Vec<NameAttribute<'static>>)]) -> Layout {
        Layout::new(
            folders
                .iter()
                .map(|(n, a)| (n.to_string(), Some(".".to_owned()), a.clone())),
        )
    }

    #[test]
    fn folders_are_told_by_attribute_then_by_name() {
        let l = layout(&[
            ("Archive", vec![NameAttribute::Archive]),
            ("INBOX", vec![]),
            ("Trash", vec![NameAttribute::Trash]),
            ("Courrier indésirable", vec![NameAttribute::Junk]),
            ("Bulk Mail", vec![]),
            ("[Gmail]", vec![NameAttribute::NoSelect]),
            ("[Gmail].All Mail", vec![NameAttribute::All]),
            ("Sent", vec![NameAttribute::Sent]),
        ]);
        assert_eq!(
            l.search_order(),
            vec![
                ("INBOX", Placement::Inbox),
                ("Courrier indésirable", Placement::Spam),
                ("Bulk Mail", Placement::Spam),
                ("Archive", Placement::Other),
            ]
        );
        assert_eq!(l.existing("inbox").as_deref(), Some("INBOX"));
        assert_eq!(l.existing("Warmup"), None);
        assert_eq!(l.candidates("Warmup"), ["Warmup", "INBOX.Warmup"]);
    }

    #[test]
    fn new_folders_go_under_inbox_where_the_others_are() {
        let l = layout(&[
            ("INBOX", vec![]),
            ("INBOX.Junk", vec![]),
            ("INBOX.Sent", vec![NameAttribute::Sent]),
        ]);
        assert_eq!(l.candidates("Warmup"), ["INBOX.Warmup"]);
        assert_eq!(l.search_order()[1], ("INBOX.Junk", Placement::Spam));
        let l = layout(&[("INBOX", vec![]), ("INBOX.Warmup", vec![])]);
        assert_eq!(l.existing("Warmup").as_deref(), Some("INBOX.Warmup"));
    }

    #[test]
    fn ids_and_folder_names_are_checked() {
        assert_eq!(message_id("<a.1@example.com>").unwrap(), "a.1@example.com");
        assert_eq!(message_id(" a.1@example.com ").unwrap(), "a.1@example.com");
        for bad in ["", "<>", "no-at", "<a\"b@c>", "<a b@c>", "<a@b>\r\nX"] {
            assert!(message_id(bad).is_err(), "{bad:?}");
        }
        assert!(folder_name("Warmup").is_ok());
        for bad in ["", "a\"b", "Warm*", "Wärme", "a\r\nb"] {
            assert!(folder_name(bad).is_err(), "{bad:?}");
        }
    }
}
