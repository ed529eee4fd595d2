//! `load`: the 1, 5 and 15 minute load averages from `/proc/loadavg`.

use ceilo_plugin_api::{
    Context, Parameters, Plugin, PluginError, Poller, Sample, SampleBatch, SampleType,
};
use serde::Deserialize;

/// Polls `/proc/loadavg` (or the file given as `path`, for tests and containers).
pub struct Load {
    path: String,
    host: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_path")]
    path: String,
}

fn default_path() -> String {
    "/proc/loadavg".to_owned()
}

const METERS: [&str; 3] = ["load.1", "load.5", "load.15"];

impl Plugin for Load {
    const NAME: &'static str = "load";
    const DESCRIPTION: &'static str =
        "load.1, load.5, load.15: run-queue load averages from /proc/loadavg";

    fn create(parameters: &Parameters, _context: &Context) -> Result<Self, PluginError> {
        let config: Config = parameters.parse()?;
        Ok(Load {
            path: config.path,
            host: crate::host::hostname(),
        })
    }
}

impl Poller for Load {
    fn meters(&self) -> Vec<String> {
        METERS.iter().map(|m| m.to_string()).collect()
    }

    fn poll(&mut self, _resources: &[String]) -> Result<SampleBatch, PluginError> {
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| PluginError::unavailable(format!("cannot read {}: {e}", self.path)))?;
        let values = parse_loadavg(&text).ok_or_else(|| {
            PluginError::new(format!(
                "{}: unexpected content `{}`",
                self.path,
                text.trim()
            ))
        })?;
        Ok(METERS
            .iter()
            .zip(values)
            .map(|(meter, v)| {
                Sample::new(*meter, SampleType::Gauge, "process", v, self.host.as_str())
            })
            .collect())
    }
}

fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_loadavg() {
        assert_eq!(
            parse_loadavg("0.52 0.58 0.59 2/1012 12345\n"),
            Some([0.52, 0.58, 0.59])
        );
        assert_eq!(parse_loadavg("0.52 x"), None);
        assert_eq!(parse_loadavg(""), None);
    }

    #[test]
    fn polls_the_real_proc() {
        let mut p = Load::create(&Parameters::default(), &Context::default()).unwrap();
        let batch = p.poll(&[]).unwrap();
        let names: Vec<_> = batch.iter().map(|s| s.name().to_owned()).collect();
        assert_eq!(names, ["load.1", "load.5", "load.15"]);
        assert!(batch
            .iter()
            .all(|s| s.volume() >= 0.0 && s.resource_id() == p.host));
    }

    #[test]
    fn unreadable_file_is_unavailable() {
        let params = Parameters::from_json(r#"{"path": "/nonexistent/loadavg"}"#).unwrap();
        let mut p = Load::create(&params, &Context::default()).unwrap();
        let err = p.poll(&[]).unwrap_err();
        assert_eq!(err.kind(), ceilo_plugin_api::ErrorKind::UNAVAILABLE);
        assert!(err.message().contains("/nonexistent/loadavg"));
    }
}
