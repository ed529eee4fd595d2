//! `ceilo run` with no flags, in an empty directory: no RabbitMQ, no MongoDB, the
//! built-in default pipeline, the embedded store under ./ceilo-data, the API on
//! 127.0.0.1:8777.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ceilo_host::storage::{self, Retention, SampleQuery};
use ceilo_tests::*;

#[test]
fn ceilo_run_with_no_flags_polls_stores_and_serves_statistics() {
    build_workspace();
    let cwd = tempfile::tempdir().unwrap();
    let out_file = cwd.path().join("stdout.txt");
    let child = Command::new(ceilo_bin())
        .arg("run")
        .current_dir(cwd.path())
        .env_remove("CEILO_AMQP_URL")
        .env_remove("CEILO_STORAGE_URL")
        .env_remove("CEILO_PIPELINE")
        .env_remove("CEILO_DATA_DIR")
        .env_remove("CEILO_PLUGIN_DIR")
        .stdout(Stdio::from(std::fs::File::create(&out_file).unwrap()))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ceilo run");
    let db = cwd.path().join("ceilo-data").join("ceilo.db");
    let url = format!("sqlite://{}", db.display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The default pipeline polls every 10 s; cpu_util needs two cpu samples.
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut meters = Vec::new();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        if !db.exists() {
            continue;
        }
        let samples = rt.block_on(async {
            let store = storage::open(Some(&url), cwd.path(), Retention::default())
                .await
                .unwrap();
            store.samples(&SampleQuery::default()).await.unwrap()
        });
        meters = samples.iter().map(|s| s.sample.name().to_owned()).collect();
        if meters.iter().any(|m| m == "cpu_util") {
            break;
        }
    }
    // The API of the same process answers cpu_util statistics in 0..100.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut res = agent
        .get("http://127.0.0.1:8777/v2/meters/cpu_util/statistics?period=5")
        .call()
        .expect("the API answers on 127.0.0.1:8777");
    let status = res.status().as_u16();
    let body = res.body_mut().read_to_string().unwrap_or_default();
    let log = stop_ceilo(child, Duration::from_secs(20));
    assert_eq!(status, 200, "{body}\n{log}");
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    let stats = stats.as_array().unwrap();
    assert!(!stats.is_empty(), "{body}");
    for s in stats {
        let (min, max, avg) = (
            s["min"].as_f64().unwrap(),
            s["max"].as_f64().unwrap(),
            s["avg"].as_f64().unwrap(),
        );
        assert!(
            (0.0..=100.0).contains(&min)
                && (0.0..=100.0).contains(&max)
                && min <= avg
                && avg <= max,
            "{s}"
        );
        assert_eq!(
            (s["unit"].as_str(), s["period"].as_u64()),
            (Some("%"), Some(5))
        );
    }
    let printed = std::fs::read_to_string(&out_file).unwrap();
    for m in ["cpu", "memory.usage", "load.1", "cpu_util"] {
        assert!(
            meters.iter().any(|x| x == m),
            "no {m} stored: {meters:?}\n{printed}\n{log}"
        );
    }
    assert!(
        printed.contains("pipeline:      built-in default"),
        "{printed}"
    );
    assert!(
        printed.contains("samples go to: embedded store "),
        "{printed}"
    );
    assert!(printed.contains("ceilo-data/ceilo.db"), "{printed}");
    assert!(printed.contains("notifications: off"), "{printed}");
    assert!(
        printed.contains("HTTP API:      http://127.0.0.1:8777 (authentication: none"),
        "{printed}"
    );
    assert!(!log.contains("ERROR"), "{log}");
}
