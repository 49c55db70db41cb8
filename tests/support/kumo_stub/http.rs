//! The stand-in `kumo.http`: a client whose requests really go out (to
//! the appliance under test), with KumoMTA's chaining request builder and
//! its Response, which answers nothing once its body is read (fact sheet
//! §3). Every request is logged so tests can count them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mlua::prelude::*;
use tokio::runtime::Handle;

use super::duration;

/// One request the policy made, in order.
#[derive(Debug, Clone)]
pub struct HttpCall {
    pub method: String,
    pub url: String,
    /// `None` when the request failed (connection refused, timeout).
    pub status: Option<u16>,
    /// What the policy sent, for a test to read what an answer was asked.
    pub body: Option<String>,
}

pub struct Client {
    http: reqwest::Client,
    timeout: Option<Duration>,
    handle: Handle,
    calls: Arc<Mutex<Vec<HttpCall>>>,
}

impl Client {
    pub fn new(
        timeout: Option<Duration>,
        handle: Handle,
        calls: Arc<Mutex<Vec<HttpCall>>>,
    ) -> Self {
        Self {
            http: reqwest::Client::new(),
            timeout,
            handle,
            calls,
        }
    }
}

impl LuaUserData for Client {
    fn add_methods<M: LuaUserDataMethods<Self>>(methods: &mut M) {
        for method in ["get", "post", "put"] {
            methods.add_method(method, move |_, this, url: String| {
                Ok(Request {
                    client: this.http.clone(),
                    handle: this.handle.clone(),
                    calls: this.calls.clone(),
                    method: method.to_uppercase(),
                    url,
                    headers: Vec::new(),
                    body: None,
                    timeout: this.timeout,
                })
            });
        }
        methods.add_method("close", |_, _, ()| Ok(()));
    }
}

struct Request {
    client: reqwest::Client,
    handle: Handle,
    calls: Arc<Mutex<Vec<HttpCall>>>,
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout: Option<Duration>,
}

impl LuaUserData for Request {
    fn add_methods<M: LuaUserDataMethods<Self>>(methods: &mut M) {
        // Each builder method returns the request, so calls chain.
        methods.add_function(
            "header",
            |_, (ud, name, value): (LuaAnyUserData, String, String)| {
                ud.borrow_mut::<Request>()?.headers.push((name, value));
                Ok(ud)
            },
        );
        methods.add_function("bearer_auth", |_, (ud, token): (LuaAnyUserData, String)| {
            ud.borrow_mut::<Request>()?
                .headers
                .push(("Authorization".into(), format!("Bearer {token}")));
            Ok(ud)
        });
        methods.add_function("body", |_, (ud, body): (LuaAnyUserData, LuaString)| {
            ud.borrow_mut::<Request>()?.body = Some(body.as_bytes().to_vec());
            Ok(ud)
        });
        methods.add_function("timeout", |lua, (ud, d): (LuaAnyUserData, LuaValue)| {
            ud.borrow_mut::<Request>()?.timeout = Some(duration(lua, d)?);
            Ok(ud)
        });
        methods.add_method("send", |_, this, ()| this.send());
    }
}

impl Request {
    fn send(&self) -> LuaResult<Response> {
        let method = reqwest::Method::from_bytes(self.method.as_bytes()).into_lua_err()?;
        let mut req = self.client.request(method, &self.url);
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if let Some(body) = &self.body {
            req = req.body(body.clone());
        }
        if let Some(t) = self.timeout {
            req = req.timeout(t);
        }
        let answer = self.handle.block_on(async {
            let res = req.send().await?;
            let status = res.status();
            Ok::<_, reqwest::Error>((status, res.text().await?))
        });
        self.calls.lock().unwrap().push(HttpCall {
            method: self.method.clone(),
            url: self.url.clone(),
            status: answer.as_ref().ok().map(|(s, _)| s.as_u16()),
            body: self
                .body
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned()),
        });
        // Like kumo.http: a request that cannot be made raises.
        let (status, text) = answer.into_lua_err()?;
        Ok(Response {
            status,
            text: Mutex::new(Some(text)),
        })
    }
}

struct Response {
    status: reqwest::StatusCode,
    /// Taken by `text()`; KumoMTA's Response answers nothing after that.
    text: Mutex<Option<String>>,
}

impl Response {
    fn unread(&self) -> LuaResult<()> {
        match self.text.lock().unwrap().is_some() {
            true => Ok(()),
            false => Err(LuaError::runtime("the response body was already read")),
        }
    }
}

impl LuaUserData for Response {
    fn add_methods<M: LuaUserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("status_code", |_, this, ()| {
            this.unread()?;
            Ok(this.status.as_u16())
        });
        methods.add_method("status_reason", |_, this, ()| {
            this.unread()?;
            Ok(this.status.canonical_reason().unwrap_or("").to_owned())
        });
        methods.add_method("status_is_success", |_, this, ()| {
            this.unread()?;
            Ok(this.status.is_success())
        });
        methods.add_method("status_is_client_error", |_, this, ()| {
            this.unread()?;
            Ok(this.status.is_client_error())
        });
        methods.add_method("status_is_server_error", |_, this, ()| {
            this.unread()?;
            Ok(this.status.is_server_error())
        });
        methods.add_method("text", |_, this, ()| {
            this.text
                .lock()
                .unwrap()
                .take()
                .ok_or_else(|| LuaError::runtime("the response body was already read"))
        });
    }
}
