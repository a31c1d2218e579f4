//! The `pcq` binary as a black box: a spawned process on port 0 over a fresh data directory.

use std::path::Path;
use std::process::Stdio;

use pcq_test_support::{Key, Pcq, Server, client, output_of};
use serde_json::json;

/// The binary under test.
const PCQ: Pcq = Pcq::new(env!("CARGO_BIN_EXE_pcq"));

#[tokio::test]
async fn serve_on_a_fresh_directory_then_restart() {
    let cwd = tempfile::tempdir().unwrap();
    let served = PCQ.serve_in(cwd.path(), &[]);
    let data = cwd.path().join("pcq-data");
    assert!(
        data.join("pcq.db").exists(),
        "the default data directory is ./pcq-data"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("dev-issuer.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The banner's token works as printed.
    let example = served
        .example_token
        .clone()
        .expect("the banner has a curl example with a token");
    let (status, list) = served.get("/v1/customers", &example).await;
    assert_eq!((status, list["totalCount"].as_u64()), (200, Some(0)));

    // Tokens from `pcq token` work against the running server.
    let user = PCQ.token(Key::DataDir(&data), &served.partner, &[]);
    let (status, customer) = served
        .post(
            "/v1/customers",
            &user,
            json!({"companyProfile": {"domain": "cli.example.edu"}}),
        )
        .await;
    assert_eq!(status, 201, "{customer}");
    let id = customer["id"].as_str().unwrap().to_owned();
    let (status, q) = served
        .post(
            &format!("/v1/customers/{id}/qualifications"),
            &user,
            json!({"qualification": "Education"}),
        )
        .await;
    assert_eq!(
        (status, q["vettingStatus"].as_str()),
        (201, Some("InReview"))
    );

    let app_only = PCQ.token(Key::DataDir(&data), &served.partner, &["--app-only"]);
    let (status, fault) = served
        .post(
            &format!("/v1/customers/{id}/qualifications"),
            &app_only,
            json!({"qualification": "StateOwnedEntity"}),
        )
        .await;
    assert_eq!((status, fault["code"].as_u64()), (403, Some(900150)));

    let expired = PCQ.token(Key::DataDir(&data), &served.partner, &["--ttl", "-60"]);
    let (status, _) = served.get("/v1/customers", &expired).await;
    assert_eq!(status, 401);

    let admin = PCQ.token(
        Key::DataDir(&data),
        &served.partner,
        &["--role", "Pcq.Admin", "--app-only"],
    );
    let (status, code) = served
        .post(
            &format!("/_pcq/admin/partners/{}/validation-codes", served.partner),
            &admin,
            json!({"organizationName": "CLI Gov", "maxCreates": 2}),
        )
        .await;
    assert_eq!(status, 201, "{code}");

    let partner = served.partner.clone();
    let status = served.stop();
    assert!(
        status.success(),
        "SIGTERM shuts pcq down cleanly: {status:?}"
    );

    // Everything is still there after a restart, under the same development partner.
    let again = PCQ.serve_in(cwd.path(), &[]);
    assert_eq!(again.partner, partner);
    let (status, got) = again
        .get(&format!("/v1/customers/{id}/qualifications"), &user)
        .await;
    assert_eq!(status, 200);
    assert_eq!(got[0]["qualification"], "Education");
    let (_, codes) = again.get("/v1/customers/all/validations", &user).await;
    assert_eq!(codes[0]["organizationName"], "CLI Gov");
    assert!(again.stop().success());
}

#[tokio::test]
async fn in_memory_writes_nothing_to_disk() {
    let cwd = tempfile::tempdir().unwrap();
    let served = PCQ.serve_in(cwd.path(), &["--in-memory"]);
    let example = served.example_token.clone().unwrap();
    let (status, _) = served
        .post(
            "/v1/customers",
            &example,
            json!({"companyProfile": {"domain": "memory.example.com"}}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, list) = served.get("/v1/customers", &example).await;
    assert_eq!(list["totalCount"], 1);
    assert!(served.stop().success());
    assert_eq!(
        std::fs::read_dir(cwd.path()).unwrap().count(),
        0,
        "nothing on disk"
    );
}

#[tokio::test]
async fn seed_file_loads_at_every_start_without_duplicates() {
    let cwd = tempfile::tempdir().unwrap();
    let seed = cwd.path().join("seed.json");
    std::fs::write(
        &seed,
        r#"{"partners": [{"tenantId": "dev",
            "customers": [{"id": "0c39a7b4-2b49-4b0e-9b6c-7b5e0d3f8a11",
                           "companyProfile": {"domain": "seeded.example.edu", "companyName": "Seeded School"},
                           "qualifications": [{"qualification": "Education", "educationSegment": "K12", "vettingStatus": "Approved"}]}],
            "validationCodes": [{"validationId": "555000", "organizationName": "Seed Gov", "maxCreates": 3}]}]}"#,
    )
    .unwrap();
    let seed_arg = seed.to_str().unwrap();
    for _ in 0..2 {
        let served = PCQ.serve_in(cwd.path(), &["--seed", seed_arg]);
        let user = PCQ.token(Key::InWorkingDir(cwd.path()), &served.partner, &[]);
        let (_, list) = served.get("/v1/customers", &user).await;
        assert_eq!(list["totalCount"], 1);
        assert_eq!(
            list["items"][0]["companyProfile"]["companyName"],
            "Seeded School"
        );
        let (_, quals) = served
            .get(
                "/v1/customers/0c39a7b4-2b49-4b0e-9b6c-7b5e0d3f8a11/qualifications",
                &user,
            )
            .await;
        assert_eq!(quals[0]["vettingStatus"], "Approved");
        let (_, codes) = served.get("/v1/customers/all/validations", &user).await;
        assert_eq!(codes.as_array().unwrap().len(), 1);
        assert_eq!(codes[0]["validationId"], "555000");
        assert!(served.stop().success());
    }
}

