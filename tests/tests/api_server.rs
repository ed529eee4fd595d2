//! The API's server against raw clients: a body or headers that never arrive, more
//! connections than allowed, and HTTPS with a certificate the test makes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ceilo_tests::*;

/// A running `ceilo api --no-auth` over an empty embedded store; stopped on drop.
struct Api {
    listen: String,
    child: Option<std::process::Child>,
    dir: tempfile::TempDir,
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            let _ = stop_ceilo(c, Duration::from_secs(20));
        }
    }
}

impl Api {
    fn stop(mut self) -> String {
        let c = self.child.take().expect("running");
        stop_ceilo(c, Duration::from_secs(20))
    }
}

fn start(extra: &[&str]) -> Api {
    build_workspace();
    let dir = tempfile::tempdir().expect("tempdir");
    start_in(dir, extra)
}

fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Api {
    let empty = dir.path().join("no-plugins");
    std::fs::create_dir_all(&empty).expect("dir");
    let d = dir.path().to_str().expect("utf-8").to_owned();
    let mut args = vec![
        "--no-auth".to_owned(),
        "--pipeline".to_owned(),
        format!("{d}/none.yaml"),
        "--plugin-dir".to_owned(),
        empty.to_str().expect("utf-8").to_owned(),
        "--data-dir".to_owned(),
        d,
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (child, listen) = spawn_api(&refs);
    Api {
        listen,
        child: Some(child),
        dir,
    }
}

/// Everything the server sends until it closes (or `within` passes).
fn read_until_closed(s: &mut TcpStream, within: Duration) -> (String, Duration) {
    let started = Instant::now();
    s.set_read_timeout(Some(within)).expect("timeout");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "the server neither answered nor closed within {within:?} ({e}); got: {}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

fn get(api: &Api, path: &str) -> (u16, String) {
    request(&api.listen, path, None)
}

/// `GET path`, with `token` as X-Auth-Token when given: the status and body.
fn request(listen: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.get(format!("http://{listen}{path}"));
    if let Some(t) = token {
        req = req.header("X-Auth-Token", t);
    }
    let mut r = req.call().expect("request");
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().unwrap_or_default())
}

#[test]
fn a_body_that_never_arrives_gets_408_and_the_connection_is_closed() {
    let api = start(&["--body-timeout", "2s"]);
    let mut s = TcpStream::connect(&api.listen).expect("connect");
    s.write_all(
        b"POST /v2/meters/m?direct=True HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\n\r\n[",
    )
    .expect("write");
    let (answer, after) = read_until_closed(&mut s, Duration::from_secs(30));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within 2s"), "{answer}");
    assert!(
        after >= Duration::from_millis(1500),
        "not before the timeout: {after:?}"
    );
    assert!(
        after < Duration::from_secs(15),
        "at the 2 s timeout: {after:?}"
    );
    // The server is still there for everyone else.
    assert_eq!(get(&api, "/v2/capabilities").0, 200);
}

#[test]
fn headers_that_never_finish_are_cut_off() {
    let api = start(&["--header-timeout", "2s"]);
    let mut s = TcpStream::connect(&api.listen).expect("connect");
    s.write_all(b"GET /v2/meters HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .expect("write");
    let (answer, after) = read_until_closed(&mut s, Duration::from_secs(30));
    assert!(!answer.contains(" 200 "), "{answer}");
    assert!(
        after >= Duration::from_millis(1500),
        "not before the timeout: {after:?}"
    );
    assert!(
        after < Duration::from_secs(15),
        "at the 2 s timeout: {after:?}"
    );
    assert_eq!(get(&api, "/v2/capabilities").0, 200);
}

#[test]
fn connections_past_the_limit_get_503_until_one_closes() {
    let api = start(&["--max-connections", "2", "--header-timeout", "60s"]);
    // spawn_api's readiness probe may still hold a slot for a moment.
    std::thread::sleep(Duration::from_millis(500));
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(&api.listen).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let (status, body) = get(&api, "/v2/capabilities");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("too many connections"), "{body}");
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get(&api, "/v2/capabilities");
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slots are freed: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = api.stop();
    assert!(log.contains("connections already open"), "{log}");
}

/// A self-signed certificate for 127.0.0.1 and localhost: (cert PEM, key PEM).
fn certificate() -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("params");
    let cert = params.self_signed(&key).expect("certificate");
    (cert.pem(), key.serialize_pem())
}

/// One GET over TLS, trusting only `cert_pem`: the raw answer.
fn https_get(listen: &str, cert_pem: &str, path: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::{self, pki_types::pem::PemObject, pki_types::CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("pem"))
        .expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(listen).await?;
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut tls = connector.connect(name, tcp).await?;
        tls.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        let mut out = Vec::new();
        tls.read_to_end(&mut out).await?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    })
}

