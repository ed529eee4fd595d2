//! What the host and a plugin worker say to each other over the worker's stdin and
//! stdout: length-prefixed frames (u32, little endian), each one request or one reply,
//! in a compact binary form (samples cross in batches; strings as length + UTF-8).
//! Both ends are the same `ceilo` binary, so the format needs no version of its own.

use std::io::{self, IoSlice, Read, Write};

use ceilo_plugin_api::{
    Counter, ErrorKind, PluginError, Sample, SampleBatch, SampleParts, SampleType,
};

use crate::loader::PluginKind;

/// The largest frame either side accepts: far above any sane batch, low enough that a
/// corrupt length cannot make the host allocate without bound.
pub(crate) const MAX_FRAME: usize = 1 << 30;

/// A call into the worker's one plugin instance.
#[derive(Debug, Clone)]
pub(crate) enum Request {
    /// The first request: build the instance (factory inputs as the host prepared them).
    Create {
        kind: PluginKind,
        name: String,
        params: String,
        ctx: String,
    },
    Meters,
    Poll {
        resources: Vec<String>,
        max_samples: u64,
    },
    EventTypes,
    Handle {
        notification_json: String,
    },
    Transform {
        batch: SampleBatch,
    },
    TransformFlush,
    Publish {
        batch: SampleBatch,
    },
    PublisherFlush,
    Stats,
    TraitValues {
        matches_json: String,
    },
}

/// The worker's answer to one request.
#[derive(Debug)]
pub(crate) enum Reply {
    Created {
        has_stats: bool,
    },
    Done,
    Strings(Vec<String>),
    Polled {
        batch: SampleBatch,
        cut: u64,
    },
    Samples(SampleBatch),
    Transformed {
        batch: SampleBatch,
        failed: u64,
        first_error: Option<PluginError>,
    },
    Counters(Vec<Counter>),
    Error(PluginError),
}

/// A frame that does not decode (a bug, or a worker that wrote garbage).
#[derive(Debug, thiserror::Error)]
#[error("malformed worker message: {0}")]
pub(crate) struct ProtocolError(pub String);

/// Writes one frame and flushes it: one `writev` for the length and a large body.
pub(crate) fn write_frame(w: &mut impl Write, body: &[u8]) -> io::Result<()> {
    // A blocking writer never reports WouldBlock: pass it on as the error it is.
    write_frame_waiting(w, body, Err)?;
    w.flush()
}

/// Writes one frame; when the writer is non-blocking and full, `wait` is called with
/// the WouldBlock error and either returns once it can go on or fails the write.
pub(crate) fn write_frame_waiting(
    w: &mut impl Write,
    body: &[u8],
    mut wait: impl FnMut(io::Error) -> io::Result<()>,
) -> io::Result<()> {
    let len = u32::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?
        .to_le_bytes();
    let mut bufs = [IoSlice::new(&len), IoSlice::new(body)];
    let mut bufs = &mut bufs[..];
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait(e)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads one frame into `body` (its allocation reused from frame to frame); `false` at
/// a clean end of stream.
pub(crate) fn read_frame_into(r: &mut impl Read, body: &mut Vec<u8>) -> io::Result<bool> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    let len = frame_len(len)?;
    body.clear();
    body.resize(len, 0);
    r.read_exact(body)?;
    Ok(true)
}

/// The length a frame header announces, refused over [`MAX_FRAME`].
pub(crate) fn frame_len(header: [u8; 4]) -> io::Result<usize> {
    let len = u32::from_le_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over the limit"),
        ));
    }
    Ok(len)
}

/// Reads one frame; `None` at a clean end of stream.
#[cfg(test)]
pub(crate) fn read_frame(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    Ok(read_frame_into(r, &mut body)?.then_some(body))
}

// --- encoding ---

/// A sample's encoded size besides its strings: six string lengths, the type, volume,
/// timestamp, the two option tags and the monotonic time.
const SAMPLE_FIXED_BYTES: usize = 6 * 8 + 1 + 8 + 8 + 1 + 8;

struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
            None => self.u8(0),
        }
    }
    fn strings(&mut self, v: &[String]) {
        self.u64(v.len() as u64);
        v.iter().for_each(|s| self.str(s));
    }
    fn error(&mut self, e: &PluginError) {
        self.u8(kind_code(e.kind()));
        self.str(e.message());
    }
    fn samples(&mut self, batch: &[Sample]) {
        // Sized up front: a batch is encoded in one allocation, never regrown.
        let opt = |s: Option<&str>| 1 + s.map_or(0, |s| 8 + s.len());
        let bytes: usize = batch
            .iter()
            .map(|s| {
                SAMPLE_FIXED_BYTES
                    + s.name().len()
                    + s.unit().len()
                    + opt(s.user_id())
                    + opt(s.project_id())
                    + s.resource_id().len()
                    + s.resource_metadata_json().len()
                    + s.source().len()
                    + s.message_id().len()
            })
            .sum();
        self.0.reserve(8 + bytes);
        self.u64(batch.len() as u64);
        for s in batch {
            self.str(s.name());
            self.u8(s.sample_type() as u8);
            self.str(s.unit());
            self.f64(s.volume());
            self.opt_str(s.user_id());
            self.opt_str(s.project_id());
            self.str(s.resource_id());
            self.u64(s.timestamp_micros() as u64);
            self.str(s.resource_metadata_json());
            self.str(s.source());
            self.str(s.message_id());
            match s.monotonic_time() {
                Some(t) => {
                    self.u8(1);
                    self.f64(t);
                }
                None => self.u8(0),
            }
        }
    }
}

fn kind_code(k: ErrorKind) -> u8 {
    match k {
        ErrorKind::INVALID_PARAMETERS => 1,
        ErrorKind::UNAVAILABLE => 2,
        ErrorKind::PANIC => 3,
        ErrorKind::INVALID_INPUT => 4,
        _ => 0,
    }
}

fn kind_from(code: u8) -> ErrorKind {
    match code {
        1 => ErrorKind::INVALID_PARAMETERS,
        2 => ErrorKind::UNAVAILABLE,
        3 => ErrorKind::PANIC,
        4 => ErrorKind::INVALID_INPUT,
        _ => ErrorKind::FAILED,
    }
}

fn plugin_kind_code(k: PluginKind) -> u8 {
    match k {
        PluginKind::Poller => 0,
        PluginKind::Notification => 1,
        PluginKind::Transformer => 2,
        PluginKind::Publisher => 3,
        PluginKind::Trait => 4,
    }
}

impl Request {
    /// The request as a frame body.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut e = Enc(Vec::with_capacity(64));
        match self {
            Request::Create {
                kind,
                name,
                params,
                ctx,
            } => {
                e.u8(1);
                e.u8(plugin_kind_code(*kind));
                e.str(name);
                e.str(params);
                e.str(ctx);
            }
            Request::Meters => e.u8(2),
            Request::Poll {
                resources,
                max_samples,
            } => {
                e.u8(3);
                e.strings(resources);
                e.u64(*max_samples);
            }
            Request::EventTypes => e.u8(4),
            Request::Handle { notification_json } => {
                e.u8(5);
                e.str(notification_json);
            }
            Request::Transform { batch } => {
                e.u8(6);
                e.samples(batch);
            }
            Request::TransformFlush => e.u8(7),
            Request::Publish { batch } => {
                e.u8(8);
                e.samples(batch);
            }
            Request::PublisherFlush => e.u8(9),
            Request::Stats => e.u8(10),
            Request::TraitValues { matches_json } => {
                e.u8(11);
                e.str(matches_json);
            }
        }
        e.0
    }

    /// Decodes a frame body.
    pub(crate) fn decode(body: &[u8]) -> Result<Request, ProtocolError> {
        let mut d = Dec { buf: body, at: 0 };
        let r = match d.u8()? {
            1 => Request::Create {
                kind: match d.u8()? {
                    0 => PluginKind::Poller,
                    1 => PluginKind::Notification,
                    2 => PluginKind::Transformer,
                    3 => PluginKind::Publisher,
                    4 => PluginKind::Trait,
                    k => return Err(ProtocolError(format!("unknown plugin kind {k}"))),
                },
                name: d.string()?,
                params: d.string()?,
                ctx: d.string()?,
            },
            2 => Request::Meters,
            3 => Request::Poll {
                resources: d.strings()?,
                max_samples: d.u64()?,
            },
            4 => Request::EventTypes,
            5 => Request::Handle {
                notification_json: d.string()?,
            },
            6 => Request::Transform {
                batch: d.samples()?,
            },
            7 => Request::TransformFlush,
            8 => Request::Publish {
                batch: d.samples()?,
            },
            9 => Request::PublisherFlush,
            10 => Request::Stats,
            11 => Request::TraitValues {
                matches_json: d.string()?,
            },
            t => return Err(ProtocolError(format!("unknown request {t}"))),
        };
        d.end()?;
        Ok(r)
    }
}