fn fails(cwd: &Path, args: &[&str]) -> String {
    let out = PCQ
        .command()
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn bad_start_up_inputs_fail_clearly() {
    let cwd = tempfile::tempdir().unwrap();
    let err = fails(cwd.path(), &["serve", "--config", "missing.toml"]);
    assert!(err.contains("missing.toml"), "{err}");

    std::fs::write(cwd.path().join("bad.toml"), "contract = \"1999\"\n").unwrap();
    let err = fails(cwd.path(), &["serve", "--config", "bad.toml"]);
    assert!(err.contains("invalid configuration"), "{err}");

    std::fs::write(cwd.path().join("typo.toml"), "[auth]\naudiense = \"x\"\n").unwrap();
    let err = fails(cwd.path(), &["serve", "--config", "typo.toml"]);
    assert!(err.contains("audiense"), "{err}");

    std::fs::write(
        cwd.path().join("seed.json"),
        "{\"partners\": [{\"tenantId\": \"x\"}]}",
    )
    .unwrap();
    let err = fails(cwd.path(), &["serve", "--in-memory", "--seed", "seed.json"]);
    assert!(
        err.contains("seed.json") && err.contains("tenantId"),
        "{err}"
    );

    let err = fails(
        cwd.path(),
        &["token", "--data-dir", "d", "--tenant", "not-a-guid"],
    );
    assert!(err.contains("not a GUID"), "{err}");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = listener.local_addr().unwrap().to_string();
    let err = fails(cwd.path(), &["serve", "--in-memory", "--listen", &taken]);
    assert!(err.contains(&taken), "{err}");
}

#[tokio::test]
async fn throttling_is_configured_by_environment_and_no_throttle_turns_it_off() {
    let cwd = tempfile::tempdir().unwrap();
    for (args, throttled) in [
        (&["--in-memory"][..], true),
        (&["--in-memory", "--no-throttle"][..], false),
    ] {
        let mut command = PCQ.serve_command(args);
        command
            .current_dir(cwd.path())
            .env("PCQ_THROTTLE__CUSTOMERS__REQUESTS_PER_MINUTE", "2");
        let served = Server::start(command);
        let url = &served.url;
        let example = served.example_token.clone().unwrap();
        let mut statuses = Vec::new();
        for _ in 0..4 {
            let resp = client()
                .get(format!("{url}/v1/customers"))
                .bearer_auth(&example)
                .send()
                .await
                .unwrap();
            if resp.status() == 429 {
                let retry_after = resp.headers()["retry-after"].to_str().unwrap();
                assert!(retry_after.parse::<u64>().unwrap() >= 1, "{retry_after}");
            }
            statuses.push(resp.status().as_u16());
        }
        let expected = if throttled {
            vec![200, 200, 429, 429]
        } else {
            vec![200; 4]
        };
        assert_eq!(statuses, expected, "pcq serve {args:?}");
        assert!(served.stop().success());
    }
}

#[tokio::test]
async fn environment_configures_and_unknown_pcq_variables_are_ignored() {
    let cwd = tempfile::tempdir().unwrap();
    let log_path = cwd.path().join("pcq.log");
    // The address comes from the environment, not from --listen.
    let mut command = PCQ.command();
    command
        .args(["serve", "--in-memory"])
        .current_dir(cwd.path())
        .env("PCQ_LISTEN", "127.0.0.1:0")
        .env("PCQ_AUTH__AUDIENCE", "api://pcq-env")
        .env("PCQ_SOMETHING_ELSE", "1")
        .env("PCQ_CONTRACT", "2023")
        .env("RUST_LOG", "warn")
        .stderr(std::fs::File::create(&log_path).unwrap());
    let served = Server::start(command);
    let example = served.example_token.clone().unwrap();
    // The banner token carries the audience from the environment, and the server accepts it.
    let (status, customer) = served
        .post(
            "/v1/customers",
            &example,
            json!({"companyProfile": {"domain": "env.example.edu"}}),
        )
        .await;
    assert_eq!(status, 201);
    // PCQ_CONTRACT=2023 (a bare number, as shells write it) is in force.
    let id = customer["id"].as_str().unwrap();
    let (status, fault) = served
        .post(
            &format!("/v1/customers/{id}/qualifications"),
            &example,
            json!({"qualification": "Education"}),
        )
        .await;
    assert_eq!(
        (status, fault["errorName"].as_str()),
        (400, Some("EducationSegmentRequired"))
    );
    assert!(served.stop().success());
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("PCQ_SOMETHING_ELSE"), "{log}");
}

