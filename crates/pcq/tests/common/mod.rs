//! What the black-box tests of the `pcq` binary share: a running `pcq serve` and its banner,
//! tokens minted by `pcq token`, and HTTP calls. Each test binary uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// The binary under test.
pub const PCQ: &str = env!("CARGO_BIN_EXE_pcq");

/// `pcq serve --listen 127.0.0.1:0 ARGS` logging warnings only, its standard error discarded;
/// add to it (directory, variables, redirections) before [`Server::start`].
pub fn serve_command(args: &[&str]) -> Command {
    let mut command = Command::new(PCQ);
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null());
    command
}

/// `pcq serve ARGS` started in `cwd` (whose `./pcq-data` is the default data directory).
pub fn serve_in(cwd: &Path, args: &[&str]) -> Server {
    let mut command = serve_command(args);
    command.current_dir(cwd);
    Server::start(command)
}

/// A running `pcq serve` and what its banner said; killed when dropped.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The development partner tenant.
    pub partner: String,
    /// The token of the banner's curl example (when the development issuer is on).
    pub example_token: Option<String>,
    /// Further lines pcq prints, read so that it never blocks on a full pipe.
    _lines: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `command` (a `pcq serve`) and reads its three banner lines.
    pub fn start(mut command: Command) -> Server {
        let mut child = command.stdout(Stdio::piped()).spawn().expect("pcq starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let next = |what: &str| {
            rx.recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("pcq serve printed no {what} line"))
        };
        let first = next("listening");
        let url = first
            .strip_prefix("pcq listening on ")
            .unwrap_or_else(|| panic!("the first line is {first:?}"))
            .to_owned();
        assert!(
            url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
            "{url}"
        );
        let second = next("partner");
        let partner = second
            .strip_prefix("development partner tenant: ")
            .unwrap_or_else(|| panic!("the second line is {second:?}"))
            .to_owned();
        let example_token = next("example")
            .split("Authorization: Bearer ")
            .nth(1)
            .map(|t| t.trim_end_matches('\'').to_owned());
        Server {
            child,
            url,
            partner,
            example_token,
            _lines: rx,
        }
    }

    /// SIGTERM, then waits: the graceful way out.
    pub fn stop(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }

    /// SIGKILL, then waits: no chance to finish anything.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where `pcq token` finds the development signing key.
#[derive(Clone, Copy)]
pub enum Key<'a> {
    /// The default data directory (`./pcq-data`) of this working directory.
    InWorkingDir(&'a Path),
    /// This data directory.
    DataDir(&'a Path),
    /// This PostgreSQL database.
    Database(&'a str),
}

/// `pcq token --tenant TENANT EXTRA` with the key at `key`: the token, its only output line.
pub fn token(key: Key<'_>, tenant: &str, extra: &[&str]) -> String {
    let mut command = Command::new(PCQ);
    command.arg("token");
    match key {
        Key::InWorkingDir(cwd) => {
            command.current_dir(cwd);
        }
        Key::DataDir(dir) => {
            command.arg("--data-dir").arg(dir);
        }
        Key::Database(url) => {
            command.args(["--database-url", url]);
        }
    }
    let out = command
        .args(["--tenant", tenant])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().count(),
        1,
        "pcq token prints the token and nothing else"
    );
    text.trim().to_owned()
}

/// An HTTP client for the tests (no proxy).
pub fn client() -> reqwest::Client {
    pcq_server::install_tls_provider();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// One request with a bearer token: the status and the JSON body (`null` if it is not JSON).
pub async fn call(
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client().request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// How many customers the token's partner has, following the continuation tokens.
pub async fn count_customers(http: &reqwest::Client, url: &str, token: &str) -> usize {
    let mut listed = 0;
    let mut continuation: Option<String> = None;
    loop {
        let mut req = http
            .get(format!("{url}/v1/customers?size=1000"))
            .bearer_auth(token);
        if let Some(c) = &continuation {
            req = req.header("MS-ContinuationToken", c);
        }
        let page: Value = req.send().await.unwrap().json().await.unwrap();
        listed += page["items"].as_array().unwrap().len();
        match page["continuationToken"].as_str() {
            Some(c) => continuation = Some(c.to_owned()),
            None => return listed,
        }
    }
}
