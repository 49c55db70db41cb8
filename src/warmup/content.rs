//! The warmup messages themselves (issue 14 point 5): plain text only, no
//! links, images, tracking pixel, HTML or attachments, so placement
//! reflects the sender's reputation and not its content (MailReach's
//! practice, reference §1.5). Each is recombined from the embedded corpus
//! under `content/` in the sender's and recipient's names; `used` holds the
//! day's fingerprints so no subject or body repeats within the day.
//!
//! The message is built with lettre, which the engine submits it with:
//! RFC 2047 encoded words and quoting of display names, folded headers,
//! CRLF line endings, and 7bit or quoted-printable bodies (RFC 2045 §6.7).

use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, Message, SinglePart};
use mail_parser::{HeaderValue as Parsed, MessageParser};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::marker;
use crate::vault::Vault;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0:?} is not a mail address")]
    Address(String),
    #[error("the message could not be built: {0}")]
    Build(String),
}

/// A sender or recipient as the message names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone)]
pub struct Composed {
    /// With its angle brackets.
    pub message_id: String,
    pub subject: String,
    /// The text as written, `\n` line endings and none at the end, before
    /// any transfer encoding.
    pub body: String,
    /// The whole message, RFC 5322 with CRLF line endings.
    pub raw: Vec<u8>,
}

/// The message a reply answers, as the receiving side fetched it.
#[derive(Debug, Clone, Copy)]
pub struct Original<'a> {
    pub message_id: &'a str,
    pub subject: &'a str,
    pub from: &'a Party,
    pub date: DateTime<Utc>,
    pub body: &'a str,
    pub references: Option<&'a str>,
}

/// Body text is wrapped here, leaving room for a few levels of `> `
/// within RFC 5322 §2.1.1's 78 characters.
const WIDTH: usize = 72;

/// Draws before a subject or body that was already used today is let
/// through: the corpus recombines into far more than a day needs, but a
/// `used` set shared by many senders must not loop forever.
const MAX_TRIES: usize = 64;

struct Corpus {
    subjects: Vec<&'static str>,
    topics: Vec<&'static str>,
    greetings: Vec<&'static str>,
    openers: Vec<&'static str>,
    paragraphs: Vec<&'static str>,
    closers: Vec<&'static str>,
    signoffs: Vec<&'static str>,
    reply_openers: Vec<&'static str>,
}