#[test]
fn https_with_a_certificate_the_test_makes() {
    build_workspace();
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = certificate();
    let cert_file = dir.path().join("api.crt");
    let key_file = dir.path().join("api.key");
    std::fs::write(&cert_file, &cert).expect("cert");
    std::fs::write(&key_file, &key).expect("key");
    let api = start_in(
        dir,
        &[
            "--tls-cert",
            cert_file.to_str().expect("utf-8"),
            "--tls-key",
            key_file.to_str().expect("utf-8"),
        ],
    );
    let answer = https_get(&api.listen, &cert, "/v2/capabilities").expect("https");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"api\""), "{answer}");
    // Links carry the scheme the API is served with.
    let root = https_get(&api.listen, &cert, "/").expect("https");
    assert!(
        root.contains("\"href\": \"https://localhost/v2\""),
        "{root}"
    );
    // Another certificate is not trusted: the client refuses the server.
    let (other, _) = certificate();
    assert!(https_get(&api.listen, &other, "/v2/capabilities").is_err());
    // Plain HTTP on the HTTPS port gets no HTTP answer.
    let mut s = TcpStream::connect(&api.listen).expect("connect");
    s.write_all(b"GET /v2/capabilities HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let (plain, _) = read_until_closed(&mut s, Duration::from_secs(30));
    assert!(!plain.contains("HTTP/1.1 200"), "{plain}");
    let _ = &api.dir;
    let log = api.stop();
    assert!(log.contains("API on https://"), "{log}");
}

#[test]
fn a_bad_certificate_or_key_is_refused_at_start_naming_the_file() {
    build_workspace();
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = certificate();
    let good_cert = dir.path().join("good.crt");
    let good_key = dir.path().join("good.key");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&good_cert, &cert).expect("cert");
    std::fs::write(&good_key, &key).expect("key");
    std::fs::write(&junk, "not PEM at all\n").expect("junk");
    let (_, other_key) = certificate();
    let wrong_key = dir.path().join("wrong.key");
    std::fs::write(&wrong_key, other_key).expect("key");
    let p = |f: &std::path::Path| f.to_str().expect("utf-8").to_owned();
    let missing = p(&dir.path().join("missing.crt"));
    for (cert, key, needle, named) in [
        (p(&junk), p(&good_key), "no certificate", p(&junk)),
        (p(&good_cert), p(&junk), "no usable private key", p(&junk)),
        (
            p(&good_cert),
            p(&wrong_key),
            "does not go with the certificate",
            p(&wrong_key),
        ),
        (
            missing.clone(),
            p(&good_key),
            "cannot read",
            missing.clone(),
        ),
    ] {
        let (code, _, err) = run_ceilo(&[
            "api",
            "--no-auth",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &p(dir.path()),
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ]);
        assert_ne!(code, 0, "{err}");
        assert!(err.contains(needle), "{needle}: {err}");
        assert!(err.contains(named.as_str()), "names the file: {err}");
    }
    // One without the other is a usage error.
    let (code, _, err) = run_ceilo(&["api", "--no-auth", "--tls-cert", &p(&good_cert)]);
    assert_ne!(code, 0);
    assert!(err.contains("--tls-key"), "{err}");
}

#[test]
fn an_edited_tokens_file_takes_effect_without_a_restart() {
    build_workspace();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8").to_owned();
    let empty = dir.path().join("no-plugins");
    std::fs::create_dir_all(&empty).expect("dir");
    let tokens = dir.path().join("tokens.yaml");
    std::fs::write(&tokens, "old-token: admin\n").expect("tokens");
    let (child, listen) = spawn_api(&[
        "--tokens",
        tokens.to_str().expect("utf-8"),
        "--pipeline",
        &format!("{d}/none.yaml"),
        "--plugin-dir",
        empty.to_str().expect("utf-8"),
        "--data-dir",
        &d,
        "--reload-settle",
        "0.3",
    ]);
    let status = |token: &str| request(&listen, "/v2/meters", Some(token)).0;
    assert_eq!((status("old-token"), status("new-token")), (200, 401));

    // Replaced the atomic way: the new token works, the old one no longer does.
    let staged = dir.path().join(".tokens.yaml.new");
    std::fs::write(&staged, "new-token: {project: p1}\n").expect("tokens");
    std::fs::rename(&staged, &tokens).expect("mv");
    let deadline = Instant::now() + Duration::from_secs(15);
    while (status("old-token"), status("new-token")) != (401, 200) {
        assert!(
            Instant::now() < deadline,
            "the new tokens did not take effect"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Broken: refused and counted; the tokens in force stay.
    std::fs::write(&tokens, "new-token: [unclosed\n").expect("tokens");
    let failures = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("ceilo_config_reload_failures_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while failures(&request(&listen, "/metrics", Some("new-token")).1) != Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "the refused reload was not counted"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!((status("old-token"), status("new-token")), (401, 200));
    let stderr = stop_ceilo(child, Duration::from_secs(20));
    let refused = stderr
        .lines()
        .find(|l| l.contains("tokens reload refused"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        refused.contains("tokens.yaml") && refused.contains("line 1"),
        "{refused}"
    );
}
