//! Names for new mailboxes (spec: `POST /api/v1/inboxes/bulk`): the
//! username, the person it belongs to, and its password. Pure: the caller
//! passes the usernames already on the domain and the random source.

mod lists;
mod password;
mod person;
mod username;

use std::collections::{HashMap, HashSet};

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::types::{ParseError, name_enum};

pub use lists::{first_names, last_names};
pub use password::{PASSWORD_LEN, generate_password};
pub use person::{PersonName, slug};
pub use username::{ROLE_ADDRESSES, Username};

name_enum!(
    /// How a bulk request names its mailboxes: `random` picks a name and
    /// falls back to other forms of it when taken; `first.last` and `flast`
    /// keep every mailbox in one form; `custom` uses the names given.
    NamingScheme {
        Random => "random",
        FirstDotLast => "first.last",
        FirstInitialLast => "flast",
        Custom => "custom",
    }
);

/// One name a customer asks for: either a person (`{"first_name": "Zoë",
/// "last_name": "O'Brien"}` becomes `zoe.obrien`) or a username as is
/// (`{"username": "zoe"}`). Fields are checked by [`generate`], so a bad
/// entry is reported with its index rather than failing the whole body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "CustomFields")]
pub enum CustomName {
    Person {
        first_name: String,
        last_name: String,
    },
    Username {
        username: String,
    },
}

/// What a custom entry may contain. Read through one struct rather than an
/// untagged enum so that an unknown field or a mix of forms gets a message
/// saying what is wrong instead of "did not match any variant".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomFields {
    first_name: Option<String>,
    last_name: Option<String>,
    username: Option<String>,
}

impl TryFrom<CustomFields> for CustomName {
    type Error = ParseError;
    fn try_from(f: CustomFields) -> Result<Self, ParseError> {
        match (f.first_name, f.last_name, f.username) {
            (Some(first_name), Some(last_name), None) => Ok(Self::Person {
                first_name,
                last_name,
            }),
            (None, None, Some(username)) => Ok(Self::Username { username }),
            _ => Err(ParseError(
                "give either first_name and last_name, or username alone".into(),
            )),
        }
    }
}

/// A mailbox name ready to create: the username and the person shown in
/// the `From:` header and the export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewMailboxName {
    pub username: Username,
    pub first_name: String,
    pub last_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamingError {
    #[error(
        "quantity is {quantity} but {given} custom names were given; set quantity to the number of custom names"
    )]
    QuantityMismatch { quantity: usize, given: usize },
    #[error(
        "custom names were given with naming_scheme \"{scheme}\"; set naming_scheme to \"custom\" or leave the custom names out"
    )]
    CustomNotWanted { scheme: NamingScheme },
    #[error("custom[{index}]: {message}")]
    Invalid { index: usize, message: String },
    #[error(
        "only {created} of {wanted} new mailbox names are free on this domain with this naming scheme; ask for fewer, choose another naming_scheme, or give custom names"
    )]
    Exhausted { created: usize, wanted: usize },
}

/// Names `quantity` new mailboxes. `taken` holds the usernames already on
/// the domain; no result collides with one of them or with another result,
/// ignoring case. All or nothing: on error no names are returned.
pub fn generate(
    scheme: NamingScheme,
    quantity: usize,
    taken: &HashSet<String>,
    custom: &[CustomName],
    rng: &mut impl Rng,
) -> Result<Vec<NewMailboxName>, NamingError> {
    if scheme != NamingScheme::Custom && !custom.is_empty() {
        return Err(NamingError::CustomNotWanted { scheme });
    }
    let forms: &[NameForm] = match scheme {
        NamingScheme::Custom => return from_custom(quantity, taken, custom),
        NamingScheme::Random => &RANDOM_FORMS,
        NamingScheme::FirstDotLast => &[NameForm::FirstDotLast],
        NamingScheme::FirstInitialLast => &[NameForm::FirstInitialLast],
    };
    from_lists(forms, quantity, taken, first_names(), last_names(), rng)
}

/// The ways a username is made from a first and last name.
#[derive(Debug, Clone, Copy)]
enum NameForm {
    FirstDotLast,
    FirstInitialLast,
    First,
    InitialDotLast,
}

/// `random` tries these in order for each drawn name: the most natural
/// address first, then shorter forms people also use.
const RANDOM_FORMS: [NameForm; 4] = [
    NameForm::FirstDotLast,
    NameForm::FirstInitialLast,
    NameForm::First,
    NameForm::InitialDotLast,
];

impl NameForm {
    /// `first` and `last` are slugs: non-empty lower-case ASCII.
    fn render(self, first: &str, last: &str) -> String {
        let initial: String = first.chars().take(1).collect();
        match self {
            Self::FirstDotLast => format!("{first}.{last}"),
            Self::FirstInitialLast => format!("{initial}{last}"),
            Self::First => first.to_owned(),
            Self::InitialDotLast => format!("{initial}.{last}"),
        }
    }
}

