//! The worker's side: `ceilo plugin-worker LIB` loads one library with the same checks
//! as the host, creates the one instance the host asks for, and answers its calls
//! until its stdin closes. Whatever the plugin does to this process — crash, abort,
//! exhaust its memory limit — the host sees a dead worker, never a dead host.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::os::fd::FromRawFd;
use std::path::Path;
use std::time::Duration;

use ceilo_plugin_api::PluginError;

use super::protocol::{read_frame_into, write_frame, Reply, Request};
use crate::loader::abi_adapters::{self, Entry};
use crate::loader::instance::{
    NotificationAbi, PollLimits, PollerAbi, PublisherAbi, TraitAbi, TransformerAbi,
};
use crate::loader::{load_library, PluginKind};

/// Why a worker stopped other than by its stdin closing.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Setting the process up failed.
    #[error("plugin worker: {0}")]
    Setup(String),
    /// The library was refused.
    #[error("plugin worker: {library} refused: {reason}")]
    Refused {
        /// The library.
        library: String,
        /// Why.
        reason: String,
    },
    /// The pipe to the host failed or carried garbage.
    #[error("plugin worker: talking to the host failed: {0}")]
    Io(String),
}

enum Instance {
    Poller(Box<dyn PollerAbi>),
    Notification(Box<dyn NotificationAbi>),
    Transformer(Box<dyn TransformerAbi>),
    Publisher(Box<dyn PublisherAbi>),
    Trait(Box<dyn TraitAbi>),
}

/// Serves the host until it closes stdin.
pub fn serve(library: &Path) -> Result<(), WorkerError> {
    let protocol_out = protect_stdout()?;
    watch_parent();
    apply_memory_limit()?;
    let lib = load_library(library).map_err(|reason| WorkerError::Refused {
        library: library.display().to_string(),
        reason,
    })?;
    let io = |e: std::io::Error| WorkerError::Io(e.to_string());
    let mut input = BufReader::new(std::io::stdin().lock());
    let mut output = BufWriter::new(protocol_out);

    let mut frame = Vec::new();
    if !read_frame_into(&mut input, &mut frame).map_err(io)? {
        return Ok(());
    }
    let first = &frame;
    let created = match Request::decode(first) {
        Ok(Request::Create {
            kind,
            name,
            params,
            ctx,
        }) => create(&lib.entries, kind, &name, &params, &ctx),
        Ok(other) => Err(PluginError::new(format!(
            "the first request must be create, not {other:?}"
        ))),
        Err(e) => Err(PluginError::new(e.to_string())),
    };
    let mut instance = match created {
        Ok(i) => i,
        Err(e) => {
            write_frame(&mut output, &Reply::Error(e).encode()).map_err(io)?;
            return Ok(());
        }
    };
    let has_stats = matches!(&instance, Instance::Publisher(p) if p.has_stats());
    write_frame(&mut output, &Reply::Created { has_stats }.encode()).map_err(io)?;

    while read_frame_into(&mut input, &mut frame).map_err(io)? {
        let reply = match Request::decode(&frame) {
            Ok(req) => answer(&mut instance, req),
            Err(e) => return Err(WorkerError::Io(e.to_string())),
        };
        write_frame(&mut output, &reply.encode()).map_err(io)?;
    }
    // stdin closed: the instance drops here (plugins flush in `drop`).
    drop(instance);
    output.flush().map_err(io)
}

fn create(
    entries: &[Entry],
    kind: PluginKind,
    name: &str,
    params: &str,
    ctx: &str,
) -> Result<Instance, PluginError> {
    let entry = entries
        .iter()
        .find(|e| e.kind == kind && e.name == name)
        .ok_or_else(|| PluginError::new(format!("the library has no {kind} named `{name}`")))?;
    let f = entry.factory;
    Ok(match kind {
        PluginKind::Poller => Instance::Poller(abi_adapters::create_poller(f, params, ctx)?),
        PluginKind::Notification => {
            Instance::Notification(abi_adapters::create_notification(f, params, ctx)?)
        }
        PluginKind::Transformer => {
            Instance::Transformer(abi_adapters::create_transformer(f, params, ctx)?)
        }
        PluginKind::Publisher => {
            Instance::Publisher(abi_adapters::create_publisher(f, params, ctx)?)
        }
        PluginKind::Trait => Instance::Trait(abi_adapters::create_trait(f, params, ctx)?),
    })
}