#[test]
fn help_lists_the_commands() {
    let out = PCQ.command().arg("--help").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("serve") && text.contains("token"), "{text}");
}

/// A database that cannot be used stops pcq at start with the reason and status 1, never with
/// a panic, and never shows the password.
#[test]
fn a_database_that_cannot_be_used_stops_pcq_with_the_reason() {
    let cwd = tempfile::tempdir().unwrap();
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = format!("postgres://pcq:hunter2@127.0.0.1:{port}/pcq");
    for (args, expected) in [
        (
            vec![
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &unreachable,
            ],
            "cannot reach the database server",
        ),
        (
            vec!["migrate", "--database-url", &unreachable],
            "cannot reach the database server",
        ),
        (
            vec![
                "token",
                "--tenant",
                "4f1c2b6e-96a2-4b8e-a0b8-2d8f52a3c9d1",
                "--database-url",
                &unreachable,
            ],
            "cannot reach the database server",
        ),
        (
            vec![
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                "mysql://pcq:hunter2@db/pcq",
            ],
            "must start with postgres://",
        ),
    ] {
        let out = PCQ
            .command()
            .args(&args)
            .current_dir(cwd.path())
            .env("RUST_LOG", "warn")
            .env_remove("PCQ_DATABASE_URL")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("hunter2"),
            "{args:?} shows the password: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} printed a banner");
    }
}

