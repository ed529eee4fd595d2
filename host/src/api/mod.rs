//! The HTTP API, compatible with Ceilometer's v2 (paths, parameters, field names,
//! status codes, error shape), over either store. Statistics are computed by the
//! store; the API only shapes the answer.

mod auth;
mod complex_query;
mod dashboard;
mod error;
mod events;
mod handlers;
mod models;
mod post;
mod query;
mod root;
mod server;
mod status;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub use auth::{Auth, Principal, SharedAuth};
pub use error::ApiError;
pub use server::{serve, tls_config, ServerError, ServerOptions, TlsFiles, MAX_BODY_BYTES};
pub use status::{serve_exporter, serve_status};

use crate::pipeline::Runtime;
use crate::storage::Storage;

/// What the API serves from.
#[derive(Clone)]
pub struct ApiState {
    /// The store.
    pub store: Arc<dyn Storage>,
    /// Who may ask what.
    pub auth: Arc<SharedAuth>,
    /// The pipeline POSTed samples go through (none: only `?direct=True` works).
    pub pipeline: Option<Arc<Mutex<Runtime>>>,
    /// Where the API is mounted and who may call it from a browser.
    pub deployment: Deployment,
}

/// How the API is deployed: under a URL prefix (behind a proxy that passes it on, as
/// Ceilometer's paste pipeline could be mounted), and which browser origins CORS lets
/// in (as oslo.middleware's `cors` filter, `allowed_origin`).
#[derive(Debug, Clone, Default)]
pub struct Deployment {
    /// `/telemetry`, or empty for the root. Links in answers carry it.
    pub prefix: String,
    /// Origins allowed by CORS (`http://host[:port]`); none: no CORS headers at all.
    pub cors_origins: Vec<String>,
    /// Served over TLS: links are `https://`.
    pub https: bool,
}

impl Deployment {
    /// A prefix as given on the command line, normalised: `/x/y`, or empty for `/`.
    /// Refused when it is not a path.
    pub fn normalise_prefix(text: &str) -> Result<String, String> {
        let trimmed = text.trim_end_matches('/');
        if trimmed.is_empty() {
            return Ok(String::new());
        }
        if !trimmed.starts_with('/') || trimmed.contains(['?', '#', ' ']) {
            return Err(format!(
                "`{}` is not a URL path (expected e.g. /telemetry)",
                crate::redact::shorten(text, 80)
            ));
        }
        Ok(trimmed.to_owned())
    }
}

/// The API's routes, under the deployment's prefix, with its CORS.
pub fn router(state: ApiState) -> Router {
    let deployment = state.deployment.clone();
    let routes = routes();
    let routes = if deployment.prefix.is_empty() {
        routes
    } else {
        // `nest` matches `/telemetry` for the inner `/`; `/telemetry/` is the root too.
        Router::new()
            .route(&format!("{}/", deployment.prefix), get(root::index))
            .nest(&deployment.prefix, routes)
            .fallback(|| async {
                ApiError::not_found(
                    "no such resource in the v2 API (it is served under its URL prefix)",
                )
            })
    };
    let routes = routes
        .layer(middleware::from_fn(http_behaviour))
        .with_state(state);
    match cors_layer(&deployment.cors_origins) {
        Some(cors) => routes.layer(cors),
        None => routes,
    }
}

/// CORS for the configured origins: a preflight from one of them gets the
/// `Access-Control-Allow-*` headers, any other origin none (and so the browser
/// refuses), as oslo.middleware's filter answers.
fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if allowed.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(allowed))
            .allow_methods([
                axum::http::Method::GET,
                axum::http::Method::POST,
                axum::http::Method::PUT,
                axum::http::Method::DELETE,
                axum::http::Method::PATCH,
            ])
            .allow_headers([
                header::CONTENT_TYPE,
                header::ACCEPT,
                header::HeaderName::from_static("x-auth-token"),
                header::HeaderName::from_static("x-project-id"),
                header::HeaderName::from_static("x-user-id"),
            ])
            .max_age(std::time::Duration::from_secs(3600)),
    )
}

/// 405 with the methods Ceilometer's controller exposes in `Allow` (the router would
/// list HEAD too).
fn only(methods: &'static str) -> axum::routing::MethodRouter<ApiState> {
    axum::routing::any(move || async move {
        let mut res = ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: format!("method not allowed on this resource (allowed: {methods})"),
        }
        .into_response();
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(methods));
        res
    })
}

