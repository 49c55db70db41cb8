//! The sequencers' API base URLs (Instantly, Smartlead, Reply.io), which
//! the one-click push talks to.

use clap::Args;

use super::{ConfigError, FileConfig};

/// Where the sequencers' account APIs are; tests point them at doubles.
#[derive(Debug, Default, Clone, Args)]
pub struct SequencerArgs {
    /// Instantly API base URL [default: https://api.instantly.ai]
    #[arg(long, env = "INBOXGROVE_INSTANTLY_API_URL")]
    pub instantly_api_url: Option<String>,
    /// Smartlead API base URL [default: https://server.smartlead.ai]
    #[arg(long, env = "INBOXGROVE_SMARTLEAD_API_URL")]
    pub smartlead_api_url: Option<String>,
    /// Reply.io API base URL [default: https://api.reply.io]
    #[arg(long, env = "INBOXGROVE_REPLYIO_API_URL")]
    pub replyio_api_url: Option<String>,
}

/// The sequencers' API base URLs, resolved and checked.
#[derive(Debug, Clone)]
pub struct SequencerUrls {
    pub instantly: reqwest::Url,
    pub smartlead: reqwest::Url,
    pub replyio: reqwest::Url,
}

impl SequencerUrls {
    pub(super) fn resolve(args: &SequencerArgs, file: &FileConfig) -> Result<Self, ConfigError> {
        let url = |setting: &'static str, given: Option<String>, default: &str| {
            let raw = given.unwrap_or_else(|| default.to_owned());
            match reqwest::Url::parse(raw.trim()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base() => Ok(u),
                _ => Err(ConfigError::Invalid {
                    setting,
                    message: format!("'{raw}' is not an http(s) URL; use one like {default}"),
                }),
            }
        };
        Ok(Self {
            instantly: url(
                "instantly_api_url",
                args.instantly_api_url
                    .clone()
                    .or(file.instantly_api_url.clone()),
                "https://api.instantly.ai",
            )?,
            smartlead: url(
                "smartlead_api_url",
                args.smartlead_api_url
                    .clone()
                    .or(file.smartlead_api_url.clone()),
                "https://server.smartlead.ai",
            )?,
            replyio: url(
                "replyio_api_url",
                args.replyio_api_url
                    .clone()
                    .or(file.replyio_api_url.clone()),
                "https://api.reply.io",
            )?,
        })
    }
}
