//! The HTTP API, compatible with Ceilometer's v2 (paths, parameters, field names,
//! status codes, error shape), over either store. Statistics are computed by the
//! store; the API only shapes the answer.

mod auth;
mod dashboard;
mod error;
mod handlers;
mod models;
mod post;
mod query;
mod server;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub use auth::{Auth, Principal};
pub use error::ApiError;
pub use server::{serve, tls_config, ServerError, ServerOptions, TlsFiles, MAX_BODY_BYTES};

use crate::pipeline::Runtime;
use crate::storage::Storage;

/// What the API serves from.
#[derive(Clone)]
pub struct ApiState {
    /// The store.
    pub store: Arc<dyn Storage>,
    /// Who may ask what.
    pub auth: Arc<Auth>,
    /// The pipeline POSTed samples go through (none: only `?direct=True` works).
    pub pipeline: Option<Arc<Mutex<Runtime>>>,
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v2/meters", get(handlers::meters))
        .route(
            "/v2/meters/{name}",
            get(handlers::meter_samples).post(post::post_samples),
        )
        .route("/v2/meters/{name}/statistics", get(handlers::statistics))
        .route("/v2/samples", get(handlers::samples))
        .route("/v2/samples/{id}", get(handlers::sample))
        .route("/v2/resources", get(handlers::resources))
        .route("/v2/resources/{id}", get(handlers::resource))
        .route("/v2/capabilities", get(handlers::capabilities))
        .route("/metrics", get(handlers::metrics))
        .route("/", get(dashboard::index))
        .route("/dashboard/app.js", get(dashboard::app))
        .route("/dashboard/uplot.js", get(dashboard::uplot_js))
        .route("/dashboard/uplot.css", get(dashboard::uplot_css))
        .fallback(|| async { ApiError::not_found("no such resource in the v2 API") })
        .layer(middleware::from_fn(http_behaviour))
        .with_state(state)
}

/// Ceilometer's HTTP behaviour around every route: 406 when `Accept` excludes JSON,
/// and framework errors (405 with its `Allow` header, 415, 422) in the JSON error shape.
async fn http_behaviour(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let not_json = path == "/metrics" || dashboard::is_dashboard(path);
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
