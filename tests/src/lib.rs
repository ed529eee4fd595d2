//! Helpers shared by the end-to-end tests: building the plugin libraries, laying out
//! plugin directories, building out-of-tree libraries, running the `ceilo` binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

pub mod receivers;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// cargo's target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                workspace_root().join(p)
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    // Cargo describes the test's own package to the test process (`CARGO_PKG_NAME`,
    // `CARGO_MANIFEST_DIR`, …). Passed on, these reach build scripts that watch them
    // (ring's), so a build from a test and one from the shell each found the other's
    // dirty and rebuilt ring, rustls, lapin and the host: about a minute each time.
    const ABOUT_THE_TEST: [&str; 5] = [
        "CARGO_MANIFEST_",
        "CARGO_PKG_",
        "CARGO_CRATE_",
        "CARGO_BIN_",
        "CARGO_PRIMARY_PACKAGE",
    ];
    for (key, _) in std::env::vars_os() {
        let set_for_the_test = key
            .to_str()
            .is_some_and(|k| ABOUT_THE_TEST.iter().any(|p| k.starts_with(p)));
        if set_for_the_test {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// The built-in plugin libraries (crate names).
pub const BUILT_IN: [&str; 7] = [
    "ceilo_plugin_system",
    "ceilo_plugin_transformers",
    "ceilo_plugin_publishers",
    "ceilo_plugin_notifications",
    "ceilo_plugin_amqp",
    "ceilo_plugin_traits",
    "ceilo_plugin_remote",
];

/// Builds the host and every plugin library of the workspace (debug), once per test
/// process, and returns the directory holding them.
pub fn build_workspace() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build_profile(false)).clone()
}

/// As [`build_workspace`], optimised (`--release`), for benchmarks.
pub fn build_workspace_release() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build_profile(true)).clone()
}

