//! `GET /`: Ceilometer's version document for API clients; a browser (one that asks
//! for HTML) is sent on to the dashboard at `dashboard/`.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ApiState;

/// The version document, or a redirect to the dashboard for a browser.
pub async fn index(State(st): State<ApiState>, headers: HeaderMap) -> Response {
    if wants_html(&headers) {
        // Relative, so that it works under any URL prefix.
        return (StatusCode::SEE_OTHER, [(header::LOCATION, "dashboard/")]).into_response();
    }
    let base = super::handlers::base_url(&st, &headers);
    let v2 = json!({
        "id": "v2",
        "status": "stable",
        "updated": "2013-02-13T00:00:00Z",
        "links": [
            {"href": format!("{base}/v2"), "rel": "self"},
            {"href": "http://docs.openstack.org/", "rel": "describedby", "type": "text/html"},
        ],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.telemetry-v2+json"},
            {"base": "application/xml", "type": "application/vnd.openstack.telemetry-v2+xml"},
        ],
    });
    let doc = json!({"versions": {"values": [v2]}});
    // Spaced as Python's json module writes it, as clients matching text expect.
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}

/// A browser's navigation: `text/html` asked for explicitly (API clients ask for JSON
/// or for anything).
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',')
                .any(|p| p.split(';').next().unwrap_or("").trim() == "text/html")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_browsers_get_the_dashboard() {
        let with = |accept: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, accept.parse().unwrap());
            wants_html(&h)
        };
        assert!(with("text/html,application/xhtml+xml,*/*;q=0.8"));
        assert!(!with("application/json"));
        assert!(!with("*/*"));
        assert!(!wants_html(&HeaderMap::new()));
    }
}
