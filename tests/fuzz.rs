//! Property-based fuzzing of the running server from its own OpenAPI document, with
//! schemathesis (PyPI), every check, a fixed seed and a bounded number of examples: no
//! server error, no response outside the documented schema. `.ci/run` installs
//! schemathesis and runs this with `cargo test -- --ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use backup_monitor::app::Application;
use backup_monitor::config::{Secret, Settings};
use tokio::sync::oneshot;

const TOKEN: &str = "fuzz-admin-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs schemathesis (pip install schemathesis): run by .ci/run"]
async fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.database.url = format!("sqlite://{}", dir.path().join("fuzz.db").display());
    settings.server.bind = "127.0.0.1:0".parse().unwrap();
    settings.auth.admin_token = Some(Secret::new(TOKEN));
    // Fuzzing is a burst of thousands of requests: keep the rate limit out of its way.
    settings.auth.rate_limit_per_second = 1_000_000;
    settings.auth.rate_limit_burst = 1_000_000;
    let app = Application::build(settings).await.unwrap();
    let addr = app.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz/schemathesis.toml");
    let examples = std::env::var("FUZZ_MAX_EXAMPLES").unwrap_or_else(|_| "30".to_owned());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("st")
            .args(["--config-file", config, "run"])
            .arg(format!("http://{addr}/openapi.json"))
            .args([
                "--checks",
                "all",
                "--seed",
                "1",
                "--max-examples",
                &examples,
            ])
            .args([
                "--generation-database",
                "none",
                "--no-color",
                "--workers",
                "2",
            ])
            .env("BACKUP_MONITOR_FUZZ_TOKEN", TOKEN)
            .output()
            .expect("schemathesis (`st`) is installed: pip install schemathesis")
    })
    .await
    .unwrap();
    let _ = stop.send(());
    server.await.unwrap().unwrap();

    let report = String::from_utf8_lossy(&output.stdout);
    let summary: Vec<&str> = report.lines().filter(|l| l.contains("generated")).collect();
    println!("schemathesis: {}", summary.join(" | "));
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        report.contains("passed"),
        "schemathesis ran no test:\n{report}"
    );
}
