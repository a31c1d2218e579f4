//! `pcq admin requests`: a node's request journal from the command line, once and followed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pcq_test_support::{Key, Pcq};
use serde_json::{Value, json};

/// The binary under test.
const PCQ: Pcq = Pcq::new(env!("CARGO_BIN_EXE_pcq"));

fn pcq(cwd: &Path, args: &[&str]) -> (bool, String, String) {
    PCQ.run_in(cwd, args)
}

#[tokio::test]
async fn admin_requests_lists_the_journal() {
    let cwd = tempfile::tempdir().unwrap();
    let served = PCQ.serve_in(cwd.path(), &[]);
    let user = PCQ.token(Key::InWorkingDir(cwd.path()), &served.partner, &[]);
    let (status, _) = served
        .post(
            "/v1/customers",
            &user,
            json!({"companyProfile": {"domain": "journal-cli.example.edu"}}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = served.get("/v1/customers/not-a-guid", &user).await;
    assert_eq!(status, 400);

    let (ok, stdout, stderr) = pcq(cwd.path(), &["admin", "requests", "--url", &served.url]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines.iter().any(|l| l.contains("ID") && l.contains("PATH")),
        "{stdout}"
    );
    let post = lines
        .iter()
        .position(|l| l.contains("/v1/customers "))
        .expect(&stdout);
    let get = lines
        .iter()
        .position(|l| l.contains("/v1/customers/not-a-guid"))
        .expect(&stdout);
    assert!(get < post, "newest first: {stdout}");
    assert!(
        lines[post].contains("201") && lines[post].contains("POST"),
        "{stdout}"
    );
    assert!(lines[get].contains("400"), "{stdout}");

    let (ok, stdout, stderr) = pcq(
        cwd.path(),
        &[
            "admin",
            "requests",
            "--url",
            &served.url,
            "--json",
            "--status",
            "4xx",
            "--method",
            "get",
        ],
    );
    assert!(ok, "{stderr}");
    let page: Value = serde_json::from_str(&stdout).unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["path"], "/v1/customers/not-a-guid");
    assert_eq!(items[0]["partner"], served.partner);
    assert_eq!(page["node"], served.url);

    // A bad filter names itself; a partner's token is refused.
    let (ok, _, stderr) = pcq(
        cwd.path(),
        &["admin", "requests", "--url", &served.url, "--status", "abc"],
    );
    assert!(!ok);
    assert!(
        stderr.contains("400") && stderr.contains("status"),
        "{stderr}"
    );
    let (ok, _, stderr) = pcq(
        cwd.path(),
        &["admin", "requests", "--url", &served.url, "--token", &user],
    );
    assert!(!ok);
    assert!(stderr.contains("403"), "{stderr}");
}

#[tokio::test]
async fn admin_requests_follow_prints_new_requests_as_they_come() {
    let cwd = tempfile::tempdir().unwrap();
    let served = PCQ.serve_in(cwd.path(), &[]);
    let user = PCQ.token(Key::InWorkingDir(cwd.path()), &served.partner, &[]);
    let (status, _) = served.get("/v1/customers", &user).await;
    assert_eq!(status, 200);

    let mut child = PCQ
        .command()
        .args([
            "admin",
            "requests",
            "--url",
            &served.url,
            "--follow",
            "--json",
        ])
        .current_dir(cwd.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_entry = |deadline: Instant| -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("pcq admin requests --follow prints an entry");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    };

    // What was served before it started.
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = next_entry(deadline);
    assert_eq!(first["path"], "/v1/customers");

    // A request served while it follows.
    let (status, _) = served.get("/v1/customers/not-a-guid", &user).await;
    assert_eq!(status, 400);
    let next = next_entry(deadline);
    assert_eq!(next["path"], "/v1/customers/not-a-guid");
    assert!(next["id"].as_u64() > first["id"].as_u64());
    // Nothing else: its own reads are not recorded, and nothing is printed twice.
    assert!(lines.recv_timeout(Duration::from_millis(1200)).is_err());

    child.kill().unwrap();
    child.wait().unwrap();
}