fn build_profile(release: bool) -> PathBuf {
    let mut cmd = cargo();
    cmd.args(["build", "--workspace", "--quiet"]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd
        .current_dir(workspace_root())
        .status()
        .expect("cannot run cargo");
    assert!(status.success(), "cargo build --workspace failed");
    target_dir().join(if release { "release" } else { "debug" })
}

/// The path of a workspace plugin library by crate name (`ceilo_plugin_system`).
pub fn library(crate_name: &str) -> PathBuf {
    let p = build_workspace().join(format!("lib{crate_name}.so"));
    assert!(p.is_file(), "{} was not built", p.display());
    p
}

/// The `ceilo` binary.
pub fn ceilo_bin() -> PathBuf {
    build_workspace().join("ceilo")
}

/// A temporary plugin directory holding copies of `files`, each under the given name.
pub fn plugin_dir(files: &[(&Path, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (from, name) in files {
        std::fs::copy(from, dir.path().join(name))
            .unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
    dir
}

/// A temporary plugin directory holding the four built-in plugin libraries.
pub fn built_in_plugin_dir() -> tempfile::TempDir {
    let libs: Vec<(PathBuf, String)> = BUILT_IN
        .iter()
        .map(|c| (library(c), format!("lib{c}.so")))
        .collect();
    let refs: Vec<(&Path, &str)> = libs
        .iter()
        .map(|(p, n)| (p.as_path(), n.as_str()))
        .collect();
    plugin_dir(&refs)
}

/// A shared object from the system that is certainly not a ceilo plugin (libm).
pub fn system_shared_object() -> PathBuf {
    let candidates = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/lib/aarch64-linux-gnu/libm.so.6",
        "/usr/lib/aarch64-linux-gnu/libm.so.6",
        "/lib64/libm.so.6",
        "/usr/lib64/libm.so.6",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("no libm.so.6 found on this system")
}

/// Runs `ceilo` with `args`; returns (exit code, stdout, stderr).
pub fn run_ceilo(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(ceilo_bin())
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("CEILO_PLUGIN_DIR")
        .output()
        .expect("cannot run ceilo");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// How to change a copy of plugin-api before building the example against it.
pub enum ApiChange {
    /// Build against plugin-api exactly as it is.
    None,
    /// Pretend to be plugin-api 2.0: the ABI it declares becomes 2.0.
    AbiMajor2,
    /// Pretend to be a newer minor: the library declares ABI 1.4.
    AbiMinorNewer,
    /// Change `Sample`'s layout (two fields swapped) without changing the version.
    SampleLayout,
    /// plugin-api as it is, but the example's own version set to this (a new build
    /// of the same library, as a vendor ships one).
    ExampleVersion(&'static str),
}

/// Builds the out-of-tree example (`examples/third-party-plugin`) the way a third party
/// does, with `cargo build --manifest-path`, optionally against a modified copy of
/// plugin-api, and returns the built library.
pub fn build_example(change: ApiChange) -> PathBuf {
    // The builds share one target directory (to build dependencies once); one at a time.
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let root = workspace_root();
    let example = root.join("examples/third-party-plugin");
    let (manifest, lib_name, _keep) = match change {
        ApiChange::None => (
            example.join("Cargo.toml"),
            "acme_ceilo_plugins".to_owned(),
            None,
        ),
        ApiChange::ExampleVersion(version) => {
            let work = tempfile::tempdir().expect("temp dir");
            let ex = work.path().join("example");
            copy_tree(&example, &ex);
            let package = format!("acme-ceilo-plugins-v{}", version.replace('.', "-"));
            edit(
                &ex.join("Cargo.toml"),
                "name = \"acme-ceilo-plugins\"\nversion = \"0.3.0\"",
                &format!("name = \"{package}\"\nversion = \"{version}\""),
            );
            edit(
                &ex.join("Cargo.toml"),
                "ceilo-plugin-api = { path = \"../../plugin-api\", version = \"1\" }",
                &format!(
                    "ceilo-plugin-api = {{ path = \"{}\" }}",
                    root.join("plugin-api").display()
                ),
            );
            (ex.join("Cargo.toml"), package.replace('-', "_"), Some(work))
        }
        ApiChange::AbiMajor2 | ApiChange::AbiMinorNewer | ApiChange::SampleLayout => {
            let tag = match change {
                ApiChange::AbiMajor2 => "major2",
                ApiChange::AbiMinorNewer => "minor2",
                _ => "layout",
            };
            let work = tempfile::tempdir().expect("temp dir");
            let api = work.path().join("plugin-api");
            copy_tree(&root.join("plugin-api"), &api);
            match change {
                ApiChange::AbiMajor2 => {
                    edit(
                        &api.join("Cargo.toml"),
                        "version = \"1.3.0\"",
                        "version = \"2.0.0\"",
                    );
                    edit(
                        &api.join("src/abi/v1_3.rs"),
                        "VersionStrings::new(\"1.3.0\")",
                        "VersionStrings::new(\"2.0.0\")",
                    );
                }
                ApiChange::AbiMinorNewer => edit(
                    &api.join("src/abi/v1_3.rs"),
                    "VersionStrings::new(\"1.3.0\")",
                    "VersionStrings::new(\"1.4.0\")",
                ),
                _ => edit(
                    &api.join("src/sample.rs"),
                    "    name: Text,\n    unit: Text,",
                    "    unit: Text,\n    name: Text,",
                ),
            }
            let ex = work.path().join("example");
            copy_tree(&example, &ex);
            let package = format!("acme-ceilo-plugins-{tag}");
            edit(
                &ex.join("Cargo.toml"),
                "name = \"acme-ceilo-plugins\"",
                &format!("name = \"{package}\""),
            );
            edit(
                &ex.join("Cargo.toml"),
                "ceilo-plugin-api = { path = \"../../plugin-api\", version = \"1\" }",
                &format!("ceilo-plugin-api = {{ path = \"{}\" }}", api.display()),
            );
            (ex.join("Cargo.toml"), package.replace('-', "_"), Some(work))
        }
    };
    build_out_of_tree(&manifest, &[&lib_name]).remove(0)
}

/// Builds the workspace of `manifest` the way a third party builds plugins
/// (`cargo build --manifest-path`, into `target/out-of-tree`, shared by every such
/// build so dependencies build once) and returns the libraries named `libs`.
fn build_out_of_tree(manifest: &Path, libs: &[&str]) -> Vec<PathBuf> {
    let target = target_dir().join("out-of-tree");
    let out = cargo()
        .args(["build", "--quiet", "--workspace", "--manifest-path"])
        .arg(manifest)
        .arg("--target-dir")
        .arg(&target)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("cannot run cargo");
    assert!(
        out.status.success(),
        "building {} failed:\n{}",
        manifest.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    libs.iter()
        .map(|n| {
            let p = target.join("debug").join(format!("lib{n}.so"));
            assert!(p.is_file(), "{} missing after the build", p.display());
            p
        })
        .collect()
}

/// The plugin libraries built for the released plugin ABIs: `tests/released-abi` (and
/// its `v1.2` and `v1.3`), workspaces of their own built with `cargo build --manifest-path`
/// against the frozen copies of plugin-api as released (never the workspace's crate).
pub struct ReleasedAbiPlugins {
    /// Built for ABI 1.0.
    pub v1_0: PathBuf,
    /// Built for ABI 1.1.
    pub v1_1: PathBuf,
    /// Built for ABI 1.2.
    pub v1_2: PathBuf,
    /// Built for ABI 1.3 (with a trait plugin).
    pub v1_3: PathBuf,
}

/// Builds [`ReleasedAbiPlugins`] (once per test process).
pub fn build_released_abi_plugins() -> ReleasedAbiPlugins {
    static BUILT: OnceLock<(PathBuf, PathBuf, PathBuf, PathBuf)> = OnceLock::new();
    let (v1_0, v1_1, v1_2, v1_3) = BUILT
        .get_or_init(|| {
            let root = workspace_root().join("tests/released-abi");
            let mut libs = build_out_of_tree(
                &root.join("Cargo.toml"),
                &["released_abi_1_0", "released_abi_1_1"],
            );
            let v1_2 =
                build_out_of_tree(&root.join("v1.2/Cargo.toml"), &["released_abi_1_2"]).remove(0);
            let v1_3 =
                build_out_of_tree(&root.join("v1.3/Cargo.toml"), &["released_abi_1_3"]).remove(0);
            let v1_1 = libs.remove(1);
            (libs.remove(0), v1_1, v1_2, v1_3)
        })
        .clone();
    ReleasedAbiPlugins {
        v1_0,
        v1_1,
        v1_2,
        v1_3,
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name();
        if name == "target" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).expect("copy");
        }
    }
}

fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).expect("read");
    assert!(
        text.contains(from),
        "{} no longer contains {from:?}: update the test",
        file.display()
    );
    std::fs::write(file, text.replace(from, to)).expect("write");
}

/// The RabbitMQ the tests use (`CEILO_TEST_AMQP_URL`, default the local broker
/// `tests/run.sh` starts). `None` (the test skips) when it is unreachable, unless
/// `CEILO_REQUIRE_SERVICES=1`, which makes that a failure.
pub fn rabbitmq() -> Option<String> {
    let url = std::env::var("CEILO_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let addr = "127.0.0.1:5672".parse().expect("address");
    if std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).is_ok() {
        return Some(url);
    }
    if std::env::var("CEILO_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("RabbitMQ is not reachable on 127.0.0.1:5672 and CEILO_REQUIRE_SERVICES=1: tests/run.sh installs and starts it");
    }
    eprintln!("skipped: RabbitMQ is not reachable on 127.0.0.1:5672 (tests/run.sh installs and starts it)");
    None
}

/// The broker's TLS listener and the CA that signed its certificate (both set up by
/// tests/run.sh: `CEILO_TEST_AMQPS_URL`, `CEILO_TEST_AMQPS_CA`).
pub fn rabbitmq_tls() -> Option<(String, String)> {
    let url = std::env::var("CEILO_TEST_AMQPS_URL").ok();
    let ca = std::env::var("CEILO_TEST_AMQPS_CA").ok();
    let addr = "127.0.0.1:5671".parse().expect("address");
    let listening =
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).is_ok();
    match (url, ca) {
        (Some(url), Some(ca)) if listening => Some((url, ca)),
        _ if std::env::var("CEILO_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("no RabbitMQ TLS listener (CEILO_TEST_AMQPS_URL, CEILO_TEST_AMQPS_CA, 127.0.0.1:5671) and CEILO_REQUIRE_SERVICES=1: tests/run.sh sets it up")
        }
        _ => {
            eprintln!("skipped: no RabbitMQ TLS listener (tests/run.sh sets it up)");
            None
        }
    }
}

/// A plugin directory with the system pollers, the file publishers and the amqp
/// publisher: what an agent publishing to RabbitMQ loads.
pub fn agent_plugin_dir() -> tempfile::TempDir {
    plugin_dir(&[
        (&library("ceilo_plugin_system"), "libceilo_plugin_system.so"),
        (
            &library("ceilo_plugin_publishers"),
            "libceilo_plugin_publishers.so",
        ),
        (&library("ceilo_plugin_amqp"), "libceilo_plugin_amqp.so"),
    ])
}

/// A plugin directory with the notification handlers, the trait plugins and the file
/// publishers: what a notification agent writing files loads.
pub fn notification_plugin_dir() -> tempfile::TempDir {
    plugin_dir(&[
        (
            &library("ceilo_plugin_notifications"),
            "libceilo_plugin_notifications.so",
        ),
        (&library("ceilo_plugin_traits"), "libceilo_plugin_traits.so"),
        (
            &library("ceilo_plugin_publishers"),
            "libceilo_plugin_publishers.so",
        ),
    ])
}

/// Writes `dir/pipeline.yaml`: the `load.*` meters every second to `publisher` and to
/// `file:produced.json` (the record of what was produced); returns its path.
pub fn load_pipeline(dir: &Path, publisher: &str) -> PathBuf {
    let pipeline = dir.join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "sources:\n  - name: s\n    interval: 1\n    meters: [\"load.*\"]\n    sinks: [k]\n\
             sinks:\n  - name: k\n    publishers: [\"{publisher}\", \"file:produced.json\"]\n"
        ),
    )
    .expect("write pipeline.yaml");
    pipeline
}

