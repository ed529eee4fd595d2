//! Panko's events API suite (PyPI `panko==10.0.0`:
//! `panko/tests/functional/gabbi/gabbits/api-events-*.yaml`, fetched by tests/run.sh)
//! run with `gabbi-run` against `ceilo api`, over both stores. What its
//! `EventDataFixture` records (three cookie events) is recorded through ceilo's
//! storage first.

use std::path::PathBuf;

use ceilo_host::events::{Event, Trait, TraitValue};
use ceilo_host::storage::{self, Retention};
use ceilo_tests::*;

/// `gabbi-run` and Panko's gabbi directory.
fn suite() -> Option<(PathBuf, PathBuf)> {
    let run = std::env::var_os("CEILO_GABBI_RUN").map(PathBuf::from);
    let dir = std::env::var_os("CEILO_PANKO_GABBI").map(PathBuf::from);
    match (run, dir) {
        (Some(r), Some(d)) if r.is_file() && d.join("gabbits").is_dir() => Some((r, d)),
        _ => {
            if std::env::var("CEILO_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("Panko's gabbi suite is missing (CEILO_GABBI_RUN, CEILO_PANKO_GABBI) and CEILO_REQUIRE_SERVICES=1: tests/run.sh fetches it");
            }
            eprintln!("skipped: Panko's gabbi suite is not set up (tests/run.sh fetches it)");
            None
        }
    }
}

/// `EventDataFixture`: for each of chocolate.chip, peanut.butter and sugar (index
/// ix), an event `cookies_<name>` generated now, message id
/// `fea1b15a-1d47-4175-85a5-a4bb2c72924<ix>`, traits `type` (text: the name) and
/// `ate` (int: ix), raw `{"nested": {"inside": "value"}}`.
fn cookie_events() -> Vec<Event> {
    ["chocolate.chip", "peanut.butter", "sugar"]
        .iter()
        .enumerate()
        .map(|(ix, name)| Event {
            message_id: format!("fea1b15a-1d47-4175-85a5-a4bb2c72924{ix}"),
            event_type: format!("cookies_{name}"),
            generated: chrono::Utc::now(),
            traits: vec![
                Trait {
                    name: "type".into(),
                    value: TraitValue::Text((*name).into()),
                },
                Trait {
                    name: "ate".into(),
                    value: TraitValue::Int(ix as i64),
                },
            ],
            raw: serde_json::json!({"nested": {"inside": "value"}}),
        })
        .collect()
}

fn run_suite(storage: &dyn Fn() -> (String, tempfile::TempDir), store_name: &str) {
    let Some((gabbi_run, dir)) = suite() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut total = 0;
    let mut reports = String::new();
    for stem in ["api-events-no-data", "api-events-with-data"] {
        let file = dir.join("gabbits").join(format!("{stem}.yaml"));
        let yaml = std::fs::read_to_string(&file).expect("gabbi file");
        let (url, data) = storage();
        if yaml.contains("EventDataFixture") {
            rt.block_on(async {
                let store = storage::open(Some(&url), data.path(), Retention::default())
                    .await
                    .expect("open store");
                let o = store
                    .record_events(&cookie_events())
                    .await
                    .expect("record the fixture");
                assert_eq!(o.stored, 3);
            });
        }
        let (api, listen) = spawn_api(&[
            "--no-auth",
            "--storage",
            &url,
            "--data-dir",
            data.path().to_str().expect("path"),
            "--log-level",
            "warn",
        ]);
        let (failed, ran, report) = run_gabbi(&gabbi_run, &format!("http://{listen}"), &yaml);
        let _ = stop_ceilo(api, std::time::Duration::from_secs(20));
        assert!(ran > 0, "{stem}: gabbi ran nothing:\n{report}");
        total += ran;
        if !failed.is_empty() {
            reports.push_str(&format!("\n##### {stem}: failed {failed:?}\n{report}"));
        }
    }
    eprintln!("{store_name}: {total} of Panko's events API tests ran");
    assert!(reports.is_empty(), "{store_name}:{reports}");
}

#[test]
fn panko_events_suite_over_the_embedded_store() {
    run_suite(
        &|| {
            let d = tempfile::tempdir().expect("tempdir");
            (format!("sqlite://{}/events.db", d.path().display()), d)
        },
        "embedded store",
    );
}

#[test]
fn panko_events_suite_over_mongodb() {
    if mongodb().is_none() {
        return;
    }
    run_suite(
        &|| {
            (
                mongodb().expect("MongoDB"),
                tempfile::tempdir().expect("tempdir"),
            )
        },
        "MongoDB",
    );
}
