//! A router that also keeps the table of its routes: method, path and who
//! may call it. Axum cannot list a router's routes, and the isolation sweep
//! (`tests/it/isolation.rs`) must see every one, so a route added anywhere
//! on the public listener is in the sweep without anyone remembering to
//! add it there.

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, on};

/// Who may call a route, as the sweep checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No sign-in: its secret, if any, is in the request itself (a login,
    /// an unsubscribe or export link, health checks).
    Anyone,
    /// Any signed-in user, on their own data only: another member's id is
    /// 404, as if it did not exist.
    Member,
    /// Admins only: a member gets 403.
    Admin,
}

/// How a route authenticates its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// A bearer token; errors in the JSON shape.
    Api,
    /// The browser session cookie and its CSRF token; errors as pages.
    Web,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    pub method: Method,
    pub path: String,
    pub access: Access,
    pub surface: Surface,
}

pub struct Routes<S> {
    router: Router<S>,
    table: Vec<RouteInfo>,
    surface: Surface,
    /// Put before every path added, e.g. `/api/v1`.
    prefix: &'static str,
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new(surface: Surface) -> Self {
        Self::under("", surface)
    }

    /// Routes whose paths all start with `prefix`. Registered whole rather
    /// than nested: axum routes a nested router as a boxed service of its
    /// own, cloned, prefix-stripped and routed a second time per request.
    pub fn under(prefix: &'static str, surface: Surface) -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
            surface,
            prefix,
        }
    }

    pub fn get<H: Handler<T, S>, T: 'static>(self, path: &str, access: Access, h: H) -> Self {
        self.add(MethodFilter::GET, Method::GET, path, access, h)
    }

    pub fn post<H: Handler<T, S>, T: 'static>(self, path: &str, access: Access, h: H) -> Self {
        self.add(MethodFilter::POST, Method::POST, path, access, h)
    }

    pub fn patch<H: Handler<T, S>, T: 'static>(self, path: &str, access: Access, h: H) -> Self {
        self.add(MethodFilter::PATCH, Method::PATCH, path, access, h)
    }

    pub fn put<H: Handler<T, S>, T: 'static>(self, path: &str, access: Access, h: H) -> Self {
        self.add(MethodFilter::PUT, Method::PUT, path, access, h)
    }

    pub fn delete<H: Handler<T, S>, T: 'static>(self, path: &str, access: Access, h: H) -> Self {
        self.add(MethodFilter::DELETE, Method::DELETE, path, access, h)
    }

    fn add<H: Handler<T, S>, T: 'static>(
        mut self,
        filter: MethodFilter,
        method: Method,
        path: &str,
        access: Access,
        handler: H,
    ) -> Self {
        // Axum merges the methods of one path and panics on a duplicate, so
        // a path registered twice fails at start, in every test.
        let path = format!("{}{path}", self.prefix);
        self.router = self.router.route(&path, on(filter, handler));
        self.table.push(RouteInfo {
            method,
            path,
            access,
            surface: self.surface,
        });
        self
    }

    /// Applies `f` (typically `route_layer`s) to the routes so far.
    pub fn layered(mut self, f: impl FnOnce(Router<S>) -> Router<S>) -> Self {
        self.router = f(self.router);
        self
    }

    pub fn merge(mut self, other: Routes<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    pub fn into_parts(self) -> (Router<S>, Vec<RouteInfo>) {
        (self.router, self.table)
    }
}
