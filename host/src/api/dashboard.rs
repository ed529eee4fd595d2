//! The dashboard: a static page (embedded in the binary, uPlot vendored from npm, no
//! CDN) that lists meters and plots a meter's statistics per resource, refreshing.

use axum::http::header;
use axum::response::IntoResponse;

const INDEX: &str = include_str!("dashboard/index.html");
const APP: &str = include_str!("dashboard/app.js");
const UPLOT_JS: &str = include_str!("dashboard/vendor/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("dashboard/vendor/uplot/uPlot.min.css");

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// `GET /dashboard/` (and `GET /` for a browser, see `root`).
pub async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", INDEX)
}

/// `GET /dashboard/app.js`.
pub async fn app() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", APP)
}

/// `GET /dashboard/uplot.js`.
pub async fn uplot_js() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", UPLOT_JS)
}

/// `GET /dashboard/uplot.css`.
pub async fn uplot_css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", UPLOT_CSS)
}

/// Whether a path is the dashboard's (served whatever the request accepts).
pub fn is_dashboard(path: &str) -> bool {
    path.contains("/dashboard/")
}
