//! A person's name as shown in mail clients and sequencer exports, and the
//! ASCII slug a username is built from.

use crate::types::ParseError;

/// A given name and surname as a person writes them, e.g. `Zoë` and
/// `O'Brien`. Only letters (any script), spaces, apostrophes and hyphens are
/// accepted, so the name is safe to put in a `From:` display name and a CSV
/// cell without quoting rules of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName {
    first_name: String,
    last_name: String,
}

const MAX_CHARS: usize = 64;

impl PersonName {
    pub fn parse(first: &str, last: &str) -> Result<Self, ParseError> {
        Ok(Self {
            first_name: name_part("first_name", first)?,
            last_name: name_part("last_name", last)?,
        })
    }

    pub fn first_name(&self) -> &str {
        &self.first_name
    }

    pub fn last_name(&self) -> &str {
        &self.last_name
    }
}

fn name_part(field: &str, raw: &str) -> Result<String, ParseError> {
    // Runs of spaces are collapsed: "Mary  Jane" is the same name.
    let s = raw
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let s = s.trim();
    let len = s.chars().count();
    if len == 0 || len > MAX_CHARS {
        return Err(ParseError(format!(
            "{field} must be 1 to {MAX_CHARS} characters, like \"Smith\""
        )));
    }
    if let Some(bad) = s.chars().find(|&c| !is_name_char(c)) {
        return Err(ParseError(format!(
            "{field} '{s}' contains {bad:?}; use only letters, spaces, apostrophes and hyphens"
        )));
    }
    if !s.chars().any(char::is_alphabetic) {
        return Err(ParseError(format!(
            "{field} '{s}' has no letters; give a name like \"Smith\""
        )));
    }
    Ok(s.to_owned())
}

fn is_name_char(c: char) -> bool {
    c.is_alphabetic()
        || matches!(c, ' ' | '\'' | '’' | '-')
        // Combining diacritics: macOS and some forms send "é" decomposed
        // (NFD) as "e" followed by U+0301; it is still a letter to a person.
        || ('\u{0300}'..='\u{036F}').contains(&c)
}

/// The lower-case ASCII form of one name part for a username: diacritics are
/// stripped (`Zoë` → `zoe`, `Łukasz` → `lukasz`, `Straße` → `strasse`) and
/// apostrophes, spaces and hyphens dropped (`O'Brien` → `obrien`,
/// `Mary-Jane` → `maryjane`). Letters with no ASCII spelling here (Greek,
/// Cyrillic, CJK…) are dropped too; when nothing is left the name cannot
/// make a username and the caller has to ask for one.
pub fn slug(name_part: &str) -> Result<String, ParseError> {
    let mut out = String::with_capacity(name_part.len());
    for c in name_part.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if let Some(ascii) = transliterate(c) {
            out.push_str(ascii);
        }
    }
    if out.is_empty() {
        return Err(ParseError(format!(
            "'{}' has no letters that can be spelled in ASCII for a username; give a username instead",
            name_part.trim()
        )));
    }
    Ok(out)
}

/// ASCII spellings of the lower-case letters of Latin-1 Supplement and
/// Latin Extended-A (U+00C0–U+017F), plus the Romanian comma-below letters,
/// which cover the names of Western, Northern and Central Europe.
fn transliterate(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'ð' | 'ď' | 'đ' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'ĥ' | 'ħ' => "h",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'ĳ' => "ij",
        'ĵ' => "j",
        'ķ' | 'ĸ' => "k",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'ñ' | 'ń' | 'ņ' | 'ň' | 'ŉ' | 'ŋ' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => "o",
        'œ' => "oe",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'ś' | 'ŝ' | 'ş' | 'š' | 'ș' | 'ſ' => "s",
        'ß' => "ss",
        'ţ' | 'ť' | 'ŧ' | 'ț' => "t",
        'þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'ŵ' => "w",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_trims_and_keeps_the_written_form() {
        let n = PersonName::parse("  Zoë ", "O'Brien-Smith").unwrap();
        assert_eq!(n.first_name(), "Zoë");
        assert_eq!(n.last_name(), "O'Brien-Smith");
        let n = PersonName::parse("Mary  Jane", "van der Berg").unwrap();
        assert_eq!(n.first_name(), "Mary Jane");
        assert!(PersonName::parse("Ελένη", "Παπαδοπούλου").is_ok());
        // "é" sent decomposed (NFD).
        assert!(PersonName::parse("Rene\u{0301}", "Dupont").is_ok());
    }

    #[test]
    fn parse_refuses_what_is_not_a_name() {
        let long = "a".repeat(65);
        for (first, last, hint) in [
            ("", "Smith", "first_name must be 1 to 64"),
            ("John", "   ", "last_name must be 1 to 64"),
            (long.as_str(), "Smith", "first_name must be 1 to 64"),
            ("J0hn", "Smith", "'0'"),
            ("John", "Smith, Jr.", "','"),
            ("John", "a@b", "'@'"),
            ("John\tPaul", "Smith", "'\\t'"),
            ("John", "'-'", "no letters"),
        ] {
            let err = PersonName::parse(first, last).unwrap_err().0;
            assert!(err.contains(hint), "{first:?} {last:?}: {err}");
        }
        assert!(PersonName::parse(&"é".repeat(64), "Smith").is_ok());
    }

    #[test]
    fn slug_strips_diacritics_and_joins_parts() {
        for (raw, want) in [
            ("John", "john"),
            ("O'Brien", "obrien"),
            ("O’Brien", "obrien"),
            ("Mary-Jane", "maryjane"),
            ("van der Berg", "vanderberg"),
            ("Zoë", "zoe"),
            ("José", "jose"),
            ("Muñoz", "munoz"),
            ("Straße", "strasse"),
            ("Søren", "soren"),
            ("Åsa", "asa"),
            ("Æbelø", "aebelo"),
            ("Łukasz", "lukasz"),
            ("Dvořák", "dvorak"),
            ("Şahin", "sahin"),
            ("Ștefan", "stefan"),
            ("Þór", "thor"),
            ("Œdipe", "oedipe"),
            ("İlker", "ilker"),
            ("Rene\u{0301}", "rene"),
            ("Ελένη Smith", "smith"),
        ] {
            assert_eq!(slug(raw).unwrap(), want, "{raw}");
        }
    }

    #[test]
    fn slug_covers_every_latin1_and_extended_a_letter() {
        for c in ('\u{00C0}'..='\u{017F}').filter(|c| c.is_alphabetic()) {
            let s = slug(&c.to_string()).unwrap_or_else(|e| panic!("{c:?}: {e}"));
            assert!(s.chars().all(|c| c.is_ascii_lowercase()), "{c:?} → {s}");
        }
    }

    #[test]
    fn slug_of_no_ascii_letters_is_an_error_that_says_what_to_do() {
        for raw in ["Ελένη", "李", "'-'"] {
            let err = slug(raw).unwrap_err().0;
            assert!(err.contains("give a username"), "{raw}: {err}");
        }
    }
}
