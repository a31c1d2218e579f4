//! `pcq review` and the vetting worker in a real `pcq serve` process, including a crash in the
//! middle of decisions.

use std::path::Path;

use pcq_test_support::{Key, Pcq, Server};
use serde_json::{Value, json};

/// The binary under test.
const PCQ: Pcq = Pcq::new(env!("CARGO_BIN_EXE_pcq"));

fn pcq(cwd: &Path, args: &[&str]) -> (bool, String, String) {
    PCQ.run_in(cwd, args)
}

#[tokio::test]
async fn reviewers_decide_from_the_command_line() {
    let cwd = tempfile::tempdir().unwrap();
    let served = PCQ.serve_in(cwd.path(), &[]);
    let user = PCQ.token(Key::InWorkingDir(cwd.path()), &served.partner, &[]);
    let mut customers = Vec::new();
    for domain in ["cli-one.example.edu", "cli-two.example.com"] {
        let (_, c) = served
            .post(
                "/v1/customers",
                &user,
                json!({"companyProfile": {"domain": domain}}),
            )
            .await;
        let id = c["id"].as_str().unwrap().to_owned();
        let (status, _) = served
            .post(
                &format!("/v1/customers/{id}/qualifications"),
                &user,
                json!({"qualification": "Education"}),
            )
            .await;
        assert_eq!(status, 201);
        customers.push(id);
    }

    let (ok, table, err) = pcq(cwd.path(), &["review", "list", "--url", &served.url]);
    assert!(ok, "{err}");
    assert!(
        table.contains("cli-one.example.edu") && table.contains("cli-two.example.com"),
        "{table}"
    );
    assert!(table.contains("2 waiting"), "{table}");
    let (ok, listed, _) = pcq(
        cwd.path(),
        &["review", "list", "--url", &served.url, "--json"],
    );
    assert!(ok);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);

    let (ok, out, _) = pcq(
        cwd.path(),
        &["review", "approve", &customers[0], "--url", &served.url],
    );
    assert!(ok);
    assert_eq!(
        out.trim(),
        format!("Education of {}: Approved", customers[0])
    );
    let (ok, _, err) = pcq(
        cwd.path(),
        &[
            "review",
            "deny",
            &customers[1],
            "--reason",
            "because",
            "--url",
            &served.url,
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("400") && err.contains("not a documented vetting reason"),
        "{err}"
    );
    let (ok, out, _) = pcq(
        cwd.path(),
        &[
            "review",
            "deny",
            &customers[1],
            "--reason",
            "Not an Academic Domain",
            "--url",
            &served.url,
        ],
    );
    assert!(ok);
    assert_eq!(
        out.trim(),
        format!(
            "Education of {}: Denied (Not an Academic Domain)",
            customers[1]
        )
    );
    let (ok, _, err) = pcq(
        cwd.path(),
        &["review", "approve", &customers[1], "--url", &served.url],
    );
    assert!(!ok && err.contains("409"), "{err}");

    let (_, q) = served
        .get(
            &format!("/v1/customers/{}/qualifications", customers[1]),
            &user,
        )
        .await;
    assert_eq!(
        (
            q[0]["vettingStatus"].as_str(),
            q[0]["vettingReason"].as_str()
        ),
        (Some("Denied"), Some("Not an Academic Domain"))
    );
    let (_, history) = served
        .get(
            &format!("/_pcq/customers/{}/qualifications/history", customers[1]),
            &user,
        )
        .await;
    assert_eq!(history[1]["actor"], "reviewer@pcq.local");
    let (ok, out, _) = pcq(cwd.path(), &["review", "list", "--url", &served.url]);
    assert!(ok && out.contains("nothing is waiting"), "{out}");

    // A wrong token is refused with pcq's explanation.
    let (ok, _, err) = pcq(
        cwd.path(),
        &["review", "list", "--url", &served.url, "--token", &user],
    );
    assert!(
        !ok && err.contains("403") && err.contains("Pcq.Reviewer"),
        "{err}"
    );
}