fn answer(instance: &mut Instance, req: Request) -> Reply {
    let result = match (instance, req) {
        (Instance::Poller(p), Request::Meters) => p.meters().map(Reply::Strings),
        (
            Instance::Poller(p),
            Request::Poll {
                resources,
                max_samples,
            },
        ) => {
            let limits = PollLimits {
                deadline: None,
                max_samples: usize::try_from(max_samples).unwrap_or(usize::MAX),
            };
            p.poll(&resources, &limits).map(|o| Reply::Polled {
                batch: o.samples,
                cut: o.cut,
            })
        }
        (Instance::Notification(n), Request::EventTypes) => n.event_types().map(Reply::Strings),
        (Instance::Notification(n), Request::Meters) => n.meters().map(Reply::Strings),
        (Instance::Notification(n), Request::Handle { notification_json }) => {
            n.handle(&notification_json).map(Reply::Samples)
        }
        (Instance::Transformer(t), Request::Transform { batch }) => {
            Ok(transformed(t.handle(batch)))
        }
        (Instance::Transformer(t), Request::TransformFlush) => Ok(transformed(t.flush())),
        (Instance::Publisher(p), Request::Publish { batch }) => {
            p.publish(&batch).map(|()| Reply::Done)
        }
        (Instance::Publisher(p), Request::PublisherFlush) => p.flush().map(|()| Reply::Done),
        (Instance::Publisher(p), Request::Stats) => p.stats().map(Reply::Counters),
        (Instance::Trait(t), Request::TraitValues { matches_json }) => t
            .trait_values(&matches_json)
            .map(|v| Reply::Strings(vec![v])),
        (_, req) => Err(PluginError::new(format!(
            "request {req:?} does not fit this plugin's kind"
        ))),
    };
    result.unwrap_or_else(Reply::Error)
}

fn transformed(o: crate::loader::instance::RawTransformOutput) -> Reply {
    Reply::Transformed {
        batch: o.samples,
        failed: o.failed,
        first_error: o.first_error,
    }
}

/// Keeps the protocol's stdout to ourselves: a plugin that prints would corrupt it, so
/// the protocol moves to a copy of the descriptor and fd 1 becomes stderr.
fn protect_stdout() -> Result<File, WorkerError> {
    // SAFETY: plain descriptor calls on this process's own standard descriptors.
    unsafe {
        let fd = libc::dup(1);
        if fd < 0 {
            return Err(WorkerError::Setup("dup(stdout) failed".into()));
        }
        if libc::dup2(2, 1) < 0 {
            return Err(WorkerError::Setup("dup2(stderr, stdout) failed".into()));
        }
        Ok(File::from_raw_fd(fd))
    }
}

/// Ends the worker when the host is gone, even while the plugin is stuck in a call:
/// a worker is reparented when its host dies.
fn watch_parent() {
    // SAFETY: getppid(2) has no preconditions.
    let parent = unsafe { libc::getppid() };
    let _ = std::thread::Builder::new()
        .name("ceilo-worker-parent".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_millis(250));
            // SAFETY: as above; _exit(2) ends the process without running plugin code.
            unsafe {
                if libc::getppid() != parent {
                    libc::_exit(0);
                }
            }
        });
}

/// `CEILO_WORKER_MEMORY_LIMIT` bytes of address space: an allocation past it fails,
/// which aborts the worker rather than pushing the machine into its OOM killer.
fn apply_memory_limit() -> Result<(), WorkerError> {
    let Ok(text) = std::env::var("CEILO_WORKER_MEMORY_LIMIT") else {
        return Ok(());
    };
    let bytes: u64 = text.parse().map_err(|_| {
        WorkerError::Setup(format!("CEILO_WORKER_MEMORY_LIMIT={text} is not a number"))
    })?;
    let limit = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: setrlimit(2) with a valid struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) } != 0 {
        return Err(WorkerError::Setup(format!(
            "cannot limit memory to {bytes} bytes: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}