/// A name unique to this test run, for exchanges and queues.
pub fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    format!("{prefix}-{}-{t}-{n}", std::process::id())
}

/// One mapping of a process, from `/proc/PID/smaps`.
#[derive(Debug, Clone, Default)]
pub struct Mapped {
    /// The mapped file (empty, or `[heap]`-like, for anonymous memory).
    pub path: String,
    /// Whether the mapping may be written.
    pub writable: bool,
    /// KiB resident that are the file's own pages.
    pub file_kib: u64,
    /// KiB resident that are private copies (written pages) or anonymous memory.
    pub anonymous_kib: u64,
}

/// Every mapping of process `pid` with what it has resident (empty when the process
/// is gone).
pub fn mappings(pid: u32) -> Vec<Mapped> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut out: Vec<Mapped> = Vec::new();
    let mut rss = 0u64;
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let value = || {
            fields
                .get(1)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        match fields.first() {
            Some(f) if f.contains('-') && !f.ends_with(':') => out.push(Mapped {
                path: fields.get(5).copied().unwrap_or_default().to_owned(),
                writable: fields.get(1).is_some_and(|p| p.contains('w')),
                ..Mapped::default()
            }),
            Some(&"Rss:") => rss = value(),
            Some(&"Anonymous:") => {
                if let Some(m) = out.last_mut() {
                    m.anonymous_kib = value();
                    m.file_kib = rss.saturating_sub(m.anonymous_kib);
                }
            }
            _ => {}
        }
    }
    out
}