/// Encodes a publish request from a borrowed batch (no copy into a `Request`).
pub(crate) fn encode_publish(batch: &[Sample]) -> Vec<u8> {
    let mut e = Enc(Vec::with_capacity(64 + batch.len() * 160));
    e.u8(8);
    e.samples(batch);
    e.0
}

impl Reply {
    /// The reply as a frame body.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut e = Enc(Vec::with_capacity(64));
        match self {
            Reply::Created { has_stats } => {
                e.u8(1);
                e.u8(u8::from(*has_stats));
            }
            Reply::Done => e.u8(2),
            Reply::Strings(v) => {
                e.u8(3);
                e.strings(v);
            }
            Reply::Polled { batch, cut } => {
                e.u8(4);
                e.samples(batch);
                e.u64(*cut);
            }
            Reply::Samples(batch) => {
                e.u8(5);
                e.samples(batch);
            }
            Reply::Transformed {
                batch,
                failed,
                first_error,
            } => {
                e.u8(6);
                e.samples(batch);
                e.u64(*failed);
                match first_error {
                    Some(err) => {
                        e.u8(1);
                        e.error(err);
                    }
                    None => e.u8(0),
                }
            }
            Reply::Counters(v) => {
                e.u8(7);
                e.u64(v.len() as u64);
                for c in v {
                    e.str(c.name());
                    e.u64(c.value());
                }
            }
            Reply::Error(err) => {
                e.u8(8);
                e.error(err);
            }
        }
        e.0
    }

    /// Decodes a frame body.
    pub(crate) fn decode(body: &[u8]) -> Result<Reply, ProtocolError> {
        let mut d = Dec { buf: body, at: 0 };
        let r = match d.u8()? {
            1 => Reply::Created {
                has_stats: d.u8()? != 0,
            },
            2 => Reply::Done,
            3 => Reply::Strings(d.strings()?),
            4 => Reply::Polled {
                batch: d.samples()?,
                cut: d.u64()?,
            },
            5 => Reply::Samples(d.samples()?),
            6 => Reply::Transformed {
                batch: d.samples()?,
                failed: d.u64()?,
                first_error: match d.u8()? {
                    0 => None,
                    _ => Some(d.error()?),
                },
            },
            7 => {
                let n = d.len()?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let name = d.string()?;
                    v.push(Counter::new(name, d.u64()?));
                }
                Reply::Counters(v)
            }
            8 => Reply::Error(d.error()?),
            t => return Err(ProtocolError(format!("unknown reply {t}"))),
        };
        d.end()?;
        Ok(r)
    }
}

// --- decoding ---

