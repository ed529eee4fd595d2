//! Real receivers for the remote publishers' tests: an HTTP(S) endpoint and an OTLP
//! receiver (`tests/interop/http_receiver.py`, the latter decoding with PyPI's
//! opentelemetry-proto), Ceilometer's own Python reading `tcp://`, and Debian's
//! Prometheus and Pushgateway. Each runs as a process of its own on a free port and
//! can be stopped and started again on the same port (an outage).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn require<T>(what: &str) -> Option<T> {
    if std::env::var("CEILO_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{what} is missing and CEILO_REQUIRE_SERVICES=1: tests/run.sh sets it up");
    }
    eprintln!("skipped: {what} is missing (tests/run.sh sets it up)");
    None
}

/// A free TCP port on loopback (free when asked).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on {port} within 30 s");
}

/// SIGKILLs a child, if one runs, and reaps it.
fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// A receiving process: its program and arguments, so it can be started again.
pub struct Receiver {
    child: Option<Child>,
    program: PathBuf,
    args: Vec<String>,
    /// Where it listens.
    pub port: u16,
    /// What it received, one JSON line each.
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    fn start(program: PathBuf, script: &str, extra: &[&str]) -> Receiver {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("received.jsonl");
        let port = free_port();
        let script = crate::workspace_root().join("tests/interop").join(script);
        let mut args = vec![
            script.display().to_string(),
            "--port".into(),
            port.to_string(),
            "--port-file".into(),
            dir.path().join("port").display().to_string(),
            "--log".into(),
            log.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut r = Receiver {
            child: None,
            program,
            args,
            port,
            log,
            _dir: dir,
        };
        r.resume();
        r
    }

    /// An HTTP endpoint (system Python); `extra` as `--status 400`, `--tls-cert F
    /// --tls-key F`.
    pub fn http(extra: &[&str]) -> Receiver {
        Receiver::start("python3".into(), "http_receiver.py", extra)
    }

    /// An OTLP/HTTP receiver decoding with opentelemetry-proto (`CEILO_OTLP_PYTHON`).
    pub fn otlp() -> Option<Receiver> {
        match std::env::var_os("CEILO_OTLP_PYTHON").map(PathBuf::from) {
            Some(p) if p.exists() => Some(Receiver::start(p, "http_receiver.py", &["--otlp"])),
            _ => require("Python with opentelemetry-proto (CEILO_OTLP_PYTHON)"),
        }
    }

    /// A `tcp://` receiver checking signatures with Ceilometer's own code
    /// (`CEILO_CEILOMETER_PYTHON`).
    pub fn tcp(secret: &str) -> Option<Receiver> {
        match std::env::var_os("CEILO_CEILOMETER_PYTHON").map(PathBuf::from) {
            Some(p) if p.exists() => {
                Some(Receiver::start(p, "tcp_receiver.py", &["--secret", secret]))
            }
            _ => require("Ceilometer's Python (CEILO_CEILOMETER_PYTHON)"),
        }
    }

    /// Stops it (SIGKILL: an outage, not a goodbye).
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts it again on its port.
    pub fn resume(&mut self) {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdout(Stdio::null())
            .spawn()
            .expect("start the receiver");
        wait_for_port(self.port, &mut child, "the receiver");
        self.child = Some(child);
    }

    /// Every entry received so far.
    pub fn entries(&self) -> Vec<Value> {
        read_lines(&self.log)
    }

    /// Waits until `done` holds for the entries (or `within` passes); returns them.
    pub fn wait_for(&self, within: Duration, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let e = self.entries();
            if done(&e) || Instant::now() > deadline {
                return e;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_lines(file: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Debian's Prometheus Pushgateway on a free port (no persistence).
pub struct Pushgateway {
    child: Option<Child>,
    pub port: u16,
    program: PathBuf,
}

impl Pushgateway {
    pub fn start() -> Option<Pushgateway> {
        let Some(program) = program("prometheus-pushgateway") else {
            return require("Debian's prometheus-pushgateway");
        };
        let mut p = Pushgateway {
            child: None,
            port: free_port(),
            program,
        };
        p.resume();
        Some(p)
    }

    /// Stops it (what it held is gone, as after a crash without persistence).
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts it again on its port.
    pub fn resume(&mut self) {
        let mut child = Command::new(&self.program)
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the pushgateway");
        wait_for_port(self.port, &mut child, "the pushgateway");
        self.child = Some(child);
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Debian's Prometheus, scraping `targets` (job name, `host:port`) every second,
/// keeping the labels a target gives (`honor_labels`, as for a Pushgateway).
pub struct Prometheus {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub fn start(targets: &[(&str, String)]) -> Option<Prometheus> {
        let Some(program) = program("prometheus") else {
            return require("Debian's prometheus");
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config =
            String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
        for (job, addr) in targets {
            config.push_str(&format!(
                "  - job_name: {job}\n    honor_labels: true\n    static_configs:\n      - targets: ['{addr}']\n"
            ));
        }
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, config).expect("write prometheus.yml");
        let port = free_port();
        let mut child = Command::new(program)
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        wait_for_port(port, &mut child, "prometheus");
        Some(Prometheus {
            child,
            port,
            _dir: dir,
        })
    }

    /// An instant query through Prometheus' HTTP API: the result vector.
    pub fn query(&self, promql: &str) -> Vec<Value> {
        let url = format!("http://127.0.0.1:{}/api/v1/query", self.port);
        let Ok(mut response) = ureq::get(&url).query("query", promql).call() else {
            return Vec::new();
        };
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Queries until `done` holds for the result (or `within` passes).
    pub fn wait_for(
        &self,
        promql: &str,
        within: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let r = self.query(promql);
            if done(&r) || Instant::now() > deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a server certificate for `localhost` / 127.0.0.1 made with openssl, and a
/// second, unrelated CA: (ca.pem, server.pem, server.key, other-ca.pem) in `dir`.
pub fn make_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for ca in ["ca", "other-ca"] {
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=ceilo test {ca}"),
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
        ]);
    }
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("write ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext",
        "-out",
        "server.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
        dir.join("other-ca.pem"),
    )
}

/// Ceilometer 27.0.0's shipped `gnocchi_resources.yaml` (in `CEILO_CEILOMETER_PYTHON`'s
/// package).
pub fn ceilometer_gnocchi_resources() -> Option<PathBuf> {
    let python = std::env::var_os("CEILO_CEILOMETER_PYTHON").map(PathBuf::from);
    let venv = python
        .as_deref()
        .and_then(Path::parent)
        .and_then(Path::parent);
    let found = venv.and_then(|v| {
        std::fs::read_dir(v.join("lib"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| {
                e.path()
                    .join("site-packages/ceilometer/publisher/data/gnocchi_resources.yaml")
            })
            .find(|f| f.is_file())
    });
    match found {
        Some(f) => Some(f),
        None => require("Ceilometer's gnocchi_resources.yaml (CEILO_CEILOMETER_PYTHON)"),
    }
}

/// Gnocchi from PyPI (`CEILO_GNOCCHI_VENV`: gnocchi, gnocchiclient, uwsgi), its index
/// in a fresh PostgreSQL database (`CEILO_TEST_POSTGRES_URL`, Debian's server: Gnocchi
/// has no SQLite indexer), file storage and `basic` authentication, serving its API
/// under uwsgi as `gnocchi-api` does.
pub struct Gnocchi {
    child: Option<Child>,
    pub port: u16,
    venv: PathBuf,
    conf: PathBuf,
    path: String,
    /// The server and database of its index (dropped with it).
    postgres: String,
    db: String,
    _dir: tempfile::TempDir,
}

impl Gnocchi {
    pub fn start() -> Option<Gnocchi> {
        let venv = std::env::var_os("CEILO_GNOCCHI_VENV").map(PathBuf::from);
        let postgres = std::env::var("CEILO_TEST_POSTGRES_URL").ok();
        let (Some(venv), Some(postgres)) = (
            venv.filter(|v| v.join("bin/gnocchi-api").exists()),
            postgres,
        ) else {
            return require(
                "Gnocchi (CEILO_GNOCCHI_VENV) and PostgreSQL (CEILO_TEST_POSTGRES_URL)",
            );
        };
        let db = crate::unique("gnocchi").replace('-', "_");
        let out = Command::new("psql")
            .args([
                &format!("{postgres}/postgres"),
                "-qc",
                &format!("CREATE DATABASE {db}"),
            ])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "create database: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let conf = dir.path().join("gnocchi.conf");
        std::fs::write(
            &conf,
            format!(
                "[api]\nauth_mode = basic\nhost = 127.0.0.1\nport = {port}\n\
                 [indexer]\nurl = {postgres}/{db}\n\
                 [storage]\ndriver = file\nfile_basepath = {}\n",
                dir.path().join("storage").display()
            ),
        )
        .expect("write gnocchi.conf");
        let bin = |name: &str| venv.join("bin").join(name);
        let path = format!(
            "{}:{}",
            venv.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let upgrade = Command::new(bin("gnocchi-upgrade"))
            .arg("--config-file")
            .arg(&conf)
            .env("PATH", &path)
            .output()
            .expect("gnocchi-upgrade");
        assert!(
            upgrade.status.success(),
            "gnocchi-upgrade: {}",
            String::from_utf8_lossy(&upgrade.stderr)
        );
        let mut g = Gnocchi {
            child: None,
            port,
            venv,
            conf,
            path,
            postgres,
            db,
            _dir: dir,
        };
        g.resume();
        Some(g)
    }

    /// Starts the API (again) on its port.
    pub fn resume(&mut self) {
        use std::os::unix::process::CommandExt as _;
        let log = self._dir.path().join("api.log");
        let mut child = Command::new(self.venv.join("bin/gnocchi-api"))
            .arg("--config-file")
            .arg(&self.conf)
            .env("PATH", &self.path)
            .env("VIRTUAL_ENV", &self.venv)
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::options()
                    .create(true)
                    .append(true)
                    .open(log)
                    .map(Stdio::from)
                    .unwrap_or(Stdio::null()),
            )
            .spawn()
            .expect("start gnocchi-api");
        wait_for_port(self.port, &mut child, "gnocchi-api");
        self.child = Some(child);
    }

    /// Runs PyPI's `gnocchi` client (`--os-auth-type gnocchi-basic --user admin`) with
    /// `args` and `-f json`; its answer.
    pub fn client(&self, args: &[&str]) -> Value {
        let out = Command::new(self.venv.join("bin/gnocchi"))
            .args([
                "--os-auth-type",
                "gnocchi-basic",
                "--user",
                "admin",
                "--endpoint",
            ])
            .arg(format!("http://127.0.0.1:{}", self.port))
            .args(args)
            .args(["-f", "json"])
            .output()
            .expect("gnocchi client");
        assert!(
            out.status.success(),
            "gnocchi {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("the client's JSON")
    }

    /// Stops the API (its uwsgi master and workers).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for Gnocchi {
    fn drop(&mut self) {
        self.stop();
        let _ = Command::new("psql")
            .args([
                &format!("{}/postgres", self.postgres),
                "-qc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db),
            ])
            .output();
    }
}