/// The stderr of each child started by [`spawn_ceilo`], by process id, read as it is
/// written: a child that logs more than a pipe holds (64 KiB) would otherwise block on
/// its next log line until the test stops it.
type StderrReaders = Mutex<std::collections::HashMap<u32, std::thread::JoinHandle<Vec<u8>>>>;

fn stderr_readers() -> &'static StderrReaders {
    static READERS: OnceLock<StderrReaders> = OnceLock::new();
    READERS.get_or_init(Default::default)
}

/// Starts `ceilo` with `args` and extra environment, stdout discarded, stderr kept
/// (read as it comes; [`stop_ceilo`] returns it).
pub fn spawn_ceilo(args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = Command::new(ceilo_bin());
    cmd.args(args)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start ceilo");
    if let Some(mut pipe) = child.stderr.take() {
        let reader = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = std::io::Read::read_to_end(&mut pipe, &mut text);
            text
        });
        stderr_readers()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(child.id(), reader);
    }
    child
}

/// What a child of [`spawn_ceilo`] wrote to stderr, once it has exited. The pipe
/// closes when the last process holding it does; a worker process the child left
/// behind would keep it open, so this waits at most a few seconds for the rest.
fn stderr_of(child: &std::process::Child) -> String {
    let reader = stderr_readers()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&child.id());
    let Some(reader) = reader else {
        return String::new();
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !reader.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    if !reader.is_finished() {
        return "(stderr still open after the process exited: a process it started holds it)"
            .into();
    }
    String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned()
}

