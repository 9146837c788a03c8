//! The dashboard: server-rendered HTML pages over the store, for journalists, lawyers and
//! researchers. Reading needs no JavaScript; every page has a permanent link.
//!
//! | page | what |
//! |---|---|
//! | `/` | countries with data, active blocking events and outages, the search box |
//! | `/country/{cc}` | platforms × networks status grid (latest state per cell), events, outages (each row anchored `#outage-{id}`, where the feed links) |
//! | `/platform/{cc}/{domain}` | per-network timeline heatmap (SVG), method breakdown, events, CSV links; `?since=&until=` pick the span |
//!
//! The home, country and platform pages link their Atom feed of alerts (visibly, and as
//! `<link rel="alternate">` for feed readers).
//! | `/event/{id}` | what, where, since when, how measured, affected networks, a quotable summary, the evidence bundle |
//! | `/measurement/{id}` | verdict and reasons, the probe beside the control, the raw JSON |
//! | `/search?q=` | by country, domain, AS number or measurement id |
//!
//! Layout: [`view`] holds the pure rules (status grid, heatmap bins, the event summary, search
//! parsing, probe-versus-control comparison), [`data`] the store queries each page runs,
//! [`pages`] the maud templates and [`chart`] the heatmap SVG. Unknown ids get an HTML 404.

mod cache;
mod chart;
mod data;
mod pages;
mod view;

use crate::AppState;
use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use censorwatch_store::Store;
use data::{Caches, PageError};
use maud::Markup;
use std::collections::HashMap;
use std::sync::Arc;

/// What the dashboard's handlers share: the server's state and the network-name cache.
#[derive(Clone)]
struct WebState {
    app: AppState,
    caches: Arc<Caches>,
}

/// The dashboard's routes, to merge into the server's router.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let web = WebState {
        app: state.clone(),
        caches: Arc::new(Caches::default()),
    };
    // The home page's country list is a scan of every measurement: made now, in the
    // background, rather than by the first visitor.
    let (store, caches) = (Arc::clone(state.store()), Arc::clone(&web.caches));
    cache::in_background(Box::new(move || data::warm(&store, &caches)));
    Router::new()
        .route("/", get(home))
        .route("/country/{cc}", get(country))
        .route("/platform/{cc}/{domain}", get(platform))
        .route("/event/{id}", get(event))
        .route("/measurement/{id}", get(measurement))
        .route("/search", get(search))
        .with_state(web)
}

fn html(status: StatusCode, page: Markup) -> Response {
    let mut response = (status, page.into_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

fn not_found(message: &str) -> Response {
    html(StatusCode::NOT_FOUND, pages::error("Not found", message))
}

fn error_page(e: PageError) -> Response {
    match e {
        PageError::NotFound(m) => not_found(&m),
        PageError::Store(e) => {
            let mut r = html(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::error(
                    "Temporarily unavailable",
                    &format!("The database could not answer ({e}). Reload the page in a moment."),
                ),
            );
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1));
            r
        }
        PageError::Gone(r) => html(
            StatusCode::GONE,
            pages::error(
                "Measurement removed",
                &format!(
                    "Measurement {} was removed on {} UTC. Reason: {} — Its content is gone from this server; its \
                     hash stays in the transparency log{}, so earlier proofs and evidence bundles remain valid. \
                     Every removal is listed at /api/v1/redactions.",
                    r.id,
                    censorwatch_store::record::format_ooni_time(r.time),
                    r.reason,
                    r.leaf_index.map(|i| format!(" (leaf {i})")).unwrap_or_default()
                ),
            ),
        ),
        PageError::Corrupt(m) => html(
            StatusCode::INTERNAL_SERVER_ERROR,
            pages::error(
                "Server error",
                &format!("{m}. This is a censorwatch bug; please report it."),
            ),
        ),
    }
}

impl WebState {
    /// Builds a page on a blocking thread (store calls block).
    async fn page<T: Send + 'static>(
        &self,
        build: impl FnOnce(&dyn Store, &Caches) -> Result<T, PageError> + Send + 'static,
        render: impl FnOnce(&T) -> Markup,
    ) -> Response {
        let store = Arc::clone(self.app.store());
        let caches = Arc::clone(&self.caches);
        match tokio::task::spawn_blocking(move || build(store.as_ref(), &caches)).await {
            Ok(Ok(view)) => html(StatusCode::OK, render(&view)),
            Ok(Err(e)) => error_page(e),
            Err(e) => error_page(PageError::Corrupt(format!("building the page failed: {e}"))),
        }
    }

    /// As [`WebState::page`], for pages whose cached lists are refreshed in the background
    /// (which needs a store handle of its own).
    async fn page_shared<T: Send + 'static>(
        &self,
        build: impl FnOnce(&Arc<dyn Store>, &Caches) -> Result<T, PageError> + Send + 'static,
        render: impl FnOnce(&T) -> Markup,
    ) -> Response {
        let store = Arc::clone(self.app.store());
        self.page(move |_, caches| build(&store, caches), render).await
    }
}

