//! The receiving side over IMAP (RFC 3501 with MOVE, RFC 6851, and UIDPLUS,
//! RFC 4315): find a warmup message by its Message-ID in every folder,
//! tell where it landed, then rescue, mark, and file it.
//!
//! Only messages the caller names by Message-ID are read, moved or flagged:
//! every UID a search returns is checked against the message's own
//! Message-ID header before anything acts on it, and messages are removed
//! with UID EXPUNGE of exactly their UIDs, never a plain EXPUNGE (which
//! would also remove whatever else the user marked \Deleted).

use async_imap::types::{Fetch, Name, NameAttribute};
use futures_util::TryStreamExt;
use mail_parser::MessageParser;
use secrecy::ExposeSecret;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;

use super::tls::Trust;
use super::{Endpoint, Login, Placement};

mod folders;

use folders::Layout;

/// The most one call may take before the server counts as unresponsive.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot reach the IMAP server: {0}")]
    Connect(String),
    #[error("TLS with the IMAP server failed: {0}")]
    Tls(String),
    #[error("the IMAP server refused the login: {0}")]
    Auth(String),
    /// The server answered NO or BAD, or something this client cannot use.
    #[error("IMAP: {0}")]
    Protocol(String),
    /// The caller's Message-ID or folder name cannot be used.
    #[error("{0}")]
    Invalid(String),
}

impl ImapError {
    /// Whether trying again later cannot help: a refused login or a
    /// caller's name that cannot be used.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Auth(_) | Self::Invalid(_))
    }
}

impl From<async_imap::error::Error> for ImapError {
    fn from(e: async_imap::error::Error) -> Self {
        use async_imap::error::Error;
        match e {
            Error::Io(io) => Self::Connect(io.to_string()),
            Error::ConnectionLost => Self::Connect("the server closed the connection".into()),
            Error::Validate(v) => Self::Invalid(v.to_string()),
            other => Self::Protocol(other.to_string()),
        }
    }
}

/// Where a message was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The folder's full IMAP name (with any namespace prefix).
    pub folder: String,
    pub uid: u32,
    pub placement: Placement,
    /// Without angle brackets, as searched for.
    pub message_id: String,
}

/// What [`Session::engage`] does to a found message, in this order (Warmup
/// Inbox's sequence, reference §1.1): rescue, \Seen, \Flagged, file.
#[derive(Debug, Clone, Copy, Default)]
pub struct Actions<'a> {
    /// Move a Spam placement to INBOX first.
    pub rescue: bool,
    pub seen: bool,
    pub flag: bool,
    /// Move into this folder last (created when missing), e.g. "Warmup".
    pub file_into: Option<&'a str>,
}

/// A logged-in IMAP session.
pub struct Session {
    inner: async_imap::Session<TlsStream<TcpStream>>,
    can_move: bool,
    uidplus: bool,
    layout: Option<Layout>,
}

/// Logs in over TLS: implicit (IMAPS) or STARTTLS (RFC 3501 §6.2.1);
/// LOGIN is never sent before the TLS handshake.
pub async fn connect(
    trust: &Trust,
    endpoint: &Endpoint,
    login: &Login,
) -> Result<Session, ImapError> {
    within(connect_now(trust, endpoint, login)).await
}

