//! The web console: what a team sees and does in a browser instead of a
//! terminal — pipelines with a grid of recent runs, a run's step graph,
//! timeline and logs (live while a step runs), dataset and solution
//! versions with their metrics charted across versions, campaigns with
//! their traffic, a "try it" box and rollback, and forecasts with their
//! plots. Served under `/ui/` by `recflow serve` and `recflow schedule
//! --bind`, through the same service functions as the CLI and the API
//! (`crate::ops`).
//!
//! Pages are rendered on the server with maud, which escapes every value
//! it interpolates; charts are inline SVG (`charts`); the one small script
//! (live log tail, refresh of running pages) and the stylesheet are
//! embedded in the binary, so the console works offline.
//!
//! Access: `/ui/login` takes an API token and starts a session (a cookie,
//! HttpOnly and SameSite=Strict; see `session.rs`). Every page needs one,
//! else it redirects to the login. Every form that acts carries the
//! session's CSRF token, and only an admin token's session may act.

mod assets;
mod campaigns;
mod catalog;
pub mod charts;
mod forecasts;
mod pipelines;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;

use super::AppState;
use super::access::{self, Caller, Need};
use super::auth::Role;
use super::error::ApiError;
use super::session::{self, Session};

type Shared = State<Arc<AppState>>;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(pipelines::index))
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/assets/console.css", get(assets::css))
        .route("/ui/assets/console.js", get(assets::js))
        .route("/ui/pipelines/{name}", get(pipelines::pipeline))
        .route(
            "/ui/pipelines/{name}/trigger",
            get(pipelines::trigger_form).post(pipelines::trigger),
        )
        .route("/ui/pipelines/{name}/pause", post(pipelines::pause))
        .route("/ui/pipelines/{name}/unpause", post(pipelines::unpause))
        .route("/ui/runs", get(pipelines::runs))
        .route("/ui/runs/{id}", get(pipelines::run))
        .route("/ui/runs/{id}/cancel", post(pipelines::cancel))
        .route("/ui/runs/{id}/retry", post(pipelines::retry))
        .route("/ui/runs/{id}/steps/{step}", get(pipelines::step_log))
        .route("/ui/datasets", get(catalog::datasets))
        .route("/ui/solutions", get(catalog::solutions))
        .route("/ui/solutions/{name}", get(catalog::solution))
        .route("/ui/campaigns", get(campaigns::campaigns))
        .route("/ui/campaigns/{name}", get(campaigns::campaign))
        .route(
            "/ui/campaigns/{name}/rollback",
            get(campaigns::rollback_confirm).post(campaigns::rollback),
        )
        .route("/ui/forecasts", get(forecasts::forecasts))
        .route("/ui/forecasts/{name}", get(forecasts::predictor))
        .with_state(state)
}

/// A page or a redirect: what every console handler returns.
type Page = Result<Response, PageError>;

/// Why a page cannot be shown: no session (go log in), or an error shown
/// as a page in the console's frame.
pub enum PageError {
    Login {
        next: String,
    },
    Failed {
        viewer: Box<Viewer>,
        error: ApiError,
    },
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::Login { next } => {
                let to = format!("/ui/login?next={}", percent_encode(&next));
                Redirect::to(&to).into_response()
            }
            PageError::Failed { viewer, error } => {
                let status = error.status();
                let body = layout(
                    &viewer,
                    "Error",
                    html! {
                        h1 { "Something went wrong" }
                        p.error { (error.message()) }
                        p { a href="/ui/" { "Back to the pipelines" } }
                    },
                );
                (status, body).into_response()
            }
        }
    }
}

/// The logged-in browser looking at a page: its session and role.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub session_id: String,
    pub session: Session,
}

impl Viewer {
    pub fn can_act(&self) -> bool {
        self.session.role == Role::Admin
    }

    /// An error, shown in the console's frame.
    fn fail(&self, error: impl Into<ApiError>) -> PageError {
        PageError::Failed {
            viewer: Box::new(self.clone()),
            error: error.into(),
        }
    }

    /// Checks a form that acts: an admin session with its CSRF token.
    fn may_act(&self, csrf: &str) -> Result<(), PageError> {
        let caller = Caller {
            role: self.session.role,
            session: Some(self.session.clone()),
        };
        access::permit(&caller, Need::Admin, Some(csrf)).map_err(|e| self.fail(e))
    }
}

impl FromRequestParts<Arc<AppState>> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let next = parts
            .uri
            .path_and_query()
            .map_or("/ui/".to_string(), |p| p.to_string());
        let id =
            session::cookie_of(&parts.headers).ok_or(PageError::Login { next: next.clone() })?;
        let session = state.sessions.get(&id).ok_or(PageError::Login { next })?;
        Ok(Viewer {
            session_id: id,
            session,
        })
    }
}

