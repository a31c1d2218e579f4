//! The partner's client commands of the `pcq` binary (customers, qualifications, validation
//! codes, audit records), completions and --version, against a spawned `pcq serve`.

use std::path::Path;

use pcq_test_support::{Key, Pcq};
use serde_json::{Value, json};

/// The binary under test.
const PCQ: Pcq = Pcq::new(env!("CARGO_BIN_EXE_pcq"));

/// Runs `pcq ARGS` in `cwd`: its exit code, standard output and standard error.
fn pcq(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let out = PCQ
        .command()
        .args(args)
        .current_dir(cwd)
        .env_remove("PCQ_URL")
        .env_remove("PCQ_TOKEN")
        .output()
        .expect("pcq runs");
    (
        out.status.code().expect("pcq exits"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `pcq ARGS --url URL` in `cwd`; it must succeed. Returns its standard output.
fn ok(cwd: &Path, url: &str, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend(["--url", url]);
    let (code, out, err) = pcq(cwd, &all);
    assert_eq!(code, 0, "pcq {args:?} failed: {err}");
    out
}

/// Runs `pcq ARGS --url URL --json` in `cwd`; it must succeed. Returns its JSON.
fn ok_json(cwd: &Path, url: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = ok(cwd, url, &all);
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("pcq {args:?} printed no JSON: {e}: {out}"))
}

#[tokio::test]
async fn client_commands_print_tables_and_the_apis_own_json() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path();
    let served = PCQ.serve_in(dir, &[]);
    let url = served.url.as_str();
    let user = PCQ.token(Key::InWorkingDir(dir), &served.partner, &[]);
    let admin = PCQ.token(
        Key::InWorkingDir(dir),
        &served.partner,
        &["--role", "Pcq.Admin"],
    );

    // Create: a table with what was sent; the JSON is the API's customer.
    let table = ok(
        dir,
        url,
        &[
            "customers",
            "create",
            "--domain",
            "cli-school.example.edu",
            "--company-name",
            "CLI School",
            "--email",
            "it@cli-school.example.edu",
            "--culture",
            "en-GB",
            "--country",
            "GB",
        ],
    );
    for shown in [
        "cli-school.example.edu",
        "CLI School",
        "it@cli-school.example.edu",
        "en-GB",
        "GB",
        "reseller",
    ] {
        assert!(table.contains(shown), "{shown} in {table}");
    }
    let created = ok_json(
        dir,
        url,
        &["customers", "create", "--domain", "cli-agency.example.gov"],
    );
    let agency = created["id"].as_str().unwrap().to_owned();
    let (status, api) = served.get(&format!("/v1/customers/{agency}"), &user).await;
    assert_eq!(status, 200);
    assert_eq!(created["companyProfile"], api["companyProfile"]);
    assert_eq!(created["links"], api["links"]);

    // List: both customers; the JSON is the API's items.
    let table = ok(dir, url, &["customers", "list"]);
    assert!(
        table.contains("cli-school.example.edu") && table.contains("cli-agency.example.gov"),
        "{table}"
    );
    assert!(table.contains("2 customers"), "{table}");
    let listed = ok_json(dir, url, &["customers", "list"]);
    let (_, page) = served.get("/v1/customers?size=1000", &user).await;
    assert_eq!(listed, page["items"]);
    let school = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["companyProfile"]["domain"] == "cli-school.example.edu")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Get.
    let table = ok(dir, url, &["customers", "get", &school]);
    assert!(
        table.contains(&school) && table.contains("cli-school.example.edu"),
        "{table}"
    );
    let got = ok_json(dir, url, &["customers", "get", &school]);
    let (_, api) = served.get(&format!("/v1/customers/{school}"), &user).await;
    assert_eq!(got, api);

    // Qualifications: Education starts in review.
    let table = ok(
        dir,
        url,
        &[
            "qualifications",
            "request",
            &school,
            "education",
            "--segment",
            "higher-education",
            "--website",
            "https://cli-school.example.edu",
        ],
    );
    assert!(
        table.contains("Education") && table.contains("InReview"),
        "{table}"
    );
    let soe = ok_json(
        dir,
        url,
        &["qualifications", "request", &school, "state-owned-entity"],
    );
    assert_eq!(soe, json!({"qualification": "StateOwnedEntity"}));
    let table = ok(dir, url, &["qualifications", "get", &school]);
    assert!(
        table.contains("InReview") && table.contains("StateOwnedEntity"),
        "{table}"
    );
    let held = ok_json(dir, url, &["qualifications", "get", &school]);
    let (_, api) = served
        .get(&format!("/v1/customers/{school}/qualifications"), &user)
        .await;
    assert_eq!(held, api);
    assert_eq!(held.as_array().unwrap().len(), 2);

    // Validation codes, and a GCC qualification with one.
    let out = ok(dir, url, &["validation-codes", "list"]);
    assert!(out.contains("no validation codes"), "{out}");
    let (status, code) = served
        .post(
            &format!("/_pcq/admin/partners/{}/validation-codes", served.partner),
            &admin,
            json!({"organizationName": "CLI Agency", "maxCreates": 3}),
        )
        .await;
    assert_eq!(status, 201, "{code}");
    let code = code["validationId"].as_str().unwrap().to_owned();
    let table = ok(dir, url, &["validation-codes", "list"]);
    assert!(
        table.contains(&code) && table.contains("CLI Agency") && table.contains('3'),
        "{table}"
    );
    let gcc = ok_json(
        dir,
        url,
        &["qualifications", "request", &agency, "gcc", "--code", &code],
    );
    assert_eq!(gcc["qualification"], "GovernmentCommunityCloud");
    assert_eq!(gcc["vettingStatus"], "Approved");
    let codes = ok_json(dir, url, &["validation-codes", "list"]);
    let (_, api) = served.get("/v1/customers/all/validations", &user).await;
    assert_eq!(codes, api);
    assert_eq!(codes[0]["remainingCreates"], 2);

    // Audit records, all and of one customer.
    let table = ok(dir, url, &["audit", "list"]);
    assert!(
        table.contains("add_customer") && table.contains("update_customer_qualification"),
        "{table}"
    );
    let records = ok_json(dir, url, &["audit", "list", "--customer", &agency]);
    let (_, api) = served
        .get(
            &format!("/v1/auditrecords?customerId={agency}&size=1000"),
            &user,
        )
        .await;
    assert_eq!(records, api["items"]);
    let kinds: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["operationType"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"add_customer") && kinds.len() >= 2,
        "{kinds:?}"
    );
    assert!(
        records
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["customerId"] == agency.as_str()),
        "{records}"
    );

    // --tenant mints the token for another partner, who has no customers.
    let out = ok(
        dir,
        url,
        &[
            "customers",
            "list",
            "--tenant",
            "6a1e0c55-5d1b-4f0e-9a51-0c0ffee00001",
        ],
    );
    assert_eq!(out.trim(), "no customers");

    // PCQ_URL and PCQ_TOKEN stand for --url and --token (here in a directory without a key).
    let elsewhere = tempfile::tempdir().unwrap();
    let out = PCQ
        .command()
        .args(["customers", "list", "--json"])
        .current_dir(elsewhere.path())
        .env("PCQ_URL", url)
        .env("PCQ_TOKEN", &user)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    // Without a token or a store to mint one from, pcq says what to give.
    let (code, _, err) = pcq(elsewhere.path(), &["customers", "list", "--url", url]);
    assert_eq!(code, 1);
    assert!(err.contains("--token"), "{err}");
}

