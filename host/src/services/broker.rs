//! Connecting to RabbitMQ: `amqp://` or `amqps://` (rustls; the system's roots, or
//! the CA in `cacertfile=PATH`, the RabbitMQ URI option for it). The option is taken
//! out of the URL before lapin reads the rest (`heartbeat=`, `frame_max=`…).

use lapin::tcp::OwnedTLSConfig;
use lapin::{Connection, ConnectionBuilder, ConnectionProperties};

/// Why a connection was not made.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// `cacertfile=` names a file that cannot be read.
    #[error("cacertfile={path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The broker did not take the connection.
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
}

/// The URL without `cacertfile=`, and that file's path.
pub fn split_ca(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut ca = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("cacertfile=") {
            Some(path) => {
                ca = Some(
                    url::form_urlencoded::parse(format!("p={path}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default(),
                );
                false
            }
            None => !kv.is_empty(),
        })
        .collect();
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (url, ca)
}

/// Connects to `url`.
pub async fn connect(url: &str) -> Result<Connection, BrokerError> {
    let (url, ca) = split_ca(url);
    let cert_chain = match ca {
        None => None,
        Some(path) => Some(
            std::fs::read_to_string(&path).map_err(|e| BrokerError::CaFile {
                reason: format!("cannot read the CA certificate: {e}"),
                path,
            })?,
        ),
    };
    let tls = OwnedTLSConfig {
        identity: None,
        cert_chain,
    };
    Ok(ConnectionBuilder::new()?
        .with_uri_str(url)
        .with_properties(ConnectionProperties::default())
        .with_tls_config(tls)
        .connect()
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cacertfile_is_taken_out_of_the_url() {
        assert_eq!(split_ca("amqp://h/%2f"), ("amqp://h/%2f".into(), None));
        assert_eq!(
            split_ca("amqps://h:5671/%2f?heartbeat=10&cacertfile=%2Fetc%2Fca.pem"),
            (
                "amqps://h:5671/%2f?heartbeat=10".into(),
                Some("/etc/ca.pem".into())
            )
        );
        assert_eq!(
            split_ca("amqps://h/?cacertfile=/ca.pem"),
            ("amqps://h/".into(), Some("/ca.pem".into()))
        );
    }
}