/// The non-blank lines of a corpus file that are not `#` comments.
fn lines(text: &'static str) -> Vec<&'static str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

static CORPUS: LazyLock<Corpus> = LazyLock::new(|| Corpus {
    subjects: lines(include_str!("content/subjects.txt")),
    topics: lines(include_str!("content/topics.txt")),
    greetings: lines(include_str!("content/greetings.txt")),
    openers: lines(include_str!("content/openers.txt")),
    paragraphs: lines(include_str!("content/paragraphs.txt")),
    closers: lines(include_str!("content/closers.txt")),
    signoffs: lines(include_str!("content/signoffs.txt")),
    reply_openers: lines(include_str!("content/reply_openers.txt")),
});

fn one(rng: &mut StdRng, from: &[&'static str]) -> &'static str {
    from.choose(rng).copied().unwrap_or_default()
}

/// A new message from `from` to `to`, its subject ending in the owner's
/// warmup `tag`, carrying the engine's `marker` header when given.
pub fn compose(
    from: &Party,
    to: &Party,
    tag: &str,
    date: DateTime<Utc>,
    marker: Option<&str>,
    used: &mut HashSet<u64>,
    rng: &mut StdRng,
) -> Result<Composed, Error> {
    let c = &*CORPUS;
    let subject = fresh(used, "subject", rng, |rng| {
        one(rng, &c.subjects).replace("{topic}", one(rng, &c.topics))
    });
    let body = fresh(used, "body", rng, |rng| {
        let mut paragraphs = c.paragraphs.choose_multiple(rng, 2);
        let mut text = format!(
            "{} {}",
            one(rng, &c.openers),
            paragraphs.next().unwrap_or(&"")
        );
        if let Some(second) = paragraphs.next().filter(|_| rng.gen_bool(0.6)) {
            text = format!("{text}\n\n{second}");
        }
        letter(
            Some(greeting(to, rng)),
            &text,
            one(rng, &c.closers),
            from,
            rng,
        )
    });
    let subject = format!("{subject} | {}", tag.trim());
    build(from, to, &subject, date, marker, None, body, rng)
}

/// A reply in thread to `original` (RFC 5322 §3.6.4), quoting its body.
pub fn reply(
    original: &Original<'_>,
    from: &Party,
    to: &Party,
    date: DateTime<Utc>,
    marker: Option<&str>,
    used: &mut HashSet<u64>,
    rng: &mut StdRng,
) -> Result<Composed, Error> {
    let c = &*CORPUS;
    let text = fresh(used, "body", rng, |rng| {
        let greet = rng.gen_bool(0.5).then(|| greeting(to, rng));
        let mut text = one(rng, &c.reply_openers).to_owned();
        if rng.gen_bool(0.7) {
            text = format!("{text} {}", one(rng, &c.paragraphs));
        }
        let closer = if rng.gen_bool(0.6) {
            one(rng, &c.closers)
        } else {
            ""
        };
        letter(greet, &text, closer, from, rng)
    });
    let parent = bracketed(original.message_id);
    let references = match original.references.map(str::trim) {
        Some(r) if !r.is_empty() => format!("{r} {parent}"),
        _ => parent.clone(),
    };
    let body = format!(
        "{text}\n\nOn {}, {} wrote:\n{}",
        original.date.format("%a, %-d %b %Y at %H:%M"),
        display_name(original.from),
        quote(original.body)
    );
    let subject = reply_subject(original.subject);
    build(
        from,
        to,
        &subject,
        date,
        marker,
        Some((parent, references)),
        body,
        rng,
    )
}

/// `Re: ` and the original subject (its tag kept as it is), never
/// `Re: Re:`.
fn reply_subject(original: &str) -> String {
    let mut rest = original.trim();
    while let Some(s) = rest.get(..3).filter(|p| p.eq_ignore_ascii_case("re:")) {
        rest = rest[s.len()..].trim_start();
    }
    format!("Re: {rest}")
}

/// A draw from `make` whose fingerprint `used` does not hold yet (or the
/// last draw after [`MAX_TRIES`]), remembered in `used`.
fn fresh(
    used: &mut HashSet<u64>,
    kind: &str,
    rng: &mut StdRng,
    mut make: impl FnMut(&mut StdRng) -> String,
) -> String {
    let mut text = make(rng);
    for _ in 1..MAX_TRIES {
        if !used.contains(&fingerprint(kind, &text)) {
            break;
        }
        text = make(rng);
    }
    used.insert(fingerprint(kind, &text));
    text
}

/// Stable across builds (SHA-256, not the std hasher), so a caller may
/// keep fingerprints beyond one process.
fn fingerprint(kind: &str, text: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update(kind)
        .chain_update([0])
        .chain_update(text)
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

fn display_name(p: &Party) -> &str {
    let name = p.name.trim();
    if name.is_empty() {
        p.email.trim()
    } else {
        name
    }
}

/// "Hi Ann," by the first given name ("Lee, Ann" is Ann), or "Hello,".
fn greeting(to: &Party, rng: &mut StdRng) -> String {
    let given = to.name.split_once(',').map_or(to.name.as_str(), |(_, g)| g);
    let first = given
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .find(|w| !w.is_empty());
    match first {
        Some(first) => format!("{} {first},", one(rng, &CORPUS.greetings)),
        None => "Hello,".to_owned(),
    }
}

/// Greeting, the text's paragraphs, a closer, and a sign-off over the
/// sender's name, each wrapped to [`WIDTH`].
fn letter(
    greeting: Option<String>,
    text: &str,
    closer: &str,
    from: &Party,
    rng: &mut StdRng,
) -> String {
    let mut parts: Vec<String> = greeting.into_iter().collect();
    parts.extend(text.split("\n\n").map(|p| wrap(p, WIDTH, "")));
    if !closer.is_empty() {
        parts.push(wrap(closer, WIDTH, ""));
    }
    parts.push(format!(
        "{}\n{}",
        one(rng, &CORPUS.signoffs),
        display_name(from)
    ));
    parts.join("\n\n")
}

/// Greedy word wrap to `width` characters, each line led by `prefix`; a
/// word longer than a line stays whole.
fn wrap(text: &str, width: usize, prefix: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::from(prefix);
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if len > prefix.chars().count() && len + 1 + word.chars().count() > width {
            lines.push(std::mem::replace(&mut line, String::from(prefix)));
        }
        if line.chars().count() > prefix.chars().count() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines.join("\n")
}

/// The original's lines behind `> `, an old quote one level deeper, long
/// lines wrapped under the same prefix.
fn quote(body: &str) -> String {
    body.trim_end()
        .lines()
        .map(|line| {
            let line = line.trim_end();
            let inner = line.trim_start_matches(['>', ' ']);
            let depth = line.len() - inner.len();
            let prefix = format!("> {}", &line[..depth]);
            let prefix = if prefix.ends_with(' ') {
                prefix
            } else {
                format!("{prefix} ")
            };
            if inner.is_empty() {
                prefix.trim_end().to_owned()
            } else {
                wrap(inner, WIDTH + 4, &prefix)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn bracketed(id: &str) -> String {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    format!("<{id}>")
}

fn mailbox(p: &Party) -> Result<Mailbox, Error> {
    let email = p.email.trim();
    let address = email
        .parse()
        .map_err(|_| Error::Address(email.to_owned()))?;
    let name = p.name.trim();
    Ok(Mailbox::new(
        (!name.is_empty()).then(|| name.to_owned()),
        address,
    ))
}

#[allow(clippy::too_many_arguments)]
fn build(
    from: &Party,
    to: &Party,
    subject: &str,
    date: DateTime<Utc>,
    marker: Option<&str>,
    thread: Option<(String, String)>,
    body: String,
    rng: &mut StdRng,
) -> Result<Composed, Error> {
    let sender = mailbox(from)?;
    let recipient = mailbox(to)?;
    let domain = sender.email.domain().to_ascii_lowercase();
    // From the seeded rng, so a test reproduces it; a v4 uuid all the same.
    let id = uuid::Builder::from_random_bytes(rng.r#gen()).into_uuid();
    let message_id = format!("<{}@{domain}>", id.simple());
    let mut builder = Message::builder()
        .from(sender)
        .to(recipient)
        .date(SystemTime::from(date))
        .subject(subject)
        .message_id(Some(message_id.clone()));
    if let Some((parent, references)) = thread {
        builder = builder.in_reply_to(parent).references(references);
    }
    if let Some(marker) = marker {
        let name = HeaderName::new_from_ascii_str(marker::HEADER);
        builder = builder.raw_header(HeaderValue::new(name, marker.trim().to_owned()));
    }
    let encoded = if body.is_ascii() {
        Body::new(body.clone())
    } else {
        Body::new_with_encoding(body.clone(), ContentTransferEncoding::QuotedPrintable)
            .map_err(|_| Error::Build("quoted-printable refused the body".to_owned()))?
    };
    let message = builder
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(encoded),
        )
        .map_err(|e| Error::Build(e.to_string()))?;
    Ok(Composed {
        message_id,
        subject: subject.to_owned(),
        body,
        raw: message.formatted(),
    })
}

/// The owner's warmup tag: 7 characters A–Z0–9 from a MAC of the user id,
/// stable for a user and unguessable for anyone without the vault.
pub fn tag_for(vault: &Vault, user: Uuid) -> String {
    const ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    vault.mac("warmup-tag", &[user.as_bytes()])[..7]
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// The plain-text body of a fetched message, decoded, with `\n` line
/// endings and none at the end, for quoting.
pub fn parse_body(raw: &[u8]) -> Option<String> {
    let message = MessageParser::default().parse(raw)?;
    let text = message.body_text(0)?;
    Some(text.replace("\r\n", "\n").trim_end_matches('\n').to_owned())
}

/// The ids a reply to this message continues its References with: its
/// References, or failing that its In-Reply-To (RFC 5322 §3.6.4), each in
/// angle brackets, space-separated.
pub fn parse_references(raw: &[u8]) -> Option<String> {
    let message = MessageParser::default().parse(raw)?;
    let ids = |v: &Parsed<'_>| -> Option<String> {
        let list = v.as_text_list()?;
        let ids: Vec<String> = list.iter().map(|id| bracketed(id)).collect();
        (!ids.is_empty()).then(|| ids.join(" "))
    };
    ids(message.references()).or_else(|| ids(message.in_reply_to()))
}

#[cfg(test)]
mod tests;