/// Draws after which, with no new name found in a row, the namespace is
/// called exhausted. With the shipped lists a miss needs a domain holding a
/// large share of hundreds of thousands of names, so the bound only matters
/// for narrow schemes on crowded domains: there, a namespace with even 0.5%
/// of it free is found with probability above 0.9999.
const MAX_MISSES_IN_A_ROW: usize = 2_000;

/// Draws names from `firsts` × `lasts`; takes the lists as parameters so
/// tests can shrink the namespace until it runs out.
fn from_lists(
    forms: &[NameForm],
    quantity: usize,
    taken: &HashSet<String>,
    firsts: &[&str],
    lasts: &[&str],
    rng: &mut impl Rng,
) -> Result<Vec<NewMailboxName>, NamingError> {
    let mut used = lower_cased(taken);
    let mut names = Vec::with_capacity(quantity);
    let mut misses = 0;
    while names.len() < quantity && misses < MAX_MISSES_IN_A_ROW {
        let (Some(first), Some(last)) = (firsts.choose(rng), lasts.choose(rng)) else {
            break;
        };
        match first_free_form(forms, first, last, &used) {
            Some(username) => {
                used.insert(username.as_str().to_owned());
                names.push(NewMailboxName {
                    username,
                    first_name: (*first).to_owned(),
                    last_name: (*last).to_owned(),
                });
                misses = 0;
            }
            None => misses += 1,
        }
    }
    if names.len() < quantity {
        return Err(NamingError::Exhausted {
            created: names.len(),
            wanted: quantity,
        });
    }
    Ok(names)
}

fn first_free_form(
    forms: &[NameForm],
    first: &str,
    last: &str,
    used: &HashSet<String>,
) -> Option<Username> {
    let (first, last) = (slug(first).ok()?, slug(last).ok()?);
    forms.iter().find_map(|form| {
        let candidate = form.render(&first, &last);
        if used.contains(&candidate) || lists::is_unfortunate(&candidate) {
            return None;
        }
        // Refuses role addresses, so a list name can never yield one.
        Username::parse(&candidate).ok()
    })
}

fn from_custom(
    quantity: usize,
    taken: &HashSet<String>,
    custom: &[CustomName],
) -> Result<Vec<NewMailboxName>, NamingError> {
    if quantity != custom.len() {
        return Err(NamingError::QuantityMismatch {
            quantity,
            given: custom.len(),
        });
    }
    let taken = lower_cased(taken);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut names = Vec::with_capacity(custom.len());
    for (index, entry) in custom.iter().enumerate() {
        let invalid = |message: String| NamingError::Invalid { index, message };
        let name = entry.resolve().map_err(|e| invalid(e.0))?;
        let username = name.username.as_str();
        if taken.contains(username) {
            return Err(invalid(format!(
                "'{username}' is already a mailbox on this domain; choose another name"
            )));
        }
        if let Some(earlier) = seen.insert(username.to_owned(), index) {
            return Err(invalid(format!(
                "'{username}' is also custom[{earlier}]; each mailbox needs its own username"
            )));
        }
        names.push(name);
    }
    Ok(names)
}

impl CustomName {
    fn resolve(&self) -> Result<NewMailboxName, ParseError> {
        match self {
            Self::Person {
                first_name,
                last_name,
            } => {
                let person = PersonName::parse(first_name, last_name)?;
                let candidate = format!(
                    "{}.{}",
                    slug(person.first_name())?,
                    slug(person.last_name())?
                );
                let username = Username::parse(&candidate).map_err(|e| {
                    ParseError(format!(
                        "cannot make a username from this name ({}); give a username instead",
                        e.0
                    ))
                })?;
                Ok(NewMailboxName {
                    username,
                    first_name: person.first_name().to_owned(),
                    last_name: person.last_name().to_owned(),
                })
            }
            Self::Username { username } => {
                let username = Username::parse(username)?;
                let (first_name, last_name) = names_from_username(&username);
                Ok(NewMailboxName {
                    username,
                    first_name,
                    last_name,
                })
            }
        }
    }
}

/// `john.smith` → ("John", "Smith"); a username without a dot becomes the
/// first name alone, since guessing where a surname starts would be wrong
/// more often than right.
fn names_from_username(username: &Username) -> (String, String) {
    let mut parts = username.as_str().split('.').map(capitalise);
    let first = parts.next().unwrap_or_default();
    let last = parts.collect::<Vec<_>>().join(" ");
    (first, last)
}

/// Upper-cases the first letter of each hyphenated part: `mary-jane` →
/// `Mary-Jane`. Usernames are ASCII.
fn capitalise(word: &str) -> String {
    word.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn lower_cased(taken: &HashSet<String>) -> HashSet<String> {
    taken.iter().map(|t| t.to_ascii_lowercase()).collect()
}

#[cfg(test)]
mod tests;
