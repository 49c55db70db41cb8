//! The CSV layouts sequencers import, byte-exact headers in their order
//! (`shared/reference/exports_and_peers.md` §1). Cells are written with the
//! `csv` crate and neutralised against spreadsheet formula injection.

use serde::{Deserialize, Serialize};

use crate::types::name_enum;

name_enum!(
    /// Which tool the file is for.
    Format {
        Instantly => "instantly_csv",
        Smartlead => "smartlead_csv",
        ReplyIo => "replyio_csv",
        Generic => "generic_csv",
    }
);

/// Instantly's 15-column bulk import (Medium-High confidence).
const INSTANTLY: &[&str] = &[
    "Email",
    "First Name",
    "Last Name",
    "IMAP Username",
    "IMAP Password",
    "IMAP Host",
    "IMAP Port",
    "SMTP Username",
    "SMTP Password",
    "SMTP Host",
    "SMTP Port",
    "Daily Limit",
    "Warmup Enabled",
    "Warmup Limit",
    "Warmup Increment",
];

/// Smartlead's 19-column template, named as its API fields (Medium-High).
const SMARTLEAD: &[&str] = &[
    "from_name",
    "from_email",
    "user_name",
    "password",
    "smtp_host",
    "smtp_port",
    "imap_host",
    "imap_port",
    "max_email_per_day",
    "custom_tracking_url",
    "warmup_enabled",
    "total_warmup_per_day",
    "daily_rampup",
    "reply_rate_percentage",
    "bcc",
    "signature",
    "different_reply_to_address",
    "imap_user_name",
    "imap_password",
];

/// Reply.io's account API field names (v3); no CSV header is documented,
/// so this is best knowledge.
const REPLYIO: &[&str] = &[
    "email",
    "senderName",
    "smtpHost",
    "smtpPort",
    "smtpPassword",
    "smtpSsl",
    "imapHost",
    "imapPort",
    "imapPassword",
    "imapSsl",
    "dailyLimit",
];

/// The spec's own layout.
const GENERIC: &[&str] = &[
    "Email",
    "Password",
    "SMTP_Host",
    "SMTP_Port",
    "SMTP_Username",
    "IMAP_Host",
    "IMAP_Port",
    "IMAP_Username",
    "Daily_Limit",
];

impl Format {
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Format::Instantly => INSTANTLY,
            Format::Smartlead => SMARTLEAD,
            Format::ReplyIo => REPLYIO,
            Format::Generic => GENERIC,
        }
    }

    /// A file name for `Content-Disposition`.
    pub fn file_name(self, stem: &str) -> String {
        let tool = self.as_str().trim_end_matches("_csv");
        format!("inboxgrove-{tool}-{stem}.csv")
    }
}

/// Warmup values written when a mailbox is warming: the conservative
/// defaults the tools' own help suggests (fact sheet §1.1, §1.2).
pub const WARMUP_LIMIT: u32 = 20;
pub const WARMUP_INCREMENT: u32 = 2;
const REPLY_RATE_PERCENT: u32 = 30;

/// One mailbox as every format needs it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// Empty when passwords are not included.
    pub password: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub imap_host: String,
    pub imap_port: u16,
    pub daily_limit: u32,
    pub warmup: bool,
    pub tracking_domain: Option<String>,
}

/// A cell a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, tab,
/// carriage return first) gets a leading apostrophe, which spreadsheets
/// show as text (OWASP "CSV Injection").
pub fn neutralise(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_owned(),
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "TRUE" } else { "FALSE" }
}