/// Decisions run in transactions: a crash while the worker decides leaves every pending
/// decision either made once or still pending, never made twice.
#[tokio::test]
async fn a_crash_while_deciding_loses_nothing_and_decides_nothing_twice() {
    const CUSTOMERS: usize = 400;
    let cwd = tempfile::tempdir().unwrap();
    let customers: Vec<Value> = (0..CUSTOMERS)
        .map(|i| json!({"companyProfile": {"domain": format!("crash{i}.example.edu")}, "qualifications": [{"qualification": "Education"}]}))
        .collect();
    std::fs::write(
        cwd.path().join("seed.json"),
        json!({"partners": [{"tenantId": "dev", "customers": customers}]}).to_string(),
    )
    .unwrap();
    // Small batches: decisions commit a few at a time, so a crash can fall between commits.
    let small_batches = [("PCQ_WORKER__BATCH_SIZE", "5")];
    let mut command = PCQ.serve_command(&["--no-worker", "--seed", "seed.json"]);
    command.current_dir(cwd.path()).envs(small_batches);
    let mut served = Server::start(command);
    let admin = PCQ.token(
        Key::InWorkingDir(cwd.path()),
        &served.partner,
        &["--role", "Pcq.Admin"],
    );
    let user = PCQ.token(Key::InWorkingDir(cwd.path()), &served.partner, &[]);
    let (status, _) = served
        .call(
            reqwest::Method::PUT,
            "/_pcq/admin/vetting-policy",
            &admin,
            Some(json!({"policy": "immediate"})),
        )
        .await;
    assert_eq!(status, 200);
    let audit = "/v1/auditrecords?size=1000&operationType=update_customer_qualification";
    let decided = |page: &Value| {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["operationStatus"] == "succeeded")
            .count()
    };

    // Start deciding, and kill the process as soon as the first decisions are committed.
    let drain_url = format!("{}/_pcq/admin/worker/drain", served.url);
    let drain = tokio::spawn({
        let admin = admin.clone();
        async move {
            pcq_test_support::client()
                .post(drain_url)
                .bearer_auth(admin)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    loop {
        assert!(
            !drain.is_finished(),
            "the drain finished before any decision was seen"
        );
        let (_, page) = served.get(audit, &user).await;
        if decided(&page) > 0 {
            break;
        }
    }
    served.kill();
    let interrupted = drain.await.unwrap();
    assert!(
        interrupted.is_err(),
        "the crash came before the drain finished: {interrupted:?}"
    );

    // Restart; finish the work.
    let served = PCQ.serve_in(cwd.path(), &["--no-worker", "--seed", "seed.json"]);
    let (_, before) = served.get(audit, &user).await;
    let decided_before = decided(&before);
    eprintln!("{decided_before} of {CUSTOMERS} were decided before the crash");
    assert!(
        decided_before > 0 && decided_before < CUSTOMERS,
        "the crash fell in the middle"
    );
    let (status, progress) = served
        .call(
            reqwest::Method::POST,
            "/_pcq/admin/worker/drain",
            &admin,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        progress["vettingDecisions"].as_u64().unwrap() as usize + decided_before,
        CUSTOMERS
    );

    // Exactly one decision per customer.
    let (_, after) = served.get(audit, &user).await;
    let mut decided: Vec<&str> = after["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["operationStatus"] == "succeeded")
        .map(|r| r["customerId"].as_str().unwrap())
        .collect();
    assert_eq!(decided.len(), CUSTOMERS);
    decided.sort_unstable();
    decided.dedup();
    assert_eq!(decided.len(), CUSTOMERS, "no customer decided twice");
    let (_, history) = served
        .get(
            &format!("/_pcq/customers/{}/qualifications/history", decided[0]),
            &user,
        )
        .await;
    assert_eq!(
        history.as_array().unwrap().len(),
        2,
        "seeded, then decided once: {history}"
    );
}

#[tokio::test]
async fn admin_reset_empties_the_sandbox_and_loads_the_seed_again() {
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(
        cwd.path().join("seed.json"),
        r#"{"partners": [{"tenantId": "dev", "customers": [
            {"companyProfile": {"domain": "seeded.example.edu", "companyName": "Seeded"}}]}]}"#,
    )
    .unwrap();
    let served = PCQ.serve_in(cwd.path(), &["--seed", "seed.json"]);
    let user = PCQ.token(Key::InWorkingDir(cwd.path()), &served.partner, &[]);
    let (status, _) = served
        .post(
            "/v1/customers",
            &user,
            json!({"companyProfile": {"domain": "added.example.edu"}}),
        )
        .await;
    assert_eq!(status, 201);

    let (ok, stdout, stderr) = pcq(cwd.path(), &["admin", "reset", "--url", &served.url]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.starts_with("reset every partner: removed "),
        "{stdout}"
    );
    assert!(stdout.contains("customers 2"), "{stdout}");
    assert!(stdout.contains("the seed was loaded again"), "{stdout}");
    let (_, list) = served.get("/v1/customers", &user).await;
    assert_eq!(list["totalCount"], 1);
    assert_eq!(
        list["items"][0]["companyProfile"]["domain"],
        "seeded.example.edu"
    );

    let (ok, stdout, stderr) = pcq(
        cwd.path(),
        &[
            "admin",
            "reset",
            "--url",
            &served.url,
            "--partner",
            &served.partner,
            "--json",
        ],
    );
    assert!(ok, "{stderr}");
    let answer: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(answer["partner"], served.partner);
    assert_eq!(answer["removed"]["customers"], 1);

    // A partner's token is refused.
    let (ok, _, stderr) = pcq(
        cwd.path(),
        &["admin", "reset", "--url", &served.url, "--token", &user],
    );
    assert!(!ok);
    assert!(stderr.contains("403"), "{stderr}");
}

