//! `tcp://host:port` (default port 4952): samples as Ceilometer's TCP publisher sends
//! them, each its signed meter message in msgpack, preceded by its length as 8 bytes
//! little-endian, on one long-lived connection. The connection is made again when it
//! breaks; a batch whose write failed is written again whole on the new connection.
//! TCP has no acknowledgement, so a receiver that dies after taking bytes can lose
//! what the kernel had accepted; a receiver that closed its end is noticed before the
//! next write.

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use ceilo_plugin_api::{log_error, signing, PluginError, Sample};

use crate::client::{Failure, Request};
use crate::delivery::{Encoder, Transport};

/// Ceilometer's default port for its TCP and UDP publishers.
pub const DEFAULT_PORT: u16 = 4952;

/// The msgpack encoder: one request per batch, the frames back to back.
pub struct Msgpack {
    pub secret: Option<String>,
}

/// One sample's frame.
pub fn frame(sample: &Sample, secret: Option<&str>) -> Result<Vec<u8>, PluginError> {
    let message = signing::ceilometer::meter_message(sample, secret)?;
    let body = rmp_serde::to_vec_named(&message)
        .map_err(|e| PluginError::invalid_input(format!("msgpack: {e}")))?;
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

impl Encoder for Msgpack {
    fn encode(&mut self, batch: &[Sample]) -> Vec<Request> {
        let mut body = Vec::new();
        let mut n = 0;
        for s in batch {
            match frame(s, self.secret.as_deref()) {
                Ok(f) => {
                    body.extend_from_slice(&f);
                    n += 1;
                }
                Err(e) => log_error!("tcp publisher: sample {} left out: {e}", s.message_id()),
            }
        }
        if n == 0 {
            return Vec::new();
        }
        vec![Request {
            suffix: String::new(),
            content_type: "application/msgpack",
            body,
            samples: n,
            attachment: None,
        }]
    }
}

/// The connection to the receiver.
pub struct Tcp {
    target: String,
    timeout: Duration,
    stream: Option<TcpStream>,
}

impl Tcp {
    pub fn new(host: &str, port: u16, timeout: Duration) -> Tcp {
        let target = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Tcp {
            target,
            timeout,
            stream: None,
        }
    }

    fn connect(&self) -> Result<TcpStream, String> {
        let addrs: Vec<SocketAddr> = self
            .target
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.target))?
            .collect();
        let mut last = format!("{} resolves to no address", self.target);
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(s) => {
                    let _ = s.set_write_timeout(Some(self.timeout));
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = format!("cannot connect to {}: {e}", self.target),
            }
        }
        Err(last)
    }
}

/// Whether the receiver has closed its end (it never sends, so anything readable is
/// the end of the stream).
fn closed_by_peer(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let mut byte = [0u8; 1];
    let closed = match stream.peek(&mut byte) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    closed || stream.set_nonblocking(false).is_err()
}

impl Transport for Tcp {
    fn send(&mut self, request: &Request) -> Result<(), Failure> {
        if self.stream.as_ref().is_some_and(closed_by_peer) {
            self.stream = None;
        }
        let stream = match self.stream.as_mut() {
            Some(s) => s,
            None => self
                .stream
                .insert(self.connect().map_err(Failure::Transient)?),
        };
        stream.write_all(&request.body).map_err(|e| {
            self.stream = None;
            Failure::Transient(format!("writing to {}: {e}", self.target))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ceilo_plugin_api::SampleType;
    use std::io::Read as _;

    #[test]
    fn frames_are_length_prefixed_signed_meter_messages() {
        let s = Sample::new("cpu", SampleType::Cumulative, "ns", 2.0, "vm");
        let f = frame(&s, Some("secret")).unwrap();
        let len = u64::from_le_bytes(f[..8].try_into().unwrap()) as usize;
        assert_eq!(len, f.len() - 8);
        let m: serde_json::Value = rmp_serde::from_slice(&f[8..]).unwrap();
        assert_eq!(m["counter_name"], "cpu");
        assert!(signing::ceilometer::verify(&m, "secret"), "{m}");
    }

    #[test]
    fn reconnects_after_the_receiver_closed() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut tcp = Tcp::new("127.0.0.1", port, Duration::from_secs(2));
        let request = |b: &[u8]| Request {
            suffix: String::new(),
            content_type: "",
            body: b.to_vec(),
            samples: 1,
            attachment: None,
        };
        tcp.send(&request(b"one")).unwrap();
        let (mut first, _) = listener.accept().unwrap();
        let mut got = [0u8; 3];
        first.read_exact(&mut got).unwrap();
        drop(first); // the receiver goes away
        std::thread::sleep(Duration::from_millis(50));
        tcp.send(&request(b"two")).unwrap();
        let (mut second, _) = listener.accept().unwrap();
        second.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"two");
    }
}