/// Stops a `ceilo` process with SIGTERM and returns its stderr; it must exit cleanly
/// within `within`.
pub fn stop_ceilo(child: std::process::Child, within: std::time::Duration) -> String {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let started = std::time::Instant::now();
    let mut child = child;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let stderr = stderr_of(&child);
            assert!(
                status.success(),
                "ceilo exits cleanly on SIGTERM: {status}\n{stderr}"
            );
            return stderr;
        }
        if started.elapsed() > within {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "ceilo did not stop on SIGTERM within {within:?}:\n{}",
                stderr_of(&child)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Publishes `bodies` as notifications on the topic exchange `exchange` (declared
/// here) with routing key `topic`, each confirmed; message ids `fixture-{i}`.
pub fn publish_notifications(url: &str, exchange: &str, topic: &str, bodies: Vec<Vec<u8>>) {
    use lapin::options::{BasicPublishOptions, ExchangeDeclareOptions};
    use lapin::types::FieldTable;
    use lapin::{BasicProperties, ExchangeKind};
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
            .await
            .expect("connect");
        let ch = conn.create_channel().await.expect("channel");
        ch.exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("exchange");
        for (i, body) in bodies.into_iter().enumerate() {
            let props = BasicProperties::default().with_message_id(format!("fixture-{i}").into());
            ch.basic_publish(
                exchange.into(),
                topic.into(),
                BasicPublishOptions::default(),
                &body,
                props,
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        }
    });
}

/// Waits until `queue` exists and has a consumer: a service declares its queue, binds
/// it and then consumes, so from then on what is published to its exchange reaches it.
/// (A fixed wait before publishing lost the messages when the service started slowly.)
pub fn wait_for_consumer(url: &str, queue: &str, within: std::time::Duration) {
    use lapin::options::QueueDeclareOptions;
    use lapin::types::FieldTable;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
            .await
            .expect("connect to RabbitMQ");
        let deadline = std::time::Instant::now() + within;
        loop {
            // A passive declare of a missing queue closes the channel: one per try.
            let ch = conn.create_channel().await.expect("channel");
            let passive = QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            };
            let consumers = ch
                .queue_declare(queue.into(), passive, FieldTable::default())
                .await
                .map_or(0, |q| q.consumer_count());
            if consumers > 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "nobody consumed {queue} within {within:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
}

/// Takes every message waiting in `queue` (acking each), then deletes the queue:
/// (AMQP message id, body) in arrival order.
pub fn drain_queue(url: &str, queue: &str) -> Vec<(Option<String>, Vec<u8>)> {
    use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeleteOptions};
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
            .await
            .expect("connect to RabbitMQ");
        let ch = conn.create_channel().await.expect("channel");
        let mut out = Vec::new();
        while let Some(m) = ch
            .basic_get(queue.into(), BasicGetOptions::default())
            .await
            .expect("basic_get")
        {
            let id = m
                .delivery
                .properties
                .message_id()
                .as_ref()
                .map(|s| s.to_string());
            out.push((id, m.delivery.data.clone()));
            m.delivery
                .ack(BasicAckOptions::default())
                .await
                .expect("ack");
        }
        let _ = ch
            .queue_delete(queue.into(), QueueDeleteOptions::default())
            .await;
        out
    })
}

/// The samples in every message of `queue` (each a JSON array), queue then deleted.
pub fn drain_samples(url: &str, queue: &str) -> Vec<serde_json::Value> {
    drain_queue(url, queue)
        .into_iter()
        .flat_map(|(_, body)| {
            serde_json::from_slice::<Vec<serde_json::Value>>(&body)
                .expect("a JSON array of samples")
        })
        .collect()
}