/// Tokens and signing keys never reach the logs, even at the most verbose level, and the key
/// files are readable by their owner only.
#[tokio::test]
async fn secrets_stay_out_of_the_logs() {
    let cwd = tempfile::tempdir().unwrap();
    let data = cwd.path().join("data");
    let log_path = cwd.path().join("pcq.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let data_arg = data.to_str().unwrap().to_owned();
    let mut command = PCQ.serve_command(&["--data-dir", &data_arg]);
    command
        .env("RUST_LOG", "trace")
        .env("PCQ_WORKER__POLL_INTERVAL_MS", "20")
        .stderr(log);
    let served = Server::start(command);
    let (url, partner) = (served.url.clone(), served.partner.clone());
    let example = served.example_token.clone().unwrap();

    let user = PCQ.token(Key::DataDir(&data), &partner, &[]);
    let admin = PCQ.token(Key::DataDir(&data), &partner, &["--role", "Pcq.Admin"]);
    let expired = PCQ.token(Key::DataDir(&data), &partner, &["--ttl", "-60"]);
    let forged = format!("{}x", &user[..user.len() - 1]);
    let (status, _) = served
        .post(
            "/v1/customers",
            &user,
            json!({"companyProfile": {"domain": "logs.example.edu"}}),
        )
        .await;
    assert_eq!(status, 201);
    for bad in [&expired, &forged, &example] {
        served.get("/v1/customers", bad).await;
    }
    let (status, _) = served
        .post("/_pcq/admin/worker/drain", &admin, json!({}))
        .await;
    assert!(status < 300, "{status}");
    // The webhook signing key is made when first needed.
    let certificate = client()
        .get(format!("{url}/_pcq/webhooks/certificate"))
        .send()
        .await
        .unwrap();
    assert_eq!(certificate.status(), 200);
    assert!(served.stop().success());

    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logged.lines().count() > 20,
        "trace logging wrote little: {logged}"
    );
    let mut secrets: Vec<(String, &str)> = Vec::new();
    for (name, t) in [
        ("user token", &user),
        ("admin token", &admin),
        ("expired token", &expired),
        ("forged token", &forged),
        ("example token", &example),
    ] {
        secrets.push((t.clone(), name));
        // The signature alone identifies a token too.
        secrets.push((t.rsplit('.').next().unwrap().to_owned(), name));
    }
    for file in ["dev-issuer.key", "webhook-signing.key"] {
        let path = data.join(file);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        let pem = std::fs::read_to_string(&path).unwrap();
        for line in pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 16)
        {
            secrets.push((line.to_owned(), "a signing key"));
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the data directory");
    }
    for (secret, name) in &secrets {
        assert!(
            !logged.contains(secret.as_str()),
            "the log holds the {name}"
        );
    }
}

/// `pcq admin load` fills the data directory; `pcq serve` then serves what it loaded.
#[tokio::test]
async fn admin_load_fills_the_store() {
    let cwd = tempfile::tempdir().unwrap();
    let data = cwd.path().join("data");
    let said = output_of(
        PCQ.command()
            .args(["admin", "load", "--customers", "1500", "--batch", "600"])
            .arg("--data-dir")
            .arg(&data),
    );
    assert!(
        said.starts_with("loaded 1500 customers for partner "),
        "{said}"
    );
    assert!(said.contains("(4500 rows)"), "{said}");

    let data_arg = data.to_str().unwrap().to_owned();
    let served = PCQ.serve_in(cwd.path(), &["--data-dir", &data_arg]);
    let user = PCQ.token(Key::DataDir(&data), &served.partner, &[]);
    let (status, page) = served.get("/v1/customers?size=1000", &user).await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1000);
    assert!(page["continuationToken"].is_string(), "{page}");

    let fails = fails(cwd.path(), &["admin", "load", "--customers", "0"]);
    assert!(fails.contains("--customers"), "{fails}");
}

