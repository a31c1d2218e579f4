//! `pcq customers import`: a CSV file of thousands of rows against a spawned `pcq serve`, its
//! report of failed rows, a rerun that creates nothing, and a rerun after the import was
//! killed halfway.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use pcq_test_support::{Key, Pcq, Server, client, list_customers};
use serde_json::{Value, json};

/// The binary under test.
const PCQ: Pcq = Pcq::new(env!("CARGO_BIN_EXE_pcq"));

/// `pcq customers import ARGS --url URL` in `cwd`, to its end: exit code, output, error.
fn import(cwd: &Path, url: &str, args: &[&str]) -> (i32, String, String) {
    let out = import_command(cwd, url, args).output().expect("pcq runs");
    (
        out.status.code().expect("pcq exits"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn import_command(cwd: &Path, url: &str, args: &[&str]) -> Command {
    let mut command = PCQ.command();
    command
        .args(["customers", "import"])
        .args(args)
        .args(["--url", url])
        .current_dir(cwd)
        .env_remove("PCQ_URL")
        .env_remove("PCQ_TOKEN");
    command
}

/// Customers by domain, through the API.
async fn domains(served: &Server, token: &str) -> HashMap<String, Vec<String>> {
    let mut by_domain: HashMap<String, Vec<String>> = HashMap::new();
    for c in list_customers(&client(), &served.url, token).await {
        by_domain
            .entry(c["companyProfile"]["domain"].as_str().unwrap().to_owned())
            .or_default()
            .push(c["id"].as_str().unwrap().to_owned());
    }
    by_domain
}

/// The bad rows of the file: their index among the rows, the row, and what the report says.
fn bad_rows() -> Vec<(usize, String, &'static str)> {
    vec![
        (3, "not a domain,,,,,,".into(), "is not valid"),
        (150, "bad_name!.example.com,,,,,,".into(), "is not valid"),
        (
            400,
            format!("{}.example.com,,,,,,", "x".repeat(70)),
            "is not valid",
        ),
        (
            640,
            "np.example.org,,,Nonprofit,,,".into(),
            "\"Nonprofit\" is not one of",
        ),
        (
            777,
            "gcc-nocode.example.gov,,,GovernmentCommunityCloud,,,".into(),
            "needs a validationCode",
        ),
        (
            1000,
            "seg.example.edu,,,Education,K13,,".into(),
            "educationSegment \"K13\"",
        ),
        (
            1201,
            "short.example.com,only two".into(),
            "2 fields, the header 7",
        ),
        (1500, ",Nameless,,,,,".into(), "domain is empty"),
        (
            1750,
            "web.example.edu,,,,,https://web.example.edu,".into(),
            "website is given but qualification is empty",
        ),
        (
            1999,
            "soe-code.example.org,,,StateOwnedEntity,,,123".into(),
            "validationCode is for GovernmentCommunityCloud only",
        ),
    ]
}

/// A good row: its domain and what it asks for (by its index).
fn good_row(i: usize, code: &str) -> (String, String) {
    let domain = format!("imp{i}.example.edu");
    let rest = match i % 4 {
        0 => format!("Imp {i},it{i}@example.edu,Education,HigherEducation,https://{domain},"),
        1 => format!("Imp {i},,StateOwnedEntity,,,"),
        2 if i < 12 => format!(",,GovernmentCommunityCloud,,,{code}"),
        2 => ",,,,,".to_owned(),
        _ => format!("\"Imp, \"\"{i}\"\"\",,education,,,"),
    };
    (domain.clone(), format!("{domain},{rest}"))
}

/// `pcq serve` without throttling in `dir`, with a token of its development partner's user and
/// one of an admin.
fn serve_unthrottled(dir: &Path) -> (Server, String, String) {
    let served = PCQ.serve_in(dir, &["--no-throttle"]);
    let user = PCQ.token(Key::InWorkingDir(dir), &served.partner, &[]);
    let admin = PCQ.token(
        Key::InWorkingDir(dir),
        &served.partner,
        &["--role", "Pcq.Admin"],
    );
    (served, user, admin)
}

#[tokio::test]
async fn bad_rows_are_reported_and_a_rerun_creates_nothing() {
    const ROWS: usize = 2000;
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path();
    let (served, user, admin) = serve_unthrottled(dir);
    let (status, code) = served
        .post(
            &format!("/_pcq/admin/partners/{}/validation-codes", served.partner),
            &admin,
            json!({"organizationName": "Import Agency", "maxCreates": 5}),
        )
        .await;
    assert_eq!(status, 201);
    let code = code["validationId"].as_str().unwrap().to_owned();

    let bad = bad_rows();
    let mut text =
        "Domain,companyName,EMAIL,qualification,educationSegment,website,validationCode\n"
            .to_owned();
    let mut good = Vec::new();
    for i in 0..ROWS {
        match bad.iter().find(|(at, _, _)| *at == i) {
            Some((_, row, _)) => text.push_str(row),
            None => {
                let (domain, row) = good_row(i, &code);
                good.push(domain);
                text.push_str(&row);
            }
        }
        text.push('\n');
    }
    std::fs::write(dir.join("customers.csv"), &text).unwrap();

    let (status, out, err) = import(
        dir,
        &served.url,
        &["customers.csv", "--report", "failed.csv"],
    );
    assert_eq!(status, 1, "some rows failed: {out}{err}");
    assert!(
        out.contains("2000 rows") && out.contains("1990 created, 0 already there, 10 failed"),
        "{out}"
    );
    assert!(err.contains("10 of 2000 rows failed"), "{err}");

    // The report: each bad row with its line number (the header is line 1) and its error.
    let mut report = csv::Reader::from_path(dir.join("failed.csv")).unwrap();
    assert_eq!(
        report.headers().unwrap(),
        vec!["line", "domain", "step", "status", "code", "error"]
    );
    let reported: Vec<csv::StringRecord> = report.records().map(Result::unwrap).collect();
    assert_eq!(reported.len(), 10);
    for (record, (at, _, why)) in reported.iter().zip(&bad) {
        assert_eq!(record[0].parse::<usize>().unwrap(), at + 2, "{record:?}");
        assert!(record[5].contains(why), "line {}: {record:?}", at + 2);
    }
    // The domains pcq refused were sent, and pcq's answer is in the report.
    assert_eq!(
        [&reported[0][2], &reported[0][3], &reported[0][4]],
        ["customer", "400", "800002"]
    );
    assert_eq!(&reported[3][2], "row");

    // The customers, through the API: each good row once, no bad one.
    let listed = domains(&served, &user).await;
    assert_eq!(listed.len(), 1990);
    for domain in &good {
        assert_eq!(listed.get(domain).map(Vec::len), Some(1), "{domain}");
    }
    // What the rows asked for.
    let qualifications = |i: usize| {
        let id = listed[&format!("imp{i}.example.edu")][0].clone();
        let served = &served;
        let user = &user;
        async move {
            served
                .get(&format!("/v1/customers/{id}/qualifications"), user)
                .await
                .1
        }
    };
    assert_eq!(qualifications(0).await[0]["vettingStatus"], "InReview");
    assert_eq!(
        qualifications(1).await,
        json!([{"qualification": "StateOwnedEntity"}])
    );
    assert_eq!(qualifications(14).await, json!([]));
    assert_eq!(
        qualifications(7).await[0]["qualification"],
        "Education",
        "lower-case names work"
    );
    assert_eq!(
        qualifications(2).await[0],
        json!({"qualification": "GovernmentCommunityCloud", "vettingStatus": "Approved",
               "vettingCreateDate": qualifications(2).await[0]["vettingCreateDate"]})
    );
    let remaining = || async {
        served.get("/v1/customers/all/validations", &user).await.1[0]["remainingCreates"].clone()
    };
    assert_eq!(remaining().await, 2, "three GCC rows used the code");

    // The same file again: nothing created, the code not spent again.
    let (status, out, err) = import(dir, &served.url, &["customers.csv", "--json"]);
    assert_eq!(status, 1, "{err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            &summary["rows"],
            &summary["created"],
            &summary["alreadyThere"],
            &summary["failed"]
        ),
        (&json!(2000), &json!(0), &json!(1990), &json!(10)),
        "{summary}"
    );
    let lines: Vec<u64> = summary["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["line"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = bad.iter().map(|(at, _, _)| *at as u64 + 2).collect();
    assert_eq!(lines, expected);
    let listed = domains(&served, &user).await;
    assert_eq!(listed.len(), 1990);
    assert_eq!(remaining().await, 2);
    // The rerun's requests carried the first run's request ids: pcq answered each
    // qualification request with its stored answer (the journal's newest entries).
    let (status, journal) = served
        .get("/_pcq/admin/requests?method=POST&limit=1000", &admin)
        .await;
    assert_eq!(status, 200);
    let posts = journal["items"].as_array().unwrap();
    assert!(posts.len() >= 1000, "{}", posts.len());
    for entry in posts {
        assert!(
            entry["path"].as_str().unwrap().ends_with("/qualifications"),
            "the rerun created no customer: {entry}"
        );
        assert_eq!(
            (&entry["status"], &entry["replayed"]),
            (&json!(201), &json!(true)),
            "{entry}"
        );
    }
    assert_eq!(qualifications(0).await.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_import_killed_halfway_then_run_again_creates_each_row_once() {
    const ROWS: usize = 3000;
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path();
    let (served, user, admin) = serve_unthrottled(dir);
    let mut text = String::from("domain,qualification\n");
    for i in 0..ROWS {
        text.push_str(&format!("kill{i}.example.edu,Education\n"));
    }
    std::fs::write(dir.join("big.csv"), text).unwrap();
    // Slow the creations down a little, so that the import is surely killed halfway.
    let (status, fault) = served
        .post(
            "/_pcq/admin/faults",
            &admin,
            json!({"method": "POST", "path": "/v1/customers", "delayMs": 10}),
        )
        .await;
    assert_eq!(status, 201, "{fault}");

    let mut child = import_command(dir, &served.url, &["big.csv", "--concurrency", "4"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let created = list_customers(&http, &served.url, &user).await.len();
        if created >= 200 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before it was killed"
        );
        assert!(Instant::now() < deadline, "the import makes no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = list_customers(&http, &served.url, &user).await.len();
    assert!(
        (200..ROWS).contains(&before),
        "killed halfway: {before} customers"
    );
    let (status, _) = served
        .call(reqwest::Method::DELETE, "/_pcq/admin/faults", &admin, None)
        .await;
    assert_eq!(status, 200);

    let (status, out, err) = import(dir, &served.url, &["big.csv", "--json"]);
    assert_eq!(status, 0, "{out}{err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    // The requests in flight when the import was killed (at most its 4) may still have been
    // carried out after the customers were counted: they are already there too.
    let already = summary["alreadyThere"].as_u64().unwrap() as usize;
    assert!(
        (before..=before + 4).contains(&already),
        "{before} counted after the kill: {summary}"
    );
    assert_eq!(summary["created"], (ROWS - already) as u64, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");

    // Each row's customer exactly once, each with its Education qualification once.
    let listed = domains(&served, &user).await;
    assert_eq!(listed.len(), ROWS);
    for i in 0..ROWS {
        let ids = &listed[&format!("kill{i}.example.edu")];
        assert_eq!(ids.len(), 1, "kill{i}");
    }
    let ids: Vec<String> = listed.into_values().flatten().collect();
    let held: Vec<Value> = futures_util::stream::iter(ids)
        .map(|id| {
            let served = &served;
            let user = &user;
            async move {
                served
                    .get(&format!("/v1/customers/{id}/qualifications"), user)
                    .await
                    .1
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for q in &held {
        assert_eq!(q.as_array().map(Vec::len), Some(1), "{q}");
        assert_eq!(q[0]["qualification"], "Education", "{q}");
    }
}

#[tokio::test]
async fn a_header_mistake_stops_the_import_before_anything_is_sent() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path();
    let served = PCQ.serve_in(dir, &[]);
    let user = PCQ.token(Key::InWorkingDir(dir), &served.partner, &[]);
    std::fs::write(
        dir.join("phones.csv"),
        "domain,companyName,phone\na.example.com,A,+1 555\n",
    )
    .unwrap();
    let (status, _, err) = import(dir, &served.url, &["phones.csv"]);
    assert_eq!(status, 1);
    assert!(
        err.contains("unknown column \"phone\"") && err.contains("column 3"),
        "{err}"
    );
    assert_eq!(list_customers(&client(), &served.url, &user).await.len(), 0);

    let (status, _, err) = import(dir, &served.url, &["missing.csv"]);
    assert_eq!(status, 1);
    assert!(err.contains("missing.csv"), "{err}");
}