/// The message id of every sample stored at `url` (a `mongodb://` or `sqlite://` store
/// ceilo opens), one entry per stored sample: a duplicate shows as a repeated id.
pub fn stored_message_ids(url: &str) -> Vec<String> {
    use ceilo_host::storage::{self, Retention, SampleQuery};
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let Ok(store) = storage::open(Some(url), dir.path(), Retention::default()).await else {
            return Vec::new();
        };
        store
            .samples(&SampleQuery::default())
            .await
            .map(|v| {
                v.into_iter()
                    .map(|s| s.sample.message_id().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// The samples in a file the `file:` publisher wrote (none if it does not exist). A
/// last line without its newline is one being written now: not read yet.
pub fn read_samples(file: &Path) -> Vec<ceilo_plugin_api::Sample> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", file.display())))
        .collect()
}

/// Waits until `file` holds at least `n` samples (see [`read_samples`]), or `within`
/// has passed: a process under load may take longer than any fixed wait. The caller
/// reads the file itself once the process has stopped and flushed.
pub fn wait_for_samples(file: &Path, n: usize, within: std::time::Duration) {
    let deadline = std::time::Instant::now() + within;
    while read_samples(file).len() < n && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Starts `ceilo <command>` (agent, notification) on `pipeline`, with plugins from
/// `plugins`, `data` as its data directory, and `extra` arguments.
pub fn spawn_service(
    command: &str,
    pipeline: &Path,
    plugins: &Path,
    data: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> std::process::Child {
    let (p, d, r) = (path_str(pipeline), path_str(plugins), path_str(data));
    let mut args = vec![command, "--pipeline", p, "--plugin-dir", d, "--data-dir", r];
    args.extend_from_slice(extra);
    spawn_ceilo(&args, env)
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// The MongoDB-wire server the tests use (`CEILO_TEST_MONGODB_URL`, default the local
/// SecantusDB `tests/run.sh` starts), as `mongodb://host:port/<a fresh database>`.
/// `None` (the test skips) when it is unreachable, unless `CEILO_REQUIRE_SERVICES=1`.
pub fn mongodb() -> Option<String> {
    let base = std::env::var("CEILO_TEST_MONGODB_URL")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27017".into());
    let host = base
        .trim_start_matches("mongodb://")
        .split(['/', '?'])
        .next()
        .unwrap_or("127.0.0.1:27017")
        .to_owned();
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(&host.as_str())
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| {
            std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(2)).is_ok()
        });
    if reachable {
        let db = unique("ceilo").replace('-', "_");
        return Some(format!("mongodb://{host}/{db}"));
    }
    if std::env::var("CEILO_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("the MongoDB-wire server is not reachable on {host} and CEILO_REQUIRE_SERVICES=1: tests/run.sh installs and starts SecantusDB");
    }
    eprintln!(
        "skipped: no MongoDB-wire server on {host} (tests/run.sh installs and starts SecantusDB)"
    );
    None
}

/// The SecantusDB server program (`CEILO_SECANTUSD`, else `secantusd-py` on PATH), for
/// tests that start and stop their own server. `None` (skip) when missing, unless
/// `CEILO_REQUIRE_SERVICES=1`.
pub fn secantusd() -> Option<PathBuf> {
    let found = std::env::var_os("CEILO_SECANTUSD")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("PATH").and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join("secantusd-py"))
                    .find(|f| f.is_file())
            })
        })
        .filter(|f| f.is_file());
    if found.is_none() {
        if std::env::var("CEILO_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("secantusd-py not found (set CEILO_SECANTUSD) and CEILO_REQUIRE_SERVICES=1: tests/run.sh installs it");
        }
        eprintln!("skipped: secantusd-py not found (tests/run.sh installs it)");
    }
    found
}

/// A SecantusDB server of the test's own on a free loopback port, stopped on drop.
pub struct OwnMongo {
    /// The server program.
    pub program: PathBuf,
    /// Its port.
    pub port: u16,
    /// Its data.
    pub dir: tempfile::TempDir,
    child: Option<std::process::Child>,
    extra: Vec<std::ffi::OsString>,
}

impl OwnMongo {
    /// Starts a server (and waits until it accepts connections).
    pub fn start(program: PathBuf) -> OwnMongo {
        Self::start_with(program, &[])
    }

    /// Starts a server with more arguments (`--tls-cert-file …`).
    pub fn start_with(program: PathBuf, extra: &[&std::ffi::OsStr]) -> OwnMongo {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut m = OwnMongo {
            program,
            port,
            dir: tempfile::tempdir().expect("tempdir"),
            child: None,
            extra: extra.iter().map(|a| a.to_os_string()).collect(),
        };
        m.resume();
        m
    }

