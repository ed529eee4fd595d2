//! The host's side of a plugin worker: one `ceilo plugin-worker LIB` process per
//! plugin instance, spoken to over its stdin and stdout. Every call has a deadline; a
//! worker that dies (signal, abort, exit) or misses a deadline fails that call like a
//! plugin error, is logged once, and is started again (its instance re-created with
//! the same parameters) with backoff, on the next call after the delay.

use std::collections::BTreeSet;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ceilo_plugin_api::{ErrorKind, PluginError};

use super::protocol::{frame_len, write_frame_waiting, Reply, Request};
use crate::loader::isolation::WorkerSettings;

/// The longest wait before a dead worker is started again.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(60);
/// How long a worker may take to exit after its stdin closes.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// The pipe size asked for: a 1 000-sample batch (~200 KiB) fits whole. 1 MiB is
/// Linux's default `fs.pipe-max-size` for unprivileged processes.
const PIPE_SIZE: libc::c_int = 1 << 20;
/// The largest reply buffer kept between calls.
const KEPT_REPLY_BUFFER: usize = 8 << 20;

/// Process ids of the workers alive now, so that a host that stops while a worker is
/// stuck can still end it.
fn live() -> &'static Mutex<BTreeSet<u32>> {
    static LIVE: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());
    &LIVE
}

/// Kills every worker still running (at the end of a bounded shutdown).
pub fn kill_all_workers() {
    let pids: Vec<u32> = live()
        .lock()
        .map(|l| l.iter().copied().collect())
        .unwrap_or_default();
    for pid in pids {
        if let Ok(pid) = i32::try_from(pid) {
            // SAFETY: kill(2) on a pid this process started and has not reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// One running worker process.
struct Conn {
    child: Child,
    /// The worker's stdin and stdout, non-blocking on our side: the caller's own thread
    /// writes and reads with `poll(2)`, so a worker that stops reading or answering
    /// never blocks it past its deadline, and a call costs no thread hand-offs.
    to_worker: Option<ChildStdin>,
    from_worker: ChildStdout,
    /// The last reply's bytes: one allocation reused from call to call.
    reply: Vec<u8>,
}

impl Conn {
    fn spawn(settings: &WorkerSettings, library: &Path) -> io::Result<Conn> {
        let mut cmd = Command::new(&settings.program);
        cmd.args(&settings.args)
            .arg("plugin-worker")
            .arg(library)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(limit) = settings.memory_limit {
            cmd.env("CEILO_WORKER_MEMORY_LIMIT", limit.to_string());
        }
        let mut child = cmd.spawn()?;
        if let Ok(mut l) = live().lock() {
            l.insert(child.id());
        }
        let (stdin, stdout) = match (child.stdin.take(), child.stdout.take()) {
            (Some(i), Some(o)) => (i, o),
            _ => {
                let _ = child.kill();
                return Err(io::Error::other("worker pipes missing"));
            }
        };
        for fd in [stdin.as_raw_fd(), stdout.as_raw_fd()] {
            if let Err(e) = prepare_pipe(fd) {
                let _ = child.kill();
                return Err(e);
            }
        }
        Ok(Conn {
            child,
            to_worker: Some(stdin),
            from_worker: stdout,
            reply: Vec::new(),
        })
    }

    /// Sends one request and waits for its reply until `timeout`.
    fn call(&mut self, body: Vec<u8>, timeout: Duration) -> Outcome {
        let deadline = Instant::now().checked_add(timeout);
        let Some(stdin) = self.to_worker.as_mut() else {
            return Outcome::Died;
        };
        match send(stdin, &body, deadline) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Outcome::TimedOut,
            Err(_) => return Outcome::Died,
        }
        let received = receive(&mut self.from_worker, &mut self.reply, deadline);
        let outcome = match received {
            Ok(()) => match Reply::decode(&self.reply) {
                Ok(r) => Outcome::Reply(r),
                Err(e) => Outcome::Garbled(e.to_string()),
            },
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Outcome::TimedOut,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => Outcome::Garbled(e.to_string()),
            Err(_) => Outcome::Died,
        };
        // One huge reply (a flood) must not stay allocated for the worker's lifetime.
        if self.reply.capacity() > KEPT_REPLY_BUFFER {
            self.reply = Vec::new();
        }
        outcome
    }

    /// Waits for the process to end (killing it after `grace`) and reaps it.
    fn reap(mut self, grace: Duration) -> Option<ExitStatus> {
        self.to_worker = None;
        let started = Instant::now();
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if started.elapsed() < grace => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    break self.child.wait().ok();
                }
                Err(_) => break None,
            }
        };
        if let Ok(mut l) = live().lock() {
            l.remove(&self.child.id());
        }
        status
    }

    fn kill(mut self) -> Option<ExitStatus> {
        let _ = self.child.kill();
        self.reap(Duration::ZERO)
    }
}

