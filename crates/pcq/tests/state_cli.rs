//! `pcq admin dump`, `pcq admin restore` and `pcq serve --seed` with a state document, against
//! real `pcq serve` processes.

use std::path::Path;

use pcq_test_support::{Key, Pcq};
use serde_json::{Value, json};

/// The binary under test.
const PCQ: Pcq = Pcq::new(env!("CARGO_BIN_EXE_pcq"));

fn pcq(cwd: &Path, args: &[&str]) -> (bool, String, String) {
    PCQ.run_in(cwd, args)
}

#[tokio::test]
async fn a_dump_is_restored_and_starts_another_node() {
    let cwd = tempfile::tempdir().unwrap();
    let served = PCQ.serve_in(cwd.path(), &[]);
    let user = PCQ.token(Key::InWorkingDir(cwd.path()), &served.partner, &[]);
    for domain in ["dump-one.example.edu", "dump-two.example.edu"] {
        let (status, c) = served
            .post(
                "/v1/customers",
                &user,
                json!({"companyProfile": {"domain": domain}}),
            )
            .await;
        assert_eq!(status, 201);
        let (status, _) = served
            .post(
                &format!("/v1/customers/{}/qualifications", c["id"].as_str().unwrap()),
                &user,
                json!({"qualification": "Education"}),
            )
            .await;
        assert_eq!(status, 201);
    }
    let (_, before) = served.get("/v1/customers", &user).await;

    let (ok, _, stderr) = pcq(
        cwd.path(),
        &["admin", "dump", "--url", &served.url, "-o", "state.json"],
    );
    assert!(ok, "{stderr}");
    let text = std::fs::read_to_string(cwd.path().join("state.json")).unwrap();
    let document: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(document["format"], "pcq-state/1");
    assert_eq!(document["customers"].as_array().unwrap().len(), 2);
    let (ok, stdout, _) = pcq(cwd.path(), &["admin", "dump", "--url", &served.url]);
    assert!(ok);
    assert_eq!(stdout, text, "standard output holds the same document");
    let (ok, partner_only, _) = pcq(
        cwd.path(),
        &[
            "admin",
            "dump",
            "--url",
            &served.url,
            "--partner",
            &served.partner,
        ],
    );
    assert!(ok);
    assert!(partner_only.contains(&format!("\"partner\":\"{}\"", served.partner)));

    let (ok, _, stderr) = pcq(cwd.path(), &["admin", "reset", "--url", &served.url]);
    assert!(ok, "{stderr}");
    let (_, empty) = served.get("/v1/customers", &user).await;
    assert_eq!(empty["totalCount"], 0);
    let (ok, stdout, stderr) = pcq(
        cwd.path(),
        &["admin", "restore", "state.json", "--url", &served.url],
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.starts_with("restored every partner from state.json: loaded ")
            && stdout.contains(" customers 2,")
            && stdout.contains(" qualifications 2,"),
        "{stdout}"
    );
    let (_, after) = served.get("/v1/customers", &user).await;
    assert_eq!(after["items"], before["items"]);

    let (ok, stdout, stderr) = pcq(
        cwd.path(),
        &[
            "admin",
            "restore",
            "state.json",
            "--url",
            &served.url,
            "--partner",
            &served.partner,
            "--json",
        ],
    );
    assert!(!ok, "a whole-store document sets the clock: {stdout}");
    assert!(
        stderr.contains("400") && stderr.contains("clock"),
        "{stderr}"
    );
    std::fs::write(cwd.path().join("partner.json"), &partner_only).unwrap();
    let (ok, stdout, stderr) = pcq(
        cwd.path(),
        &[
            "admin",
            "restore",
            "partner.json",
            "--url",
            &served.url,
            "--partner",
            &served.partner,
            "--json",
        ],
    );
    assert!(ok, "{stderr}");
    let answer: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(answer["loaded"]["customers"], 2, "{answer}");
    assert_eq!(answer["removed"]["customers"], 2, "{answer}");

    // A document that is not valid: exit 1 with the API's error, naming the path.
    let mut bad = document.clone();
    bad["customers"][1]["createdAt"] = json!("yesterday");
    std::fs::write(cwd.path().join("bad.json"), bad.to_string()).unwrap();
    let (ok, _, stderr) = pcq(
        cwd.path(),
        &["admin", "restore", "bad.json", "--url", &served.url],
    );
    assert!(!ok);
    assert!(
        stderr.contains("400") && stderr.contains("customers[1].createdAt"),
        "{stderr}"
    );
    let (_, still) = served.get("/v1/customers", &user).await;
    assert_eq!(still["items"], before["items"]);

    // Another node started with the document has that state.
    let other = tempfile::tempdir().unwrap();
    std::fs::copy(
        cwd.path().join("state.json"),
        other.path().join("state.json"),
    )
    .unwrap();
    let started = PCQ.serve_in(other.path(), &["--seed", "state.json"]);
    let user = PCQ.token(Key::InWorkingDir(other.path()), &served.partner, &[]);
    let (_, listed) = started.get("/v1/customers", &user).await;
    assert_eq!(listed["items"], before["items"]);

    // A reset of that node puts the document's state back, not an empty store.
    let (status, _) = started
        .post(
            "/v1/customers",
            &user,
            json!({"companyProfile": {"domain": "after-start.example.edu"}}),
        )
        .await;
    assert_eq!(status, 201);
    let (ok, stdout, stderr) = pcq(
        other.path(),
        &["admin", "reset", "--json", "--url", &started.url],
    );
    assert!(ok, "{stderr}");
    let answer: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(answer["seeded"], true, "{answer}");
    assert_eq!(answer["removed"]["customers"], 3, "{answer}");
    let (_, listed) = started.get("/v1/customers", &user).await;
    assert_eq!(listed["items"], before["items"]);
}
