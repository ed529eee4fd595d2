//! `http`: for each URL, `http.response.time` (ms, until the response headers
//! arrive) and `http.status` (the status code; 0 when no response came, with the
//! reason in the metadata). The URLs are the source's `resources` when it lists any,
//! else the poller's `urls` parameter (`--plugin-config`). Plain `http://` only: this
//! build has no TLS.

use std::time::{Duration, Instant};

use ceilo_plugin_api::{
    log_debug, Context, Parameters, Plugin, PluginError, Poller, Sample, SampleBatch, SampleType,
};
use serde::Deserialize;
use serde_json::json;

/// Probes URLs.
pub struct Http {
    agent: ureq::Agent,
    /// Probed when the source lists no resources.
    urls: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Seconds before a request is abandoned.
    #[serde(default = "five")]
    timeout: f64,
    /// What to probe when the source's `resources` lists nothing.
    #[serde(default)]
    urls: Vec<String>,
}

fn five() -> f64 {
    5.0
}

impl Plugin for Http {
    const NAME: &'static str = "http";
    const DESCRIPTION: &'static str =
        "http.response.time (ms) and http.status for each URL in the source's resources";
    fn create(parameters: &Parameters, _: &Context) -> Result<Self, PluginError> {
        let c: Config = parameters.parse()?;
        if !(c.timeout.is_finite() && c.timeout > 0.0) {
            return Err(PluginError::invalid_parameters(format!(
                "`timeout` must be positive seconds, found {}",
                c.timeout
            )));
        }
        if let Some(bad) = c.urls.iter().find(|u| !u.starts_with("http://")) {
            return Err(PluginError::invalid_parameters(format!(
                "`urls`: `{}` is not a plain http:// URL (this build has no TLS)",
                bad.chars().take(80).collect::<String>()
            )));
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs_f64(c.timeout)))
            .build();
        Ok(Http {
            agent: ureq::Agent::new_with_config(config),
            urls: c.urls,
        })
    }
}

impl Poller for Http {
    fn meters(&self) -> Vec<String> {
        vec!["http.response.time".into(), "http.status".into()]
    }

    fn poll(&mut self, resources: &[String]) -> Result<SampleBatch, PluginError> {
        let resources = if resources.is_empty() {
            self.urls.as_slice()
        } else {
            resources
        };
        if resources.is_empty() {
            log_debug!("http: no URLs in the source's `resources` nor in `urls`; nothing to probe");
        }
        let mut out = SampleBatch::new();
        for url in resources {
            let start = Instant::now();
            match self.agent.get(url.as_str()).call() {
                Ok(resp) => {
                    let ms = start.elapsed().as_secs_f64() * 1e3;
                    let status = resp.status().as_u16();
                    let md = json!({"url": url, "status": status});
                    out.push(
                        Sample::new(
                            "http.response.time",
                            SampleType::Gauge,
                            "ms",
                            ms,
                            url.as_str(),
                        )
                        .with_resource_metadata(md.clone()),
                    );
                    out.push(
                        Sample::new(
                            "http.status",
                            SampleType::Gauge,
                            "status",
                            f64::from(status),
                            url.as_str(),
                        )
                        .with_resource_metadata(md),
                    );
                }
                Err(e) => {
                    let md = json!({"url": url, "error": e.to_string()});
                    out.push(
                        Sample::new(
                            "http.status",
                            SampleType::Gauge,
                            "status",
                            0.0,
                            url.as_str(),
                        )
                        .with_resource_metadata(md),
                    );
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn probes_a_real_server_and_reports_a_dead_one() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            conn.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
        });
        let dead = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap(); // closed when dropped
        let mut p = Http::create(
            &Parameters::from_json(r#"{"timeout": 2}"#).unwrap(),
            &Context::default(),
        )
        .unwrap();
        let urls = vec![format!("http://{addr}/health"), format!("http://{dead}/")];
        let out = p.poll(&urls).unwrap();
        server.join().unwrap();
        let got: Vec<(&str, &str, f64)> = out
            .iter()
            .map(|s| (s.name(), s.resource_id(), s.volume()))
            .collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!((got[1].0, got[1].2), ("http.status", 503.0));
        assert!(got[0].0 == "http.response.time" && got[0].2 >= 0.0);
        assert_eq!(
            (got[2].0, got[2].1, got[2].2),
            ("http.status", urls[1].as_str(), 0.0)
        );
        assert!(out[2].metadata_value("error").is_some());
    }

    #[test]
    fn probes_its_urls_parameter_when_the_source_lists_none() {
        let dead = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let url = format!("http://{dead}/");
        let params = serde_json::json!({"urls": [url], "timeout": 1}).to_string();
        let mut p = Http::create(
            &Parameters::from_json(&params).unwrap(),
            &Context::default(),
        )
        .unwrap();
        let out = p.poll(&[]).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].resource_id(), out[0].volume()), (url.as_str(), 0.0));
        // The source's resources, when it lists any, win.
        let other = format!("http://{dead}/other");
        let out = p.poll(std::slice::from_ref(&other)).unwrap();
        assert_eq!(out[0].resource_id(), other);

        let bad = Http::create(
            &Parameters::from_json(r#"{"urls": ["https://example.com/"]}"#).unwrap(),
            &Context::default(),
        );
        assert!(bad.is_err_and(|e| e.to_string().contains("not a plain http:// URL")));
    }
}
