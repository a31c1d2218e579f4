//! `pcq` as a child process: `pcq serve` and its banner, `pcq token`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// The `pcq` binary under test; in a test of the pcq crate:
/// `const PCQ: Pcq = Pcq::new(env!("CARGO_BIN_EXE_pcq"));`.
#[derive(Debug, Clone, Copy)]
pub struct Pcq {
    path: &'static str,
}

impl Pcq {
    pub const fn new(path: &'static str) -> Pcq {
        Pcq { path }
    }

    /// `pcq` without arguments yet.
    pub fn command(self) -> Command {
        Command::new(self.path)
    }

    /// Runs `pcq ARGS` in `cwd` to its end: whether it succeeded, its standard output and its
    /// standard error.
    pub fn run_in(self, cwd: &std::path::Path, args: &[&str]) -> (bool, String, String) {
        let out = self
            .command()
            .args(args)
            .current_dir(cwd)
            .output()
            .expect("pcq runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `pcq serve --listen 127.0.0.1:0 ARGS` logging warnings only, its standard error
    /// discarded; add to it (directory, variables, redirections) before [`Server::start`].
    pub fn serve_command(self, args: &[&str]) -> Command {
        let mut command = self.command();
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::null());
        command
    }

    /// `pcq serve ARGS` started in `cwd` (whose `./pcq-data` is the default data directory).
    pub fn serve_in(self, cwd: &Path, args: &[&str]) -> Server {
        let mut command = self.serve_command(args);
        command.current_dir(cwd);
        Server::start(command)
    }

    /// `pcq token --tenant TENANT EXTRA` with the key at `key`: the token, its only output line.
    pub fn token(self, key: Key<'_>, tenant: &str, extra: &[&str]) -> String {
        let mut command = self.command();
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
        let text = output_of(command.args(["--tenant", tenant]).args(extra));
        assert_eq!(
            text.lines().count(),
            1,
            "pcq token prints the token and nothing else"
        );
        text.trim().to_owned()
    }
}

/// Runs `command` to its end; it must succeed (else the test fails with its standard error).
/// Returns its standard output.
pub fn output_of(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        command,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A child process that is killed and waited for when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `pcq serve` and what its banner said; killed when dropped.
pub struct Server {
    child: Reaped,
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
    /// Starts `command` (a `pcq serve`) and reads its three banner lines; the process is killed
    /// if they do not come.
    pub fn start(mut command: Command) -> Server {
        let mut child = Reaped(command.stdout(Stdio::piped()).spawn().expect("pcq starts"));
        let stdout = child.0.stdout.take().unwrap();
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

    /// One request to `path` of this server with a bearer token: the status and the JSON body
    /// (`null` if it is not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        crate::call(method, &format!("{}{path}", self.url), token, body).await
    }

    /// `GET path`: the status and the JSON body.
    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    /// `POST path` with a JSON body: the status and the JSON body of the answer.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    /// SIGTERM, then waits: the graceful way out.
    pub fn stop(mut self) -> ExitStatus {
        let pid = self.child.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.0.wait().unwrap()
    }

    /// SIGKILL, then waits: no chance to finish anything.
    pub fn kill(&mut self) {
        self.child.0.kill().unwrap();
        self.child.0.wait().unwrap();
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