    /// `mongodb://127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!("mongodb://127.0.0.1:{}/{db}", self.port)
    }

    /// Kills the server (SIGKILL: the harshest outage).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port and data.
    pub fn resume(&mut self) {
        let child = Command::new(&self.program)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--storage-path",
            ])
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start secantusd-py");
        self.child = Some(child);
        let addr: std::net::SocketAddr = format!("127.0.0.1:{}", self.port).parse().expect("addr");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200))
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "secantusd-py did not start within 60 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for OwnMongo {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `ceilo api` on a free loopback port with `args` (storage, auth, pipeline…)
/// and waits until it listens: the process and `127.0.0.1:<port>`. A port found free
/// can be taken before ceilo binds it (by another test's client socket): ceilo then
/// exits at once, and another port is tried.
pub fn spawn_api(args: &[&str]) -> (std::process::Child, String) {
    const ATTEMPTS: usize = 5;
    for attempt in 1..=ATTEMPTS {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let listen = format!("127.0.0.1:{port}");
        let mut all = vec!["api", "--listen", listen.as_str()];
        all.extend_from_slice(args);
        let mut child = spawn_ceilo(&all, &[]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let stderr = stderr_of(&child);
                assert!(
                    attempt < ATTEMPTS,
                    "ceilo api exited ({status}) before listening, {ATTEMPTS} times; the last:\n{stderr}"
                );
                break;
            }
            if std::net::TcpStream::connect(&listen).is_ok() {
                return (child, listen);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "ceilo api did not listen on {listen} within 30 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    unreachable!("every attempt returns or asserts")
}

/// The storage benchmarks' samples: `n` gauges over 1 000 resources × 10 meters, each
/// resource in one of 7 projects, with a small metadata object. A resource's 10 meters
/// are consecutive, so a batch of 1 000 holds 100 resources, and sample `i + 10 000`
/// comes back to sample `i`'s resource.
pub fn store_bench_samples(n: usize) -> Vec<ceilo_plugin_api::Sample> {
    use ceilo_plugin_api::{Sample, SampleType};
    (0..n)
        .map(|i| {
            Sample::new(
                format!("bench.meter.{}", i % 10),
                SampleType::Gauge,
                "%",
                i as f64,
                format!("resource-{}", (i / 10) % 1_000),
            )
            // A resource belongs to one project, as in a cloud.
            .with_project_id(format!("project-{}", (i / 10) % 1_000 % 7))
            .with_user_id("user")
            .with_resource_metadata(serde_json::json!({"host": "bench", "flavor": {"vcpus": 2}}))
        })
        .collect()
}

/// Sample `i` of the query benchmarks' series: 1 000 resources × 10 meters in 10
/// projects, one sample per series per minute from 2026-01-01, in time order
/// (samples `0..10 000` are the first minute).
pub fn series_sample(i: usize) -> ceilo_plugin_api::Sample {
    use ceilo_plugin_api::{Sample, SampleType};
    const RESOURCES: usize = 1_000;
    const METERS: usize = 10;
    let (minute, r, m) = (
        i / (RESOURCES * METERS),
        (i / METERS) % RESOURCES,
        i % METERS,
    );
    let t0 = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH
        + chrono::Duration::seconds(1_767_225_600) // 2026-01-01T00:00:00Z
        + chrono::Duration::minutes(minute as i64);
    Sample::new(
        format!("meter.{m}"),
        SampleType::Gauge,
        "%",
        ((minute * 7 + r) % 100) as f64,
        format!("resource-{r}"),
    )
    .with_project_id(format!("project-{}", r % 10))
    .with_timestamp(t0)
}

/// Where a storage test's store lives: a fresh embedded file, or a fresh database on
/// the MongoDB-wire server tests/run.sh starts. Reopening gives the same data.
pub struct StorePlace {
    /// The store URL.
    pub url: Option<String>,
    /// The data directory (the embedded file's).
    pub dir: tempfile::TempDir,
}

impl StorePlace {
    /// A new embedded store.
    pub fn embedded() -> StorePlace {
        let dir = tempfile::tempdir().expect("tempdir");
        StorePlace {
            url: Some(format!("sqlite://{}/ceilo.db", dir.path().display())),
            dir,
        }
    }

    /// A new MongoDB database (none when the server is not running and services are
    /// not required).
    pub fn mongo() -> Option<StorePlace> {
        Some(StorePlace {
            url: Some(mongodb()?),
            dir: tempfile::tempdir().expect("tempdir"),
        })
    }

    /// Opens the store with `retention`.
    pub async fn open(
        &self,
        retention: ceilo_host::storage::Retention,
    ) -> std::sync::Arc<dyn ceilo_host::storage::Storage> {
        ceilo_host::storage::open(self.url.as_deref(), self.dir.path(), retention)
            .await
            .expect("open store")
    }
}

/// One test per store: `store_suite!(a, b)` runs `async fn a(place: Place)` (with
/// `Place` the file's name for [`StorePlace`]) over an embedded store (module
/// `embedded`) and over MongoDB (module `mongo`).
#[macro_export]
macro_rules! store_suite {
    ($($test:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $test() {
                    super::$test($crate::StorePlace::embedded()).await;
                }
            )*
        }
        mod mongo {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $test() {
                    let Some(place) = $crate::StorePlace::mongo() else { return };
                    super::$test(place).await;
                }
            )*
        }
    };
}