/// In a data directory that exists already (made by the operator with the usual umask), the
/// database, its WAL and its shared-memory file are readable by their owner only; files an
/// older pcq left readable by others are made private on start.
#[cfg(unix)]
#[tokio::test]
async fn database_files_are_private_in_an_existing_directory() {
    use std::os::unix::fs::PermissionsExt;
    let cwd = tempfile::tempdir().unwrap();
    let data = cwd.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data_arg = data.to_str().unwrap().to_owned();
    let mode = |file: &str| {
        std::fs::metadata(data.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    let files = ["pcq.db", "pcq.db-wal", "pcq.db-shm"];

    let served = PCQ.serve_in(cwd.path(), &["--data-dir", &data_arg]);
    let user = PCQ.token(Key::DataDir(&data), &served.partner, &[]);
    let (status, _) = served
        .post(
            "/v1/customers",
            &user,
            json!({"companyProfile": {"domain": "private.example.edu"}}),
        )
        .await;
    assert_eq!(status, 201);
    for file in files {
        assert_eq!(mode(file), 0o600, "{file}");
    }
    assert!(served.stop().success());

    // Files made readable by others are made private again on the next start.
    std::fs::set_permissions(data.join("pcq.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let served = PCQ.serve_in(cwd.path(), &["--data-dir", &data_arg]);
    let (status, _) = served.get("/v1/customers", &user).await;
    assert_eq!(status, 200);
    for file in files {
        assert_eq!(mode(file), 0o600, "{file}");
    }
}

/// A fake HTTP proxy: answers every request 200 and reports each request line it got.
fn fake_proxy() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (seen, requests) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut line = String::new();
            let _ = BufReader::new(&stream).read_line(&mut line);
            let _ = seen.send(line.trim().to_owned());
            let _ = (&stream).write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (url, requests)
}

/// Registers `url` for test events, sends one and drains the worker (of a pcq serve started
/// with `--no-worker`): the drain's progress.
async fn deliver_a_test_event(served: &Server, data: &Path, url: &str) -> serde_json::Value {
    let app = PCQ.token(Key::DataDir(data), &served.partner, &["--app-only"]);
    let admin = PCQ.token(
        Key::DataDir(data),
        &served.partner,
        &["--role", "Pcq.Admin"],
    );
    let (status, body) = served
        .post(
            "/webhooks/v1/registration",
            &app,
            json!({"WebhookUrl": url, "WebhookEvents": ["test-created"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = served
        .post(
            "/webhooks/v1/registration/validationEvents",
            &app,
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, progress) = served
        .post("/_pcq/admin/worker/drain", &admin, json!({}))
        .await;
    assert_eq!(status, 200, "{progress}");
    progress
}

/// Deliveries never go through a proxy named in the environment: such a proxy would resolve
/// the receiver's name itself, past the filter that keeps events off private addresses.
#[tokio::test]
async fn deliveries_ignore_proxies_in_the_environment() {
    let cwd = tempfile::tempdir().unwrap();
    let data = cwd.path().join("data");
    let data_arg = data.to_str().unwrap().to_owned();
    let (proxy, proxied) = fake_proxy();
    let mut command = PCQ.serve_command(&["--data-dir", &data_arg, "--no-worker"]);
    for variable in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        command.env(variable, &proxy);
    }
    command.env("PCQ_WEBHOOKS__ALLOW_PRIVATE_TARGETS", "false");
    let served = Server::start(command);
    // A name that resolves nowhere: only a proxy could deliver to it.
    let progress = deliver_a_test_event(&served, &data, "http://hooks.pcq.invalid/pc").await;
    assert_eq!(
        (
            progress["webhookAttempts"].as_u64(),
            progress["webhooksDelivered"].as_u64()
        ),
        (Some(1), Some(0)),
        "{progress}"
    );
    assert_eq!(proxied.try_iter().collect::<Vec<_>>(), Vec::<String>::new());
}

/// A configured proxy (`webhooks.proxy`) is used for deliveries.
#[tokio::test]
async fn deliveries_use_the_configured_proxy() {
    let cwd = tempfile::tempdir().unwrap();
    let data = cwd.path().join("data");
    let data_arg = data.to_str().unwrap().to_owned();
    let (proxy, proxied) = fake_proxy();
    let mut command = PCQ.serve_command(&["--data-dir", &data_arg, "--no-worker"]);
    command.env("PCQ_WEBHOOKS__PROXY", &proxy);
    let served = Server::start(command);
    let progress = deliver_a_test_event(&served, &data, "http://hooks.pcq.invalid/pc").await;
    assert_eq!(
        progress["webhooksDelivered"].as_u64(),
        Some(1),
        "{progress}"
    );
    assert_eq!(
        proxied.try_iter().collect::<Vec<_>>(),
        ["POST http://hooks.pcq.invalid/pc HTTP/1.1"]
    );
}

/// Webhook URLs with credentials are refused without being echoed, and a failed delivery is
/// logged without the URL's query.
#[tokio::test]
async fn webhook_credentials_and_queries_stay_out_of_answers_and_logs() {
    let cwd = tempfile::tempdir().unwrap();
    let data = cwd.path().join("data");
    let data_arg = data.to_str().unwrap().to_owned();
    let log_path = cwd.path().join("pcq.log");
    let mut command = PCQ.serve_command(&["--data-dir", &data_arg, "--no-worker"]);
    command.stderr(std::fs::File::create(&log_path).unwrap());
    let served = Server::start(command);
    let app = PCQ.token(Key::DataDir(&data), &served.partner, &["--app-only"]);
    let (status, fault) = served
        .post(
            "/webhooks/v1/registration",
            &app,
            json!({"WebhookUrl": "https://pcq:hunter2@hooks.example.com/pc", "WebhookEvents": ["test-created"]}),
        )
        .await;
    assert_eq!(status, 400, "{fault}");
    assert_eq!(fault["parameters"]["field"], "WebhookUrl");
    assert!(!fault.to_string().contains("hunter2"), "{fault}");

    // Nothing listens on a port just freed: the attempt fails and is logged.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("http://127.0.0.1:{port}/pc/in?key=s3cret-in-query");
    let progress = deliver_a_test_event(&served, &data, &url).await;
    assert_eq!(
        progress["webhooksDelivered"].as_u64(),
        Some(0),
        "{progress}"
    );
    assert!(served.stop().success());
    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logged.contains(&format!("http://127.0.0.1:{port}/pc/in")),
        "the failed attempt is logged: {logged}"
    );
    assert!(!logged.contains("s3cret-in-query"), "{logged}");
}

#[test]
fn token_says_on_stderr_when_it_creates_a_new_key() {
    let cwd = tempfile::tempdir().unwrap();
    let partner = "6affab8f-68fe-4688-916b-a96207c95998";
    let run = || {
        let out = PCQ
            .command()
            .args(["token", "--tenant", partner])
            .current_dir(cwd.path())
            .env_remove("PCQ_DATABASE_URL")
            .env_remove("PCQ_DATA_DIR")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        // Only the token on stdout, whatever stderr says.
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        assert_eq!(stdout.trim().split('.').count(), 3, "{stdout}");
        String::from_utf8(out.stderr).unwrap()
    };

    let first = run();
    assert!(
        first.contains("created a new development signing key")
            && first.contains("pcq-data")
            && first.contains("dev-issuer.key")
            && first.contains("refuses")
            && first.contains("--data-dir"),
        "{first}"
    );
    assert!(cwd.path().join("pcq-data/dev-issuer.key").exists());

    // The key exists now: nothing to say.
    let second = run();
    assert!(second.is_empty(), "{second}");
}

/// `pcq review` and `pcq admin` mint their tokens with the same key and say so too when they
/// create it (here against an address where nothing listens, so the command itself fails).
#[test]
fn review_and_admin_say_on_stderr_when_they_create_a_new_key() {
    for (args, tool) in [
        (&["review", "list"][..], "pcq review"),
        (&["admin", "reset"][..], "pcq admin"),
    ] {
        let cwd = tempfile::tempdir().unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let out = PCQ
            .command()
            .args(args)
            .args(["--url", &url])
            .current_dir(cwd.path())
            .env_remove("PCQ_DATABASE_URL")
            .env_remove("PCQ_DATA_DIR")
            .env_remove("PCQ_TOKEN")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains(&format!("{tool}: created a new development signing key"))
                && stderr.contains("--data-dir"),
            "{args:?}: {stderr}"
        );
        assert!(cwd.path().join("pcq-data/dev-issuer.key").exists());
    }
}