enum Outcome {
    Reply(Reply),
    Died,
    TimedOut,
    Garbled(String),
}

/// A plugin instance living in a worker process.
pub(crate) struct Isolated {
    settings: Arc<WorkerSettings>,
    library: Arc<Path>,
    /// `poller `crash` (libx.so)`, for logs.
    who: String,
    create: Vec<u8>,
    conn: Option<Conn>,
    deaths: u32,
    retry_at: Option<Instant>,
    /// Whether the publisher in the worker reports counters.
    pub(crate) has_stats: bool,
}

impl Isolated {
    /// Starts a worker and creates the instance in it. A failure here (the factory's
    /// error, or a worker that dies while creating) is the plugin's create failing.
    pub(crate) fn start(
        settings: Arc<WorkerSettings>,
        library: Arc<Path>,
        who: String,
        create: Request,
    ) -> Result<Isolated, PluginError> {
        let mut me = Isolated {
            settings,
            library,
            who,
            create: create.encode(),
            conn: None,
            deaths: 0,
            retry_at: None,
            has_stats: false,
        };
        me.connect("create")?;
        Ok(me)
    }

    fn connect(&mut self, what: &str) -> Result<(), PluginError> {
        let mut conn = Conn::spawn(&self.settings, &self.library).map_err(|e| {
            PluginError::unavailable(format!(
                "cannot start its worker process ({}): {e}",
                self.settings.program.display()
            ))
        })?;
        match conn.call(self.create.clone(), self.settings.call_timeout) {
            Outcome::Reply(Reply::Created { has_stats }) => {
                self.has_stats = has_stats;
                self.conn = Some(conn);
                Ok(())
            }
            Outcome::Reply(Reply::Error(e)) => {
                conn.reap(EXIT_GRACE);
                Err(e)
            }
            Outcome::Reply(other) => {
                conn.kill();
                Err(PluginError::new(format!(
                    "its worker answered `create` with {other:?}"
                )))
            }
            Outcome::Garbled(e) => {
                conn.kill();
                Err(PluginError::new(format!(
                    "its worker, during `{what}`: {e}"
                )))
            }
            Outcome::TimedOut => {
                conn.kill();
                Err(PluginError::new(format!(
                    "its worker did not finish `create` within {}s and was killed",
                    self.settings.call_timeout.as_secs()
                )))
            }
            Outcome::Died => {
                let status = conn.reap(EXIT_GRACE);
                Err(PluginError::new(format!(
                    "its worker process died during `{what}`: {}",
                    describe(status)
                )))
            }
        }
    }

    /// The default deadline of calls other than `poll`.
    pub(crate) fn call_timeout(&self) -> Duration {
        self.settings.call_timeout
    }

    /// One call: the reply, or the call's failure as a plugin error.
    pub(crate) fn call(
        &mut self,
        body: Vec<u8>,
        what: &str,
        timeout: Duration,
    ) -> Result<Reply, PluginError> {
        if self.conn.is_none() {
            self.revive(what)?;
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(PluginError::unavailable("its worker is not running"));
        };
        match conn.call(body, timeout) {
            Outcome::Reply(Reply::Error(e)) => Err(e),
            Outcome::Reply(r) => {
                self.deaths = 0;
                Ok(r)
            }
            Outcome::Died => {
                let status = self.conn.take().and_then(|c| c.reap(EXIT_GRACE));
                Err(self.lost(format!(
                    "its worker process died during `{what}`: {}",
                    describe(status)
                )))
            }
            Outcome::TimedOut => {
                if let Some(c) = self.conn.take() {
                    c.kill();
                }
                Err(self.lost(format!(
                    "did not finish `{what}` within {:.1}s: its worker process was killed",
                    timeout.as_secs_f64()
                )))
            }
            Outcome::Garbled(e) => {
                if let Some(c) = self.conn.take() {
                    c.kill();
                }
                Err(self.lost(format!("its worker sent garbage during `{what}`: {e}")))
            }
        }
    }