struct Dec<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| ProtocolError("truncated".into()))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, ProtocolError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }
    fn f64(&mut self) -> Result<f64, ProtocolError> {
        Ok(f64::from_bits(self.u64()?))
    }
    /// A count, bounded by what is left (each element takes at least a byte).
    fn len(&mut self) -> Result<usize, ProtocolError> {
        let n = self.u64()?;
        let left = (self.buf.len() - self.at) as u64;
        if n > left {
            return Err(ProtocolError(format!("count {n} exceeds the frame")));
        }
        Ok(n as usize)
    }
    fn str(&mut self) -> Result<&'a str, ProtocolError> {
        let n = self.len()?;
        std::str::from_utf8(self.take(n)?).map_err(|e| ProtocolError(e.to_string()))
    }
    fn string(&mut self) -> Result<String, ProtocolError> {
        self.str().map(str::to_owned)
    }
    fn opt_str(&mut self) -> Result<Option<String>, ProtocolError> {
        match self.u8()? {
            0 => Ok(None),
            _ => self.string().map(Some),
        }
    }
    fn strings(&mut self) -> Result<Vec<String>, ProtocolError> {
        let n = self.len()?;
        (0..n).map(|_| self.string()).collect()
    }
    fn error(&mut self) -> Result<PluginError, ProtocolError> {
        let kind = kind_from(self.u8()?);
        Ok(PluginError::with_kind(kind, self.str()?))
    }
    fn samples(&mut self) -> Result<SampleBatch, ProtocolError> {
        let n = self.len()?;
        let mut batch = SampleBatch::with_capacity(n);
        for _ in 0..n {
            let name = self.string()?;
            let sample_type = match self.u8()? {
                0 => SampleType::Gauge,
                1 => SampleType::Delta,
                2 => SampleType::Cumulative,
                t => return Err(ProtocolError(format!("unknown sample type {t}"))),
            };
            let parts = SampleParts {
                name,
                sample_type,
                unit: self.string()?,
                volume: self.f64()?,
                user_id: self.opt_str()?,
                project_id: self.opt_str()?,
                resource_id: self.string()?,
                timestamp_micros: self.u64()? as i64,
                resource_metadata_json: self.string()?,
                source: self.string()?,
                message_id: self.string()?,
                monotonic_time: match self.u8()? {
                    0 => None,
                    _ => Some(self.f64()?),
                },
            };
            batch.push(Sample::from_parts(parts).map_err(|e| ProtocolError(e.to_string()))?);
        }
        Ok(batch)
    }
    fn end(&self) -> Result<(), ProtocolError> {
        if self.at == self.buf.len() {
            Ok(())
        } else {
            Err(ProtocolError(format!(
                "{} trailing bytes",
                self.buf.len() - self.at
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Sample {
        let mut s = Sample::new("cpu", SampleType::Cumulative, "ns", 1.5e9, "vm-1")
            .with_project_id("p")
            .with_monotonic_time(12.25)
            .with_resource_metadata(serde_json::json!({"cpu_number": 2, "host": "h"}));
        s.set_source("openstack");
        s
    }

    #[test]
    fn samples_cross_unchanged() {
        let batch: SampleBatch =
            vec![sample(), Sample::new("m", SampleType::Gauge, "", -0.0, "r")].into();
        let body = Request::Transform {
            batch: batch.clone(),
        }
        .encode();
        match Request::decode(&body).unwrap() {
            Request::Transform { batch: back } => assert_eq!(back, batch),
            other => panic!("{other:?}"),
        }
        let reply = Reply::Transformed {
            batch: batch.clone(),
            failed: 3,
            first_error: Some(PluginError::invalid_input("bad")),
        };
        match Reply::decode(&reply.encode()).unwrap() {
            Reply::Transformed {
                batch: back,
                failed,
                first_error,
            } => {
                assert_eq!(back, batch);
                assert_eq!(failed, 3);
                assert_eq!(first_error, Some(PluginError::invalid_input("bad")));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let good = Reply::Polled {
            batch: vec![sample()].into(),
            cut: 0,
        }
        .encode();
        for cut in 0..good.len() {
            assert!(Reply::decode(&good[..cut]).is_err());
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut body = good.clone();
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let i = (state as usize) % body.len();
                body[i] = (state >> 32) as u8;
            }
            let _ = Reply::decode(&body);
            let _ = Request::decode(&body);
        }
    }

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"abc").unwrap();
        write_frame(&mut buf, b"").unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r).unwrap().unwrap(), b"abc");
        assert_eq!(read_frame(&mut r).unwrap().unwrap(), b"");
        assert!(read_frame(&mut r).unwrap().is_none());
    }
}