async fn connect_now(
    trust: &Trust,
    endpoint: &Endpoint,
    login: &Login,
) -> Result<Session, ImapError> {
    let at = format!("{}:{}", endpoint.host, endpoint.port);
    let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|e| ImapError::Connect(format!("{at}: {e}")))?;
    // One small command, one small answer: no Nagle delay between them.
    tcp.set_nodelay(true)
        .map_err(|e| ImapError::Connect(format!("{at}: {e}")))?;
    let name = ServerName::try_from(endpoint.tls_name.clone()).map_err(|_| {
        ImapError::Invalid(format!(
            "{:?} is not a name a certificate can be checked for",
            endpoint.tls_name
        ))
    })?;
    let tcp = if endpoint.implicit_tls {
        tcp
    } else {
        let mut plain = async_imap::Client::new(tcp);
        greeting(&mut plain).await?;
        plain
            .run_command_and_check_ok("STARTTLS", None)
            .await
            .map_err(|e| {
                ImapError::Tls(format!(
                    "{at} refused STARTTLS ({e}); the login is never sent in clear"
                ))
            })?;
        // Anything read before the handshake goes with the plain client's
        // buffer: a response injected in clear must never be taken as one
        // that came over TLS.
        plain.into_inner()
    };
    let tls = trust
        .connector()
        .connect(name, tcp)
        .await
        .map_err(|e| ImapError::Tls(format!("{at}: {e}")))?;
    let mut client = async_imap::Client::new(tls);
    if endpoint.implicit_tls {
        greeting(&mut client).await?;
    }
    let mut inner = client
        .login(&login.username, login.password.expose_secret())
        .await
        .map_err(|(e, _)| match e {
            async_imap::error::Error::No(why) | async_imap::error::Error::Bad(why) => {
                ImapError::Auth(why)
            }
            // The password would be quoted in a validation error.
            async_imap::error::Error::Validate(_) => {
                ImapError::Auth("the password holds a line break".into())
            }
            other => ImapError::from(other),
        })?;
    // Capabilities after TLS and login only (RFC 3501 §6.2.1).
    let caps = inner.capabilities().await?;
    Ok(Session {
        can_move: caps.has_str("MOVE"),
        uidplus: caps.has_str("UIDPLUS"),
        inner,
        layout: None,
    })
}

/// Reads the server's greeting: OK. A BYE, nothing at all, or PREAUTH
/// (logged in before TLS could be asked for) is an error.
async fn greeting<T>(client: &mut async_imap::Client<T>) -> Result<(), ImapError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    use async_imap::imap_proto::{Response, Status};
    let response = client
        .read_response()
        .await
        .map_err(|e| ImapError::Connect(e.to_string()))?
        .ok_or_else(|| ImapError::Connect("the server closed the connection".into()))?;
    match response.parsed() {
        Response::Data {
            status: Status::Ok, ..
        } => Ok(()),
        other => Err(ImapError::Protocol(format!(
            "unexpected greeting {other:?}"
        ))),
    }
}

async fn within<T>(work: impl Future<Output = Result<T, ImapError>>) -> Result<T, ImapError> {
    tokio::time::timeout(TIMEOUT, work)
        .await
        .unwrap_or_else(|_| {
            Err(ImapError::Connect(format!(
                "no answer within {} s",
                TIMEOUT.as_secs()
            )))
        })
}

impl Session {
    /// Where the message with `message_id` is: INBOX first, then the spam
    /// folders, then every other selectable folder (read-only, EXAMINE).
    /// Virtual and not-a-placement folders (\All, \Flagged, \Sent,
    /// \Drafts, \Trash) are not searched.
    pub async fn locate(&mut self, message_id: &str) -> Result<Option<Found>, ImapError> {
        let id = folders::message_id(message_id)?;
        within(async {
            let layout = self.layout().await?.clone();
            for (folder, placement) in layout.search_order() {
                self.inner.examine(folder).await?;
                if let Some(uid) = self.find(&id).await? {
                    return Ok(Some(Found {
                        folder: folder.to_owned(),
                        uid,
                        placement,
                        message_id: id.clone(),
                    }));
                }
            }
            Ok(None)
        })
        .await
    }

    /// The whole message, without setting \Seen (BODY.PEEK[], RFC 3501
    /// §6.4.5), for quoting in a reply.
    pub async fn fetch(&mut self, found: &Found) -> Result<Vec<u8>, ImapError> {
        within(async {
            self.inner.examine(&found.folder).await?;
            let fetched: Vec<Fetch> = self
                .inner
                .uid_fetch(found.uid.to_string(), "(UID BODY.PEEK[])")
                .await?
                .try_collect()
                .await?;
            let body = fetched
                .iter()
                .find(|f| f.uid == Some(found.uid))
                .and_then(Fetch::body)
                .ok_or_else(|| gone(found))?;
            if header_id(body).as_deref() != Some(found.message_id.as_str()) {
                return Err(gone(found));
            }
            Ok(body.to_vec())
        })
        .await
    }

