//! `log://`: writes each sample, as JSON, to the host's log at info level (target
//! `ceilo::plugin`). For debugging a pipeline; `log://?level=debug` logs at debug.

use ceilo_plugin_api::log::{self, Level};
use ceilo_plugin_api::{Context, Parameters, Plugin, PluginError, Publisher, Sample};

/// Logs samples through the host.
pub struct LogPublisher {
    level: Level,
}

impl Plugin for LogPublisher {
    const NAME: &'static str = "log";
    const DESCRIPTION: &'static str =
        "log://[?level=info|debug] — each sample to the host's log, for debugging";

    fn create(parameters: &Parameters, _context: &Context) -> Result<Self, PluginError> {
        let raw: String = parameters.get("url")?.unwrap_or_else(|| "log://".into());
        let url = url::Url::parse(&raw)
            .map_err(|e| PluginError::invalid_parameters(format!("`{raw}`: {e}")))?;
        let mut level = Level::Info;
        for (k, v) in url.query_pairs() {
            level = match (k.as_ref(), v.as_ref()) {
                ("level", "info") => Level::Info,
                ("level", "debug") => Level::Debug,
                ("level", "warn") => Level::Warn,
                _ => {
                    return Err(PluginError::invalid_parameters(format!(
                        "`{k}={v}` in `{raw}`: the only option is level=info|debug|warn"
                    )))
                }
            };
        }
        Ok(LogPublisher { level })
    }
}

impl Publisher for LogPublisher {
    fn publish(&mut self, batch: &[Sample]) -> Result<(), PluginError> {
        if !log::enabled(self.level) {
            return Ok(());
        }
        for s in batch {
            let json =
                serde_json::to_string(s).map_err(|e| PluginError::invalid_input(e.to_string()))?;
            log::log(
                self.level,
                "ceilo::publisher::log",
                format_args!("sample {json}"),
            );
        }
        Ok(())
    }
}