/// A form that acts carries the session's CSRF token.
#[derive(Deserialize)]
pub struct ActForm {
    csrf: String,
}

/// The page frame: navigation, who is logged in, and the content.
pub fn layout(viewer: &Viewer, title: &str, content: Markup) -> Response {
    let role = match viewer.session.role {
        Role::Admin => "admin",
        Role::Read => "read-only",
    };
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · recflow" }
                    link rel="stylesheet" href="/ui/assets/console.css";
                    script src="/ui/assets/console.js" defer {}
                }
                body {
                    header.top {
                        a.brand href="/ui/" { "recflow" }
                        nav {
                            a href="/ui/" { "Pipelines" }
                            a href="/ui/runs" { "Runs" }
                            a href="/ui/datasets" { "Datasets" }
                            a href="/ui/solutions" { "Solutions" }
                            a href="/ui/campaigns" { "Campaigns" }
                            a href="/ui/forecasts" { "Forecasts" }
                        }
                        div.who {
                            span.role data-role=(role) { (role) }
                            form method="post" action="/ui/logout" {
                                (csrf_field(viewer))
                                button.link type="submit" { "Log out" }
                            }
                        }
                    }
                    main { (content) }
                }
            }
        }
        .into_string(),
    )
    .into_response()
}

/// The hidden CSRF field of a form that acts.
pub fn csrf_field(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(viewer.session.csrf); }
}

/// A button that posts to `action` (a form with the CSRF token), shown only
/// to a viewer who may act.
pub fn action_button(viewer: &Viewer, action: &str, label: &str, class: &str) -> Markup {
    if !viewer.can_act() {
        return html! {};
    }
    html! {
        form.inline method="post" action=(action) {
            (csrf_field(viewer))
            button type="submit" class=(class) { (label) }
        }
    }
}

/// A status as a coloured badge.
pub fn badge(status: &str) -> Markup {
    html! {
        span.badge style=(format!("background:{};color:{}", charts::status_colour(status), charts::status_ink(status))) data-status=(status) { (status) }
    }
}

/// A time for people, in UTC.
pub fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// An SVG produced by `charts` (or the forecast plot), inline. Those
/// functions escape every text they draw.
pub fn svg(svg: String) -> Markup {
    PreEscaped(svg)
}

fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Only a console path may be a redirect target after login.
fn local_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/ui/") && !n.starts_with("//") && !n.contains('\\') => {
            n.to_string()
        }
        _ => "/ui/".to_string(),
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
    failed: Option<String>,
}

async fn login_form(Query(q): Query<LoginQuery>) -> Response {
    let next = local_next(q.next.as_deref());
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    title { "Log in · recflow" }
                    link rel="stylesheet" href="/ui/assets/console.css";
                }
                body.login {
                    form.login method="post" action="/ui/login" {
                        h1 { "recflow" }
                        p { "Log in with an API token: one of " code { "RECFLOW_API_TOKENS" } " to act, or of " code { "RECFLOW_READ_TOKENS" } " to look. When neither is set, " code { "recflow serve" } " prints a token made for its process." }
                        @if q.failed.is_some() {
                            p.error id="login-error" { "That token is not one this server accepts." }
                        }
                        input type="hidden" name="next" value=(next);
                        label for="token" { "Token" }
                        input type="password" id="token" name="token" autocomplete="current-password" autofocus required;
                        button type="submit" id="login" { "Log in" }
                    }
                }
            }
        }
        .into_string(),
    )
    .into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    next: Option<String>,
}

async fn login(State(state): Shared, axum::Form(f): axum::Form<LoginForm>) -> Response {
    let next = local_next(f.next.as_deref());
    let Some(role) = state.config.auth.token_role(&f.token) else {
        let to = format!("/ui/login?failed=1&next={}", percent_encode(&next));
        return Redirect::to(&to).into_response();
    };
    let (id, _) = state.sessions.start(role);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        session::set_cookie(Some(&id))
            .parse()
            .expect("cookie value"),
    );
    (headers, Redirect::to(&next)).into_response()
}

async fn logout(viewer: Viewer, State(state): Shared, axum::Form(f): axum::Form<ActForm>) -> Page {
    if f.csrf != viewer.session.csrf {
        return Err(viewer.fail(ApiError::Forbidden(
            "the form lacks the session's CSRF token".into(),
        )));
    }
    state.sessions.end(&viewer.session_id);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        session::set_cookie(None).parse().expect("cookie value"),
    );
    Ok((StatusCode::SEE_OTHER, headers, Redirect::to("/ui/login")).into_response())
}
