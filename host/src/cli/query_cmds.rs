//! `ceilo meters`, `ceilo samples METER`, `ceilo statistics METER`, `ceilo resources`,
//! `ceilo events`: queries over the HTTP API, as tables or JSON.

use std::io::Write;

use serde_json::Value;

use super::table::write_table;
use super::OutputFormat;

/// Where the API is and how to query it.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiClientArgs {
    /// The API.
    #[arg(long, env = "CEILO_API_URL", default_value = "http://127.0.0.1:8777")]
    pub api_url: String,
    /// Token, sent as X-Auth-Token.
    #[arg(long, env = "CEILO_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A filter FIELD<op>VALUE, op one of = != < <= > >= (repeatable), e.g.
    /// `-q resource_id=vm1 -q 'timestamp>=2026-01-01T00:00:00'`.
    #[arg(short = 'q', long = "query")]
    pub query: Vec<String>,
    /// At most this many results.
    #[arg(long)]
    pub limit: Option<u32>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

/// What to ask.
#[derive(Debug, Clone)]
pub enum Query {
    /// `GET /v2/meters`.
    Meters,
    /// `GET /v2/samples` of one meter.
    Samples {
        /// The meter.
        meter: String,
    },
    /// `GET /v2/meters/METER/statistics`.
    Statistics {
        /// The meter.
        meter: String,
        /// Period in seconds.
        period: Option<u64>,
        /// Group-by fields.
        groupby: Vec<String>,
    },
    /// `GET /v2/resources`.
    Resources,
    /// `GET /v2/events`, of one event type when given. A `-q` field may carry the
    /// trait's type: `memory_mb:integer>=512` (string by default).
    Events {
        /// The event type.
        event_type: Option<String>,
    },
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A `-q` filter is malformed.
    #[error("-q `{0}`: expected FIELD<op>VALUE with op one of = != < <= > >=")]
    Filter(String),
    /// The API could not be reached.
    #[error("cannot reach the API at {url}: {reason} (is `ceilo api` or `ceilo run` running? set --api-url)")]
    Unreachable {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// The API answered with an error.
    #[error("the API answered {status}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Its faultstring.
        message: String,
    },
    /// Output failed.
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
}

fn filter(text: &str) -> Result<[String; 3], QueryError> {
    for (sym, op) in [
        ("<=", "le"),
        (">=", "ge"),
        ("!=", "ne"),
        ("<", "lt"),
        (">", "gt"),
        ("=", "eq"),
    ] {
        if let Some((field, value)) = text.split_once(sym) {
            if field.trim().is_empty() {
                break;
            }
            return Ok([
                field.trim().to_owned(),
                op.to_owned(),
                value.trim().to_owned(),
            ]);
        }
    }
    Err(QueryError::Filter(text.to_owned()))
}

fn url_for(q: &Query, args: &ApiClientArgs) -> Result<String, QueryError> {
    let mut params = url::form_urlencoded::Serializer::new(String::new());
    let mut filters: Vec<[String; 3]> = args
        .query
        .iter()
        .map(|f| filter(f))
        .collect::<Result<_, _>>()?;
    let mut types = vec![String::new(); filters.len()];
    let path = match q {
        Query::Events { event_type } => {
            for (f, t) in filters.iter_mut().zip(types.iter_mut()) {
                if let Some((name, kind)) = f[0].split_once(':') {
                    (*t, f[0]) = (kind.to_owned(), name.to_owned());
                }
            }
            if let Some(e) = event_type {
                filters.insert(0, ["event_type".into(), "eq".into(), e.clone()]);
                types.insert(0, String::new());
            }
            "/v2/events".to_owned()
        }
        Query::Meters => "/v2/meters".to_owned(),
        Query::Resources => "/v2/resources".to_owned(),
        Query::Samples { meter } => {
            filters.insert(0, ["meter".into(), "eq".into(), meter.clone()]);
            "/v2/samples".to_owned()
        }
        Query::Statistics {
            meter,
            period,
            groupby,
        } => {
            if let Some(p) = period {
                params.append_pair("period", &p.to_string());
            }
            for g in groupby {
                params.append_pair("groupby", g);
            }
            format!("/v2/meters/{meter}/statistics")
        }
    };
    types.resize(filters.len(), String::new());
    for ([f, op, v], t) in filters.iter().zip(&types) {
        params.append_pair("q.field", f);
        params.append_pair("q.op", op);
        params.append_pair("q.value", v);
        params.append_pair("q.type", t);
    }
    if let Some(l) = args.limit {
        params.append_pair("limit", &l.to_string());
    }
    let query = params.finish();
    let base = args.api_url.trim_end_matches('/');
    Ok(if query.is_empty() {
        format!("{base}{path}")
    } else {
        format!("{base}{path}?{query}")
    })
}

pub(super) fn fetch(url: &str, token: Option<&str>) -> Result<Value, QueryError> {
    fetch_as(url, token, false)
}