impl Row {
    /// "First Last", as a sender name.
    pub fn display_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
            .trim()
            .to_owned()
    }

    fn cells(&self, format: Format) -> Vec<String> {
        let s = |v: &str| v.to_owned();
        let n = |v: u32| v.to_string();
        let name = self.display_name();
        match format {
            Format::Instantly => vec![
                s(&self.email),
                s(&self.first_name),
                s(&self.last_name),
                s(&self.email),
                s(&self.password),
                s(&self.imap_host),
                n(self.imap_port.into()),
                s(&self.email),
                s(&self.password),
                s(&self.smtp_host),
                n(self.smtp_port.into()),
                n(self.daily_limit),
                s(yes_no(self.warmup)),
                n(WARMUP_LIMIT),
                n(WARMUP_INCREMENT),
            ],
            Format::Smartlead => vec![
                name,
                s(&self.email),
                s(&self.email),
                s(&self.password),
                s(&self.smtp_host),
                n(self.smtp_port.into()),
                s(&self.imap_host),
                n(self.imap_port.into()),
                n(self.daily_limit),
                self.tracking_domain.clone().unwrap_or_default(),
                s(yes_no(self.warmup)),
                n(WARMUP_LIMIT),
                n(WARMUP_INCREMENT),
                n(REPLY_RATE_PERCENT),
                String::new(),
                String::new(),
                String::new(),
                s(&self.email),
                s(&self.password),
            ],
            // Port 587 is STARTTLS and 993 implicit TLS: both encrypted.
            Format::ReplyIo => vec![
                s(&self.email),
                name,
                s(&self.smtp_host),
                n(self.smtp_port.into()),
                s(&self.password),
                s("true"),
                s(&self.imap_host),
                n(self.imap_port.into()),
                s(&self.password),
                s("true"),
                n(self.daily_limit),
            ],
            Format::Generic => vec![
                s(&self.email),
                s(&self.password),
                s(&self.smtp_host),
                n(self.smtp_port.into()),
                s(&self.email),
                s(&self.imap_host),
                n(self.imap_port.into()),
                s(&self.email),
                n(self.daily_limit),
            ],
        }
    }
}

/// The whole file.
pub fn write(format: Format, rows: &[Row]) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::with_capacity(64 + rows.len() * 160));
    out.write_record(format.columns())?;
    for row in rows {
        out.write_record(row.cells(format).iter().map(|c| neutralise(c)))?;
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(first: &str) -> Row {
        Row {
            email: "ada.lovelace@acme.test".into(),
            first_name: first.into(),
            last_name: "Lovelace, Jr.".into(),
            password: "pw-1".into(),
            smtp_host: "mail.acme.test".into(),
            smtp_port: 587,
            imap_host: "mail.acme.test".into(),
            imap_port: 993,
            daily_limit: 30,
            warmup: true,
            tracking_domain: Some("track.acme.test".into()),
        }
    }

    #[test]
    fn headers_are_byte_exact_and_rows_round_trip() {
        let file = write(Format::Instantly, &[row("Zoë \"Ada\"")]).unwrap();
        let text = String::from_utf8(file).unwrap();
        assert!(text.starts_with("Email,First Name,Last Name,IMAP Username,IMAP Password,IMAP Host,IMAP Port,SMTP Username,SMTP Password,SMTP Host,SMTP Port,Daily Limit,Warmup Enabled,Warmup Limit,Warmup Increment\n"));
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let rec = r.records().next().unwrap().unwrap();
        assert_eq!(&rec[1], "Zoë \"Ada\"");
        assert_eq!(&rec[2], "Lovelace, Jr.");
        assert_eq!(&rec[12], "TRUE");
        for f in [Format::Smartlead, Format::ReplyIo, Format::Generic] {
            let text = String::from_utf8(write(f, &[row("Ada")]).unwrap()).unwrap();
            let header = text.lines().next().unwrap();
            assert_eq!(header, f.columns().join(","));
            let mut r = csv::Reader::from_reader(text.as_bytes());
            assert_eq!(
                r.records().next().unwrap().unwrap().len(),
                f.columns().len()
            );
        }
    }

    #[test]
    fn formulas_are_neutralised() {
        let file = write(
            Format::Generic,
            &[Row {
                email: "=HYPERLINK(\"x\")".into(),
                ..row("Ada")
            }],
        )
        .unwrap();
        let mut r = csv::Reader::from_reader(&file[..]);
        assert_eq!(
            &r.records().next().unwrap().unwrap()[0],
            "'=HYPERLINK(\"x\")"
        );
        for bad in ["+1", "-1", "@x", "\tx", "\rx"] {
            assert!(neutralise(bad).starts_with('\''), "{bad:?}");
        }
        assert_eq!(neutralise("ada"), "ada");
    }
}