async fn alarms_gone() -> ApiError {
    ApiError {
        status: StatusCode::GONE,
        message: "alarms URLs is unavailable when Aodh is disabled or unavailable. (ceilo has no alarms: use Aodh's API)".into(),
    }
}

fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v2/meters", get(handlers::meters).fallback(only("GET")))
        .route(
            "/v2/meters/{name}",
            get(handlers::meter_samples)
                .post(post::post_samples)
                .fallback(only("GET, POST")),
        )
        .route(
            "/v2/meters/{name}/statistics",
            get(handlers::statistics).fallback(only("GET")),
        )
        .route("/v2/samples", get(handlers::samples).fallback(only("GET")))
        .route(
            "/v2/samples/{id}",
            get(handlers::sample).fallback(only("GET")),
        )
        .route(
            "/v2/resources",
            get(handlers::resources).fallback(only("GET")),
        )
        .route(
            "/v2/resources/{id}",
            get(handlers::resource).fallback(only("GET")),
        )
        .route(
            "/v2/capabilities",
            get(handlers::capabilities).fallback(only("GET")),
        )
        .route("/v2/events", get(events::events).fallback(only("GET")))
        .route(
            "/v2/events/{message_id}",
            get(events::event).fallback(only("GET")),
        )
        .route(
            "/v2/event_types",
            get(events::event_types).fallback(only("GET")),
        )
        .route(
            "/v2/event_types/{event_type}",
            get(events::event_type).fallback(only("GET")),
        )
        .route(
            "/v2/event_types/{event_type}/traits",
            get(events::traits).fallback(only("GET")),
        )
        .route(
            "/v2/event_types/{event_type}/traits/{name}",
            get(events::trait_values).fallback(only("GET")),
        )
        .route(
            "/v2/query/samples",
            axum::routing::post(complex_query::query_samples).fallback(only("POST")),
        )
        // Alarms live in Aodh: 410, as Ceilometer answers without it.
        .route("/v2/alarms", axum::routing::any(alarms_gone))
        .route("/v2/alarms/{*rest}", axum::routing::any(alarms_gone))
        .route("/v2/query/alarms", axum::routing::any(alarms_gone))
        .route("/v2/query/alarms/{*rest}", axum::routing::any(alarms_gone))
        .route("/metrics", get(handlers::metrics))
        .route("/v2/plugins", get(status::plugins).fallback(only("GET")))
        .route("/", get(root::index))
        .route("/dashboard/", get(dashboard::index))
        .route("/dashboard/app.js", get(dashboard::app))
        .route("/dashboard/uplot.js", get(dashboard::uplot_js))
        .route("/dashboard/uplot.css", get(dashboard::uplot_css))
        .fallback(|| async { ApiError::not_found("no such resource in the v2 API") })
}

/// Ceilometer's HTTP behaviour around every route: 406 when `Accept` excludes JSON,
/// and framework errors (405 with its `Allow` header, 415, 422) in the JSON error shape.
async fn http_behaviour(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let not_json = path == "/" || path.ends_with("/metrics") || dashboard::is_dashboard(path);
    if !not_json && !accepts_json(req.headers().get(header::ACCEPT)) {
        return ApiError {
            status: StatusCode::NOT_ACCEPTABLE,
            message: "only application/json is served".into(),
        }
        .into_response();
    }
    let res = next.run(req).await;
    let json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.starts_with("text/plain; charset"));
    if res.status().is_success() || json {
        return res;
    }
    let status = res.status();
    let (mut parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this resource".to_owned(),
        _ if text.is_empty() => status.canonical_reason().unwrap_or("error").to_owned(),
        _ => text,
    };
    let body = serde_json::to_vec(&error::body(&message)).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

fn accepts_json(accept: Option<&HeaderValue>) -> bool {
    let Some(accept) = accept.and_then(|v| v.to_str().ok()) else {
        return true;
    };
    accept.split(',').any(|part| {
        let media = part.split(';').next().unwrap_or("").trim();
        let q_zero = part
            .split(';')
            .skip(1)
            .any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
        !q_zero && matches!(media, "application/json" | "application/*" | "*/*" | "")
    })
}
