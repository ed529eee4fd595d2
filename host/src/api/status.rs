//! `GET /v2/plugins` (what this process has loaded, refused and failed, and its
//! reloads), and the small status server of `ceilo agent` and `ceilo notification`
//! (`--status-listen`): that view and `/metrics`, nothing else.

use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::watch;

use super::ApiError;

/// `GET /v2/plugins`.
pub async fn plugins() -> Response {
    match crate::live::status::view() {
        Some(v) => Json(v).into_response(),
        None => ApiError::not_found(
            "this process loads no plugins (`ceilo api` serves the store only; ask the agent's --status-listen, or `ceilo run`)",
        )
        .into_response(),
    }
}

/// `GET /metrics` of the Prometheus export: the polled meters, then ceilo's own.
async fn exported_metrics() -> Response {
    let mut text = crate::services::exporter::render();
    text.push_str(&crate::metrics::global().prometheus());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
        .into_response()
}

/// Serves the Prometheus export (`--prometheus-listen`) on `listener` until `stop`
/// turns true.
pub async fn serve_exporter(listener: tokio::net::TcpListener, stop: watch::Receiver<bool>) {
    crate::services::exporter::enable();
    let app = Router::new()
        .route("/metrics", get(exported_metrics))
        .fallback(|| async { ApiError::not_found("this endpoint serves /metrics") });
    serve_until(listener, app, stop, "the Prometheus endpoint").await;
}

async fn serve_until(
    listener: tokio::net::TcpListener,
    app: Router,
    mut stop: watch::Receiver<bool>,
    what: &str,
) {
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stopped)
        .await
    {
        tracing::error!(target: "ceilo::api", "{what} stopped: {e}");
    }
}

/// Serves `/metrics` and `/v2/plugins` on `listener` until `stop` turns true.
pub async fn serve_status(listener: tokio::net::TcpListener, stop: watch::Receiver<bool>) {
    let app = Router::new()
        .route("/metrics", get(super::handlers::metrics))
        .route("/v2/plugins", get(plugins))
        .fallback(|| async {
            ApiError::not_found("this status endpoint serves /metrics and /v2/plugins")
        });
    serve_until(listener, app, stop, "the status endpoint").await;
}