#[test]
fn wrong_usage_exits_2() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path();
    for args in [
        &["customers"][..],
        &["customers", "create"],
        &["customers", "get"],
        &["customers", "list", "--bogus"],
        &["qualifications", "request", "x", "nonprofit"],
        &[
            "qualifications",
            "request",
            "x",
            "education",
            "--segment",
            "k13",
        ],
        &["customers", "import", "x.csv", "--concurrency", "0"],
        &["audit", "list", "--since"],
        &["completions", "tcsh"],
        &["no-such-command"],
    ] {
        let (code, out, err) = pcq(dir, args);
        assert_eq!(code, 2, "pcq {args:?}: {out}{err}");
        assert!(
            err.contains("Usage") || err.contains("--help"),
            "clap says how to use it: pcq {args:?}: {err}"
        );
    }
}

#[tokio::test]
async fn api_errors_exit_1_with_status_code_and_description() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path();
    let served = PCQ.serve_in(dir, &[]);
    let url = served.url.as_str();

    let unknown = "9a0b1c2d-0000-4000-8000-000000000001";
    let (code, out, err) = pcq(dir, &["customers", "get", unknown, "--url", url]);
    assert_eq!(code, 1, "{out}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("404") && err.contains(unknown),
        "status and description: {err}"
    );
    assert!(err.contains("code"), "the fault's code: {err}");

    let (code, _, err) = pcq(dir, &["customers", "get", "not-a-guid", "--url", url]);
    assert_eq!(code, 1);
    assert!(err.contains("400") && err.contains("900118"), "{err}");

    ok(
        dir,
        url,
        &["customers", "create", "--domain", "twice.example.com"],
    );
    let (code, _, err) = pcq(
        dir,
        &[
            "customers",
            "create",
            "--domain",
            "twice.example.com",
            "--url",
            url,
        ],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("409") && err.contains("already exists"),
        "{err}"
    );

    // A qualification pcq refuses: a GCC code that does not exist.
    let customer = ok_json(
        dir,
        url,
        &["customers", "create", "--domain", "gcc.example.gov"],
    );
    let id = customer["id"].as_str().unwrap();
    let (code, _, err) = pcq(
        dir,
        &[
            "qualifications",
            "request",
            id,
            "gcc",
            "--code",
            "424242",
            "--url",
            url,
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("400") && err.contains("424242"), "{err}");

    // Nothing listens there: a transport error, exit 1 too.
    let (code, _, err) = pcq(
        dir,
        &[
            "customers",
            "list",
            "--url",
            "http://127.0.0.1:9",
            "--token",
            "x",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("127.0.0.1:9"), "{err}");
}

#[test]
fn completions_parse_and_the_version_is_printed() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path();
    let (code, script, err) = pcq(dir, &["completions", "bash"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        script.contains("customers") && script.contains("import"),
        "{script}"
    );
    let file = dir.join("pcq.bash");
    std::fs::write(&file, &script).unwrap();
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    for shell in ["zsh", "fish"] {
        let (code, script, _) = pcq(dir, &["completions", shell]);
        assert_eq!(code, 0);
        assert!(script.contains("qualifications"), "{shell}: {script}");
    }

    let (code, out, _) = pcq(dir, &["--version"]);
    assert_eq!((code, out.as_str()), (0, "pcq 0.1.0\n"));
}