/// Runs the gabbi YAML `yaml` with `gabbi_run` against `target`: the names of the
/// tests that failed, how many ran, and gabbi's report.
pub fn run_gabbi(
    gabbi_run: &Path,
    target: &str,
    yaml: &str,
) -> (std::collections::BTreeSet<String>, usize, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(gabbi_run)
        .arg(target)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gabbi-run");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(yaml.as_bytes()).expect("feed gabbi-run");
    }
    let out = child.wait_with_output().expect("gabbi-run");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut failed = std::collections::BTreeSet::new();
    let mut ran = 0;
    for line in report.lines() {
        let (ok, rest) = if let Some(r) = line.strip_prefix("... ✓ ") {
            (true, r)
        } else if let Some(r) = line.strip_prefix("... ✗ ") {
            (false, r)
        } else {
            continue;
        };
        ran += 1;
        let name = rest
            .trim_start_matches("gabbi-runner.input_")
            .split(':')
            .next()
            .unwrap_or(rest)
            .trim()
            .to_owned();
        if !ok {
            failed.insert(name);
        }
    }
    (failed, ran, report)
}

/// The `event_definitions.yaml` files Ceilometer 8.1.5 (sdist) and 27.0.0 (package)
/// ship, in that order (fetched by tests/run.sh). Fewer than both: the test skips,
/// or fails under `CEILO_REQUIRE_SERVICES=1`.
pub fn ceilometer_event_definitions() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(gabbi) = std::env::var_os("CEILO_CEILOMETER_GABBI").map(PathBuf::from) {
        // <sdist>/ceilometer/tests/functional/gabbi → <sdist>/etc/ceilometer
        if let Some(root) = gabbi.ancestors().nth(4) {
            out.push(root.join("etc/ceilometer/event_definitions.yaml"));
        }
    }
    if let Some(python) = std::env::var_os("CEILO_CEILOMETER_PYTHON").map(PathBuf::from) {
        // <venv>/bin/python → <venv>/lib/python3.*/site-packages/ceilometer/…
        if let Some(venv) = python.parent().and_then(std::path::Path::parent) {
            let lib = venv.join("lib");
            for entry in std::fs::read_dir(&lib).into_iter().flatten().flatten() {
                let f = entry
                    .path()
                    .join("site-packages/ceilometer/pipeline/data/event_definitions.yaml");
                if f.is_file() {
                    out.push(f);
                }
            }
        }
    }
    out.retain(|f| f.is_file());
    if out.len() < 2 {
        if std::env::var("CEILO_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("Ceilometer's event_definitions.yaml files are missing (found {out:?}; CEILO_CEILOMETER_GABBI, CEILO_CEILOMETER_PYTHON) and CEILO_REQUIRE_SERVICES=1: tests/run.sh fetches them");
        }
        eprintln!(
            "skipped: Ceilometer's sdist and package are not set up (tests/run.sh fetches them)"
        );
    }
    out
}

/// `yaml` (a `pipeline.yaml`) wired in this process over `registry`'s plugins, with
/// publishers, as `ceilo agent` wires it: for tests and benchmarks that call
/// `ceilo_host::services::agent::run_once` themselves. `name` is the file name errors
/// would give.
pub fn wire_pipeline(
    registry: &ceilo_host::loader::PluginRegistry,
    name: &str,
    yaml: &str,
    host: &ceilo_host::pipeline::HostSettings,
) -> ceilo_host::pipeline::Runtime {
    use ceilo_host::pipeline::{self, Catalog, OutputMode};
    let discovery = pipeline::discover_pollers(registry, &Default::default());
    let catalog = Catalog {
        registry,
        poller_meters: &discovery.meters,
        handler_meters: &pipeline::handler_meters(registry, &Default::default()),
        pollers_failed: false,
    };
    let config = pipeline::parse(Path::new(name), yaml, &catalog)
        .unwrap_or_else(|e| panic!("{name} is not a valid pipeline: {e}"));
    pipeline::wire(
        &config,
        registry,
        &discovery.meters,
        OutputMode::Publishers,
        host,
        true,
    )
    .unwrap_or_else(|e| panic!("{name} cannot be wired: {e}"))
}
