//! SERVER span names (`{METHOD} {route}`) and `http.route` values as
//! static strings, made once per route.
//!
//! A kept request formatted its span name and copied its route into a new
//! `String` each, and the batch thread freed both again (docs/performance.md,
//! "Product path"). The routes are the router's own templates (axum's
//! `MatchedPath`: a caller cannot make a new one) and the methods are the
//! nine the semantic conventions know plus `HTTP`, so the set is small: it
//! is made once and kept for the life of the process. Past [`ROUTES_KEPT`]
//! routes the set stops growing and the caller formats per request, as
//! before.

use std::collections::HashMap;
use std::sync::{OnceLock, PoisonError, RwLock};

/// The most routes kept; a service has a few dozen.
const ROUTES_KEPT: usize = 256;

/// The span name for a method semconv does not know.
const OTHER_METHOD: &str = "HTTP";

/// One route's template and its span name for each method.
#[derive(Debug)]
pub(crate) struct RouteNames {
    route: &'static str,
    names: [&'static str; super::client::KNOWN_METHODS.len() + 1],
}

impl RouteNames {
    fn new(route: &str) -> Self {
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        let route = leak(route.to_owned());
        let mut names = [OTHER_METHOD; super::client::KNOWN_METHODS.len() + 1];
        for (name, method) in names
            .iter_mut()
            .zip(super::client::KNOWN_METHODS.iter().chain([&OTHER_METHOD]))
        {
            *name = leak(format!("{method} {route}"));
        }
        Self { route, names }
    }

    /// The route template (`http.route`).
    pub(crate) fn route(&self) -> &'static str {
        self.route
    }

    /// `{METHOD} {route}` for a method semconv knows (`Some`), else `HTTP {route}`.
    pub(crate) fn name(&self, method: Option<&'static str>) -> &'static str {
        let index = method
            .and_then(|m| super::client::KNOWN_METHODS.iter().position(|k| *k == m))
            .unwrap_or(super::client::KNOWN_METHODS.len());
        self.names[index]
    }
}

type Routes = RwLock<HashMap<Box<str>, &'static RouteNames>>;

fn routes() -> &'static Routes {
    static ROUTES: OnceLock<Routes> = OnceLock::new();
    ROUTES.get_or_init(Routes::default)
}

/// The names of `route`, made on its first request; `None` once
/// [`ROUTES_KEPT`] routes are kept and this one is not among them.
pub(crate) fn route_names(route: &str) -> Option<&'static RouteNames> {
    names_in(routes(), route)
}

fn names_in(routes: &Routes, route: &str) -> Option<&'static RouteNames> {
    if let Some(names) = routes
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(route)
    {
        return Some(names);
    }
    let mut routes = routes.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(names) = routes.get(route) {
        return Some(names);
    }
    if routes.len() >= ROUTES_KEPT {
        return None;
    }
    let names: &'static RouteNames = Box::leak(Box::new(RouteNames::new(route)));
    routes.insert(route.into(), names);
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_has_a_name_per_method_and_http_for_the_others() {
        let routes = Routes::default();
        let names = names_in(&routes, "/api/items/{id}").unwrap();
        assert_eq!(names.route(), "/api/items/{id}");
        assert_eq!(names.name(Some("POST")), "POST /api/items/{id}");
        assert_eq!(names.name(Some("PATCH")), "PATCH /api/items/{id}");
        assert_eq!(names.name(None), "HTTP /api/items/{id}");
        // The same route gives the same strings, not new ones.
        let again = names_in(&routes, "/api/items/{id}").unwrap();
        assert!(std::ptr::eq(names, again));
    }

    #[test]
    fn the_set_stops_growing_at_its_limit() {
        let routes = Routes::default();
        for i in 0..ROUTES_KEPT {
            assert!(names_in(&routes, &format!("/r/{i}")).is_some());
        }
        assert!(names_in(&routes, "/r/one-too-many").is_none());
        // Routes already kept are still found.
        assert!(names_in(&routes, "/r/0").is_some());
    }
}