    /// Rescues, marks and files `found` as `actions` say. Each move is
    /// followed by a search for the message's new UID in its new folder:
    /// a STORE to the old UID would silently do nothing (Warmbly #581).
    pub async fn engage(&mut self, found: &Found, actions: &Actions<'_>) -> Result<(), ImapError> {
        let target = actions.file_into.map(folders::folder_name).transpose()?;
        within(async {
            // The UID must still be this message (a folder whose UIDs were
            // renumbered, RFC 3501 §2.3.1.1 UIDVALIDITY, holds others).
            self.inner.select(&found.folder).await?;
            if !self.holds(found.uid, &found.message_id).await? {
                return Err(gone(found));
            }
            let mut at = (found.folder.clone(), found.uid);
            if actions.rescue && found.placement == Placement::Spam {
                at = self.move_to(&at, "INBOX", &found.message_id).await?;
            }
            let flags: Vec<&str> = [(actions.seen, "\\Seen"), (actions.flag, "\\Flagged")]
                .into_iter()
                .filter_map(|(on, flag)| on.then_some(flag))
                .collect();
            if !flags.is_empty() {
                self.inner.select(&at.0).await?;
                let stored: Vec<Fetch> = self
                    .inner
                    .uid_store(at.1.to_string(), format!("+FLAGS ({})", flags.join(" ")))
                    .await?
                    .try_collect()
                    .await?;
                // +FLAGS (not .SILENT) answers with the message's flags:
                // no answer means the UID is gone.
                if !stored.iter().any(|f| f.uid == Some(at.1)) {
                    return Err(gone(found));
                }
            }
            if let Some(target) = target {
                let folder = self.ensure_folder(&target).await?;
                if folder != at.0 {
                    self.move_to(&at, &folder, &found.message_id).await?;
                }
            }
            Ok(())
        })
        .await
    }

    /// Removes exactly the messages with `message_ids` from `folder` (the
    /// Warmup folder's retention); returns how many went. A folder that
    /// does not exist holds none.
    pub async fn expunge(
        &mut self,
        folder: &str,
        message_ids: &[String],
    ) -> Result<u32, ImapError> {
        let folder = folders::folder_name(folder)?;
        let ids = message_ids
            .iter()
            .map(|id| folders::message_id(id))
            .collect::<Result<Vec<_>, _>>()?;
        within(async {
            let Some(name) = self.layout().await?.existing(&folder) else {
                return Ok(0);
            };
            self.inner.select(&name).await?;
            let mut uids = Vec::new();
            for id in &ids {
                uids.extend(self.find_all(id).await?);
            }
            if uids.is_empty() {
                return Ok(0);
            }
            self.require_uidplus()?;
            let set = uid_set(&uids);
            self.inner
                .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                .await?
                .try_collect::<Vec<_>>()
                .await?;
            let gone: Vec<u32> = self.inner.uid_expunge(&set).await?.try_collect().await?;
            Ok(u32::try_from(gone.len()).unwrap_or(u32::MAX))
        })
        .await
    }

    pub async fn logout(mut self) {
        // The session ends either way; a server that does not answer
        // LOGOUT has nothing more to say.
        let _ = within(async { Ok(self.inner.logout().await?) }).await;
    }

    /// The folders, listed once per session.
    async fn layout(&mut self) -> Result<&Layout, ImapError> {
        if self.layout.is_none() {
            let names: Vec<Name> = self
                .inner
                .list(Some(""), Some("*"))
                .await?
                .try_collect()
                .await?;
            self.layout = Some(Layout::new(names.iter().map(|n| {
                (
                    n.name().to_owned(),
                    n.delimiter().map(str::to_owned),
                    n.attributes()
                        .iter()
                        .cloned()
                        .map(NameAttribute::into_owned)
                        .collect(),
                )
            })));
        }
        self.layout
            .as_ref()
            .ok_or_else(|| ImapError::Protocol("no folder list".into()))
    }