    /// Records the loss of the worker, logs it once, and schedules the restart.
    fn lost(&mut self, why: String) -> PluginError {
        self.deaths += 1;
        let delay = restart_delay(self.deaths);
        self.retry_at = Some(Instant::now() + delay);
        crate::metrics::global().worker_restart(&self.who);
        tracing::error!(
            target: "ceilo::worker",
            plugin = %self.who,
            deaths = self.deaths,
            "{}: {why}; restarting it in {}s",
            self.who,
            delay.as_secs()
        );
        PluginError::with_kind(ErrorKind::FAILED, why)
    }

    fn revive(&mut self, what: &str) -> Result<(), PluginError> {
        if let Some(at) = self.retry_at {
            let now = Instant::now();
            if now < at {
                return Err(PluginError::unavailable(format!(
                    "its worker process is restarting (in {:.1}s)",
                    (at - now).as_secs_f64()
                )));
            }
        }
        match self.connect(what) {
            Ok(()) => {
                tracing::info!(target: "ceilo::worker", plugin = %self.who, "{}: worker process restarted", self.who);
                self.retry_at = None;
                Ok(())
            }
            Err(e) => Err(self.lost(format!("restarting its worker failed: {e}"))),
        }
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        // Closing stdin lets the worker drop the instance (plugins flush in `drop`)
        // and exit; one that does not within the grace period is killed.
        if let Some(c) = self.conn.take() {
            c.reap(EXIT_GRACE);
        }
    }
}

/// Makes our end of a worker pipe non-blocking and, where the kernel allows, large
/// enough for a whole batch, so that a frame crosses in one write and one wake-up.
fn prepare_pipe(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl(2) on a descriptor this process owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
        // A smaller pipe only costs more wake-ups: failure is not an error.
        libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_SIZE);
    }
    Ok(())
}

/// Waits until `fd` is ready for `events` or the deadline passes (`None`: no deadline).
fn wait_ready(fd: RawFd, events: libc::c_short, deadline: Option<Instant>) -> io::Result<()> {
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                // Round up, so that a wait never ends just before its deadline.
                i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
            }
        };
        let mut p = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: poll(2) on one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n > 0 {
            // Ready, or hung up / in error: the next read or write says which.
            return Ok(());
        }
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// Writes one frame, waiting for room in the pipe until the deadline.
fn send(w: &mut ChildStdin, body: &[u8], deadline: Option<Instant>) -> io::Result<()> {
    let fd = w.as_raw_fd();
    write_frame_waiting(w, body, |_| wait_ready(fd, libc::POLLOUT, deadline))
}

/// Reads one frame into `body`.
fn receive(r: &mut ChildStdout, body: &mut Vec<u8>, deadline: Option<Instant>) -> io::Result<()> {
    let mut header = [0u8; 4];
    read_exact_by(r, &mut header, deadline)?;
    let len = frame_len(header)?;
    body.clear();
    body.resize(len, 0);
    read_exact_by(r, body, deadline)
}

/// Fills `buf` from the non-blocking pipe, waiting for data until the deadline.
fn read_exact_by(
    r: &mut ChildStdout,
    mut buf: &mut [u8],
    deadline: Option<Instant>,
) -> io::Result<()> {
    while !buf.is_empty() {
        match r.read(buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf = &mut buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_ready(r.as_raw_fd(), libc::POLLIN, deadline)?
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// 1 s, doubling per consecutive death, up to [`MAX_RESTART_DELAY`].
fn restart_delay(deaths: u32) -> Duration {
    let secs = 1u64 << deaths.saturating_sub(1).min(10);
    Duration::from_secs(secs).min(MAX_RESTART_DELAY)
}

/// "killed by signal 11 (SIGSEGV)", "exited with status 3".
pub(crate) fn describe(status: Option<ExitStatus>) -> String {
    let Some(status) = status else {
        return "its exit status is unknown".into();
    };
    if let Some(sig) = status.signal() {
        let name = match sig {
            libc::SIGSEGV => " (SIGSEGV: invalid memory access)",
            libc::SIGABRT => " (SIGABRT: aborted, e.g. out of memory under --worker-memory-limit)",
            libc::SIGKILL => " (SIGKILL: killed, e.g. by the kernel's out-of-memory killer)",
            libc::SIGBUS => " (SIGBUS)",
            libc::SIGILL => " (SIGILL)",
            libc::SIGFPE => " (SIGFPE)",
            libc::SIGTERM => " (SIGTERM)",
            _ => "",
        };
        return format!("killed by signal {sig}{name}");
    }
    match status.code() {
        Some(c) => format!("exited with status {c}"),
        None => "ended".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_then_cap() {
        let d: Vec<u64> = (1..=9).map(|n| restart_delay(n).as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
