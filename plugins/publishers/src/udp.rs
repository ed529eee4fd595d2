//! `udp://host:port[?format=json|msgpack]`: one datagram per sample, JSON by default
//! or msgpack (what Ceilometer's UDP publisher sends). Datagrams are fire-and-forget:
//! a sample too large for one datagram is refused with its id rather than truncated.

use std::net::{ToSocketAddrs, UdpSocket};

use ceilo_plugin_api::{Context, Parameters, Plugin, PluginError, Publisher, Sample};

/// Sends samples as UDP datagrams.
pub struct UdpPublisher {
    socket: UdpSocket,
    msgpack: bool,
    target: String,
}

/// The largest UDP payload over IPv4.
const MAX_DATAGRAM: usize = 65_507;

impl Plugin for UdpPublisher {
    const NAME: &'static str = "udp";
    const DESCRIPTION: &'static str =
        "udp://host:port[?format=json|msgpack] — one datagram per sample";

    fn create(parameters: &Parameters, _context: &Context) -> Result<Self, PluginError> {
        let raw: String = parameters
            .get("url")?
            .ok_or_else(|| PluginError::invalid_parameters("missing `url` (udp://host:port)"))?;
        let url = url::Url::parse(&raw)
            .map_err(|e| PluginError::invalid_parameters(format!("`{raw}`: {e}")))?;
        let (Some(host), Some(port)) = (url.host_str(), url.port()) else {
            return Err(PluginError::invalid_parameters(format!(
                "`{raw}` needs a host and a port: udp://127.0.0.1:4952"
            )));
        };
        let mut msgpack = false;
        for (k, v) in url.query_pairs() {
            msgpack = match (k.as_ref(), v.as_ref()) {
                ("format", "json") => false,
                ("format", "msgpack") => true,
                _ => {
                    return Err(PluginError::invalid_parameters(format!(
                        "`{k}={v}` in `{raw}`: the only option is format=json|msgpack"
                    )))
                }
            };
        }
        let target = format!("{host}:{port}");
        let addr = target
            .to_socket_addrs()
            .map_err(|e| {
                PluginError::invalid_parameters(format!("`{target}` cannot be resolved: {e}"))
            })?
            .next()
            .ok_or_else(|| {
                PluginError::invalid_parameters(format!("`{target}` resolves to no address"))
            })?;
        let bind = if addr.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let socket = UdpSocket::bind(bind)
            .map_err(|e| PluginError::unavailable(format!("cannot open a UDP socket: {e}")))?;
        socket
            .connect(addr)
            .map_err(|e| PluginError::unavailable(format!("cannot reach {target}: {e}")))?;
        Ok(UdpPublisher {
            socket,
            msgpack,
            target,
        })
    }
}

impl Publisher for UdpPublisher {
    fn publish(&mut self, batch: &[Sample]) -> Result<(), PluginError> {
        for s in batch {
            let bytes = if self.msgpack {
                rmp_serde::to_vec_named(s).map_err(|e| PluginError::invalid_input(e.to_string()))?
            } else {
                serde_json::to_vec(s).map_err(|e| PluginError::invalid_input(e.to_string()))?
            };
            if bytes.len() > MAX_DATAGRAM {
                return Err(PluginError::invalid_input(format!(
                    "sample {} is {} bytes, more than one datagram holds",
                    s.message_id(),
                    bytes.len()
                )));
            }
            self.socket.send(&bytes).map_err(|e| {
                PluginError::unavailable(format!("sending to {}: {e}", self.target))
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ceilo_plugin_api::SampleType;
    use std::time::Duration;

    fn publisher(url: String) -> Result<UdpPublisher, PluginError> {
        let p = Parameters::from_json(&serde_json::json!({ "url": url }).to_string()).unwrap();
        UdpPublisher::create(&p, &Context::default())
    }

    #[test]
    fn sends_one_datagram_per_sample_in_either_format() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let port = rx.local_addr().unwrap().port();
        let samples: Vec<Sample> = (0..2)
            .map(|i| Sample::new("m", SampleType::Gauge, "u", i as f64, "r"))
            .collect();

        publisher(format!("udp://127.0.0.1:{port}"))
            .unwrap()
            .publish(&samples)
            .unwrap();
        let mut buf = [0u8; 65536];
        for want in &samples {
            let n = rx.recv(&mut buf).unwrap();
            let got: Sample = serde_json::from_slice(&buf[..n]).unwrap();
            assert_eq!(&got, want);
        }

        publisher(format!("udp://127.0.0.1:{port}?format=msgpack"))
            .unwrap()
            .publish(&samples[..1])
            .unwrap();
        let n = rx.recv(&mut buf).unwrap();
        let got: Sample = rmp_serde::from_slice(&buf[..n]).unwrap();
        assert_eq!(got, samples[0]);
    }

    #[test]
    fn bad_urls() {
        assert!(publisher("udp://127.0.0.1".into())
            .err()
            .unwrap()
            .message()
            .contains("needs a host and a port"));
        assert!(publisher("udp://127.0.0.1:9?format=xml".into())
            .err()
            .unwrap()
            .message()
            .contains("format=json|msgpack"));
    }
}