    /// The full name of the folder `name`, created when missing: under the
    /// personal namespace's prefix where the server keeps folders under
    /// INBOX (Dovecot with `prefix = INBOX.` refuses others, Warmbly #186).
    async fn ensure_folder(&mut self, name: &str) -> Result<String, ImapError> {
        let layout = self.layout().await?;
        if let Some(existing) = layout.existing(name) {
            return Ok(existing);
        }
        let candidates = layout.candidates(name);
        let mut refused = None;
        for candidate in candidates {
            match self.inner.create(&candidate).await {
                Ok(()) => {
                    self.layout = None;
                    return Ok(candidate);
                }
                Err(e @ async_imap::error::Error::No(_)) => refused = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        Err(refused.map_or_else(
            || ImapError::Protocol(format!("cannot create {name:?}")),
            ImapError::from,
        ))
    }

    /// Moves the message at (`folder`, `uid`) into `to`; returns where it
    /// is now. UID MOVE where offered, else UID COPY, \Deleted and UID
    /// EXPUNGE of that one UID.
    async fn move_to(
        &mut self,
        at: &(String, u32),
        to: &str,
        message_id: &str,
    ) -> Result<(String, u32), ImapError> {
        let uid = at.1.to_string();
        self.inner.select(&at.0).await?;
        if self.can_move {
            self.inner.uid_mv(&uid, to).await?;
        } else {
            self.require_uidplus()?;
            self.inner.uid_copy(&uid, to).await?;
            self.inner
                .uid_store(&uid, "+FLAGS.SILENT (\\Deleted)")
                .await?
                .try_collect::<Vec<_>>()
                .await?;
            self.inner
                .uid_expunge(&uid)
                .await?
                .try_collect::<Vec<_>>()
                .await?;
        }
        self.inner.select(to).await?;
        // The moved copy has the highest UID of any with this Message-ID:
        // UIDs only grow (RFC 3501 §2.3.1.1).
        let uid = self.find(message_id).await?.ok_or_else(|| {
            ImapError::Protocol(format!("the message moved to {to:?} is not there"))
        })?;
        Ok((to.to_owned(), uid))
    }

    fn require_uidplus(&self) -> Result<(), ImapError> {
        if self.uidplus {
            Ok(())
        } else {
            Err(ImapError::Protocol(
                "the server offers neither MOVE nor UIDPLUS; a plain EXPUNGE would also remove other messages marked \\Deleted".into(),
            ))
        }
    }

    /// Whether `uid` in the open folder is the message with Message-ID
    /// `id`.
    async fn holds(&mut self, uid: u32, id: &str) -> Result<bool, ImapError> {
        let fetched: Vec<Fetch> = self
            .inner
            .uid_fetch(uid.to_string(), "(UID BODY.PEEK[HEADER])")
            .await?
            .try_collect()
            .await?;
        Ok(fetched
            .iter()
            .any(|f| f.uid == Some(uid) && f.header().and_then(header_id).as_deref() == Some(id)))
    }

    /// The highest UID in the open folder whose Message-ID is `id`.
    async fn find(&mut self, id: &str) -> Result<Option<u32>, ImapError> {
        Ok(self.find_all(id).await?.into_iter().max())
    }

    /// The UIDs in the open folder whose Message-ID header is `id`: HEADER
    /// search is a substring match (RFC 3501 §6.4.4), so each hit's own
    /// header is read (BODY.PEEK, \Seen untouched) and compared.
    async fn find_all(&mut self, id: &str) -> Result<Vec<u32>, ImapError> {
        let hits = self
            .inner
            .uid_search(format!("HEADER Message-ID \"<{id}>\""))
            .await?;
        if hits.is_empty() {
            return Ok(Vec::new());
        }
        let hits: Vec<u32> = hits.into_iter().collect();
        let fetched: Vec<Fetch> = self
            .inner
            .uid_fetch(uid_set(&hits), "(UID BODY.PEEK[HEADER])")
            .await?
            .try_collect()
            .await?;
        Ok(fetched
            .iter()
            .filter(|f| f.header().and_then(header_id).as_deref() == Some(id))
            .filter_map(|f| f.uid)
            .collect())
    }
}

fn gone(found: &Found) -> ImapError {
    ImapError::Protocol(format!(
        "<{}> is no longer UID {} in {:?}",
        found.message_id, found.uid, found.folder
    ))
}

/// The Message-ID of a message's header, without angle brackets.
fn header_id(header: &[u8]) -> Option<String> {
    MessageParser::default()
        .parse_headers(header)
        .and_then(|m| m.message_id().map(str::to_owned))
}

/// A UID set (RFC 3501 §9, `sequence-set`) of `uids`.
fn uid_set(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