/// `identify`: without a token, say who is asking as Panko's events API wants it
/// without Keystone (an admin, since an API without tokens trusts its callers).
fn fetch_as(url: &str, token: Option<&str>, identify: bool) -> Result<Value, QueryError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into();
    let mut req = agent.get(url).header("Accept", "application/json");
    match token {
        Some(t) => req = req.header("X-Auth-Token", t),
        None if identify => {
            req = req
                .header("X-User-Id", "ceilo-cli")
                .header("X-Project-Id", "ceilo-cli")
                .header("X-Roles", "admin");
        }
        None => {}
    }
    let mut res = req.call().map_err(|e| QueryError::Unreachable {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    let status = res.status().as_u16();
    let text = res
        .body_mut()
        .read_to_string()
        .map_err(|e| QueryError::Unreachable {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status >= 400 {
        let message = v["error_message"]["faultstring"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string());
        return Err(QueryError::Api { status, message });
    }
    Ok(v)
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{}", (f * 1e6).round() / 1e6),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// Runs a query and prints the answer.
pub fn query_command(
    q: &Query,
    args: &ApiClientArgs,
    out: &mut dyn Write,
) -> Result<(), QueryError> {
    let url = url_for(q, args)?;
    let events = matches!(q, Query::Events { .. });
    let url = if events && args.token.is_none() {
        // Every project's events: an identified caller would see only its own.
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}q.field=all_tenants&q.op=eq&q.type=&q.value=True")
    } else {
        url
    };
    let v = fetch_as(&url, args.token.as_deref(), events)?;
    if args.format == OutputFormat::Json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        )?;
        return Ok(());
    }
    let items = v.as_array().cloned().unwrap_or_default();
    let pick =
        |o: &Value, keys: &[&str]| -> Vec<String> { keys.iter().map(|k| cell(&o[*k])).collect() };
    let (header, rows): (Vec<String>, Vec<Vec<String>>) = match q {
        Query::Meters => {
            let keys = [
                "name",
                "type",
                "unit",
                "resource_id",
                "project_id",
                "user_id",
                "source",
            ];
            (
                keys.iter().map(|k| k.to_uppercase()).collect(),
                items.iter().map(|o| pick(o, &keys)).collect(),
            )
        }
        Query::Samples { .. } => {
            let keys = [
                "timestamp",
                "volume",
                "unit",
                "resource_id",
                "project_id",
                "id",
            ];
            (
                keys.iter().map(|k| k.to_uppercase()).collect(),
                items.iter().map(|o| pick(o, &keys)).collect(),
            )
        }
        Query::Resources => {
            let keys = [
                "resource_id",
                "project_id",
                "user_id",
                "source",
                "first_sample_timestamp",
                "last_sample_timestamp",
            ];
            (
                keys.iter().map(|k| k.to_uppercase()).collect(),
                items.iter().map(|o| pick(o, &keys)).collect(),
            )
        }
        Query::Events { .. } => {
            let header = ["GENERATED", "EVENT_TYPE", "MESSAGE_ID", "TRAITS"]
                .map(str::to_owned)
                .to_vec();
            let rows = items
                .iter()
                .map(|o| {
                    let traits: Vec<String> = o["traits"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|t| format!("{}={}", cell(&t["name"]), cell(&t["value"])))
                        .collect();
                    let mut r = pick(o, &["generated", "event_type", "message_id"]);
                    r.push(crate::redact::shorten(&traits.join(" "), 160));
                    r
                })
                .collect();
            (header, rows)
        }
        Query::Statistics { groupby, .. } => {
            let keys = [
                "period_start",
                "period_end",
                "count",
                "min",
                "max",
                "avg",
                "sum",
                "unit",
            ];
            let mut header: Vec<String> = keys[..2].iter().map(|k| k.to_uppercase()).collect();
            header.extend(groupby.iter().map(|g| g.to_uppercase()));
            header.extend(keys[2..].iter().map(|k| k.to_uppercase()));
            let rows = items
                .iter()
                .map(|o| {
                    let mut r = pick(o, &keys[..2]);
                    r.extend(groupby.iter().map(|g| cell(&o["groupby"][g.as_str()])));
                    r.extend(pick(o, &keys[2..]));
                    r
                })
                .collect();
            (header, rows)
        }
    };
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    write_table(out, &header, &rows)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_with_every_operator() {
        assert_eq!(
            filter("resource_id=vm").unwrap(),
            ["resource_id".to_owned(), "eq".into(), "vm".into()]
        );
        assert_eq!(filter("timestamp>=2026-01-01T00:00:00").unwrap()[1], "ge");
        assert_eq!(filter("volume!=3").unwrap()[1], "ne");
        assert_eq!(filter("volume<3").unwrap()[1], "lt");
        assert!(filter("novalue").is_err());
        assert!(filter("=x").is_err());
    }
}
