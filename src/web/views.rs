//! The page frame and the error views every area shares.

use askama::Template;

use super::assets::{self, Links};

/// What `layout.html` needs: who is signed in, their CSRF token, which
/// section is open, and the versioned asset links.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub signed_in: bool,
    pub email: String,
    pub is_admin: bool,
    pub csrf: String,
    pub nav: &'static str,
    /// Show the "change your password" notice.
    pub change_password: bool,
    pub links: &'static Links,
}

impl Chrome {
    /// The frame of a page shown before signing in.
    pub fn anonymous() -> Self {
        Self {
            signed_in: false,
            email: String::new(),
            is_admin: false,
            csrf: String::new(),
            nav: "",
            change_password: false,
            links: assets::links(),
        }
    }

    /// The JSON of `hx-headers` on `<body>`: htmx sends the CSRF token with
    /// every request it makes. The token is hex, so it needs no escaping.
    pub fn hx_headers(&self) -> String {
        format!(r#"{{"{}": "{}"}}"#, super::security::CSRF_HEADER, self.csrf)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub chrome: Chrome,
    pub status: u16,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "_error.html")]
pub struct ErrorPartial<'a> {
    pub message: &'a str,
}