/// A country code in its canonical form (`pk` → `PK`), `None` when it is not two letters.
fn canonical_cc(cc: &str) -> Option<String> {
    (cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_alphabetic())).then(|| cc.to_ascii_uppercase())
}

fn bad_cc(cc: &str) -> Response {
    not_found(&format!(
        "“{cc}” is not a country code; use two letters such as PK (Pakistan)."
    ))
}

async fn home(State(web): State<WebState>) -> Response {
    web.page_shared(data::home, pages::home).await
}

async fn country(State(web): State<WebState>, path: Result<Path<String>, PathRejection>) -> Response {
    let Ok(Path(cc)) = path else {
        return not_found("This address names no country.");
    };
    let Some(canon) = canonical_cc(&cc) else {
        return bad_cc(&cc);
    };
    if canon != cc {
        return Redirect::permanent(&format!("/country/{canon}")).into_response();
    }
    web.page_shared(
        move |store, caches| data::country(store, caches, &canon),
        pages::country,
    )
    .await
}

async fn platform(
    State(web): State<WebState>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let Ok(Path((cc, domain))) = path else {
        return not_found("This address names no platform.");
    };
    let Some(canon) = canonical_cc(&cc) else {
        return bad_cc(&cc);
    };
    let valid_domain = !domain.is_empty()
        && domain.len() <= 253
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if !valid_domain {
        return not_found(&format!(
            "“{domain}” is not a domain; platform pages are named by domain, such as /platform/PK/x.com."
        ));
    }
    let label = view::platform_label(&domain);
    let Ok(Query(params)) = query else {
        return html(
            StatusCode::BAD_REQUEST,
            pages::error("Bad request", "The query string is malformed."),
        );
    };
    let mut window = (None, None);
    for (key, value) in &params {
        let slot = match key.as_str() {
            "since" => &mut window.0,
            "until" => &mut window.1,
            _ => continue,
        };
        match crate::routes::parse_time(value, key == "until") {
            Some(t) => *slot = Some(t),
            None => {
                return html(
                    StatusCode::BAD_REQUEST,
                    pages::error(
                        "Bad request",
                        &format!(
                            "{key}={value} is not a date; use ISO 8601 such as 2024-02-17 or 2024-02-17T14:00:00Z."
                        ),
                    ),
                );
            }
        }
    }
    if let (Some(s), Some(u)) = window
        && s >= u
    {
        return html(
            StatusCode::BAD_REQUEST,
            pages::error("Bad request", "since must be before until."),
        );
    }
    if canon != cc || label != domain {
        let mut to = format!("/platform/{canon}/{}", pages::enc(&label));
        let kept: Vec<String> = ["since", "until"]
            .iter()
            .filter_map(|k| params.get(*k).map(|v| format!("{k}={}", pages::enc(v))))
            .collect();
        if !kept.is_empty() {
            to.push('?');
            to.push_str(&kept.join("&"));
        }
        return Redirect::permanent(&to).into_response();
    }
    web.page_shared(
        move |store, caches| data::platform(store, caches, &canon, &label, window),
        pages::platform,
    )
    .await
}

async fn event(State(web): State<WebState>, path: Result<Path<String>, PathRejection>) -> Response {
    let Ok(Path(id)) = path else {
        return not_found("This address names no event.");
    };
    web.page(move |store, caches| data::event(store, caches, &id), pages::event)
        .await
}

async fn measurement(State(web): State<WebState>, path: Result<Path<String>, PathRejection>) -> Response {
    let Ok(Path(id)) = path else {
        return not_found("This address names no measurement.");
    };
    web.page(move |store, _| data::measurement(store, &id), pages::measurement)
        .await
}

async fn search(
    State(web): State<WebState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let q = query.ok().and_then(|Query(mut p)| p.remove("q")).unwrap_or_default();
    let store = Arc::clone(web.app.store());
    match tokio::task::spawn_blocking(move || data::search(store.as_ref(), &q)).await {
        Ok(Ok(Ok(view))) => html(StatusCode::OK, pages::search(&view)),
        Ok(Ok(Err(to))) => Redirect::to(&to).into_response(),
        Ok(Err(e)) => error_page(e),
        Err(e) => error_page(PageError::Corrupt(format!("the search failed: {e}"))),
    }
}