#[tokio::test]
async fn admin_faults_add_list_rm_and_clear() {
    let cwd = tempfile::tempdir().unwrap();
    let served = PCQ.serve_in(cwd.path(), &[]);
    let user = PCQ.token(Key::InWorkingDir(cwd.path()), &served.partner, &[]);
    let faults = |args: &[&str]| {
        let mut all = vec!["admin", "faults"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--url", &served.url]);
        pcq(cwd.path(), &all)
    };

    let (ok, stdout, stderr) = faults(&[
        "add",
        "--method",
        "POST",
        "--path",
        "/v1/customers",
        "--status",
        "503",
        "--retry-after",
        "3",
        "--count",
        "1",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let added: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(added["status"], 503, "{added}");
    assert_eq!(added["remaining"], 1, "{added}");
    let body = json!({"companyProfile": {"domain": "faulted.example.edu"}});
    let (status, envelope) = served.post("/v1/customers", &user, body.clone()).await;
    assert_eq!(status, 503, "{envelope}");
    assert_eq!(envelope["parameters"]["faultId"], added["id"]);
    // Spent after one firing.
    let (ok, stdout, _) = faults(&["list", "--json"]);
    assert!(ok);
    assert_eq!(serde_json::from_str::<Value>(&stdout).unwrap(), json!([]));
    let (status, _) = served.post("/v1/customers", &user, body).await;
    assert_eq!(status, 201);

    let (ok, stdout, stderr) = faults(&[
        "add",
        "--path",
        "/v1/customers/*/qualifications",
        "--status",
        "reset",
        "--when",
        "after",
        "--partner",
        &served.partner,
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("added "), "{stdout}");
    let id = stdout["added ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let (ok, stdout, _) = faults(&["list"]);
    assert!(ok);
    assert!(
        stdout.contains(&id) && stdout.contains("status reset"),
        "{stdout}"
    );
    assert!(stdout.contains(&served.partner), "{stdout}");
    assert!(stdout.trim_end().ends_with("1 fault"), "{stdout}");
    let (ok, stdout, stderr) = faults(&["rm", &id]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), format!("removed fault {id}"));
    let (ok, _, stderr) = faults(&["rm", &id]);
    assert!(!ok);
    assert!(stderr.contains("404"), "{stderr}");

    // Refusals say why.
    let (ok, _, stderr) = faults(&["add", "--path", "/v1/customers", "--status", "302"]);
    assert!(!ok);
    assert!(
        stderr.contains("400") && stderr.contains("400 to 599"),
        "{stderr}"
    );
    let (ok, _, stderr) = pcq(
        cwd.path(),
        &[
            "admin",
            "faults",
            "list",
            "--url",
            &served.url,
            "--token",
            &user,
        ],
    );
    assert!(!ok);
    assert!(stderr.contains("403"), "{stderr}");

    let (ok, _, _) = faults(&["add", "--path", "/sample/*", "--delay-ms", "10"]);
    assert!(ok);
    let (ok, stdout, stderr) = faults(&["clear"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "removed 1 faults");
}
