//! `pcq`: the service and its tools.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use pcq_server::auth::TokenSpec;
use pcq_server::config::Config;
use pcq_server::service::seed::Seed;
use pcq_server::{Application, tool_dev_issuer};

/// mimalloc rather than the system allocator: pcq keeps many small allocations alive for a
/// while (the request journal's entries, caches) among many short-lived ones, a mix under which
/// glibc's malloc spent about 7,000 extra instructions per GET searching and consolidating its
/// bins (see bench/README.md, "What the request journal costs").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod connection;
mod customers;
mod faults;
mod import;
mod load;
mod output;
mod requests;
mod review;
mod state;

use connection::Connection;

/// pcq: a self-hostable Partner Center customer-qualification service.
#[derive(Parser)]
#[command(name = "pcq", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve(ServeArgs),
    /// Print a signed development token (and nothing else).
    Token(TokenArgs),
    /// Apply the database migrations this version needs, and exit (pcq serve also applies
    /// them at start).
    Migrate(MigrateArgs),
    /// Operator tools: filling the store directly, resetting the sandbox, its state, injected
    /// faults and the request journal over the HTTP API.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Review qualifications waiting for a decision (role Pcq.Reviewer).
    Review {
        #[command(subcommand)]
        command: review::ReviewCommand,
        #[command(flatten)]
        connection: Connection,
    },
    /// A partner's customers: list, get, create, and import from a CSV file.
    Customers {
        #[command(subcommand)]
        command: customers::CustomersCommand,
        #[command(flatten)]
        connection: Connection,
    },
    /// A customer's qualifications: get them, request one.
    Qualifications {
        #[command(subcommand)]
        command: customers::QualificationsCommand,
        #[command(flatten)]
        connection: Connection,
    },
    /// The partner's GCC validation codes.
    ValidationCodes {
        #[command(subcommand)]
        command: customers::ValidationCodesCommand,
        #[command(flatten)]
        connection: Connection,
    },
    /// The partner's audit records.
    Audit {
        #[command(subcommand)]
        command: customers::AuditCommand,
        #[command(flatten)]
        connection: Connection,
    },
    /// Print a shell completion script, e.g. `source <(pcq completions bash)`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free port [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Directory for the database and the development signing key [default: ./pcq-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// PostgreSQL instead of the embedded SQLite database (several nodes may share it)
    /// [default: database_url from the configuration, PCQ_DATABASE_URL].
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Keep the database in memory; nothing is written to disk.
    #[arg(long, conflicts_with = "database_url")]
    in_memory: bool,
    /// Configuration file (TOML); see config/default.toml for every key.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Customers, qualifications and validation codes to load at start (JSON; see docs/seed.md),
    /// or a state document written by pcq admin dump, loaded when the store holds no customer
    /// (see docs/state.md).
    #[arg(long, value_name = "FILE")]
    seed: Option<PathBuf>,
    /// Do not run the background worker (vetting decisions, webhook deliveries) in this node.
    #[arg(long)]
    no_worker: bool,
    /// Do not throttle requests in this node (the [throttle] limits per partner and route
    /// family); same as throttle.enabled = false.
    #[arg(long)]
    no_throttle: bool,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Fill the store with generated customers, each with an approved qualification (to try
    /// pcq with a large store). Works with pcq serve running or not.
    Load(load::LoadArgs),
    /// Reset the sandbox over the HTTP API (role Pcq.Admin): remove every partner's data (or
    /// one partner's), return the clock and the vetting policy to the configured ones and load
    /// the seed again.
    Reset {
        /// Only this partner's data.
        #[arg(long, value_name = "GUID")]
        partner: Option<String>,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Inject faults over the HTTP API (role Pcq.Admin): answer matching requests with an
    /// error status, close their connection, or slow them down.
    Faults {
        #[command(subcommand)]
        command: faults::FaultsCommand,
        #[command(flatten)]
        connection: Connection,
    },
    /// Write the sandbox's state (every partner's, or one partner's) as a JSON document over
    /// the HTTP API (role Pcq.Admin); see docs/state.md.
    Dump {
        /// Only this partner's data.
        #[arg(long, value_name = "GUID")]
        partner: Option<String>,
        /// Write the document to this file [default: standard output].
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Replace the sandbox's state (every partner's, or one partner's) with a document written
    /// by pcq admin dump, or a seed file, over the HTTP API (role Pcq.Admin).
    Restore {
        /// The document.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Only this partner's data (the document must hold no other partner's).
        #[arg(long, value_name = "GUID")]
        partner: Option<String>,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// List the requests a node served, newest first (its request journal; role Pcq.Admin);
    /// --follow prints new ones as they come.
    Requests(requests::RequestsArgs),
}

#[derive(Args)]
struct MigrateArgs {
    /// PostgreSQL database to migrate [default: database_url from the configuration,
    /// PCQ_DATABASE_URL; without one, the SQLite database in the data directory].
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Data directory of the SQLite database [default: ./pcq-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Args)]
struct TokenArgs {
    /// Data directory holding the development signing key (created on first use) [default: from
    /// the configuration, ./pcq-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Configuration file, for the data directory and audience.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// PostgreSQL database holding the development signing key (when pcq runs on one).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Partner tenant id (`tid`).
    #[arg(long, value_name = "GUID")]
    tenant: String,
    /// User principal name of an App+User token [default: dev.user@partner.onmicrosoft.com].
    #[arg(long, value_name = "UPN", conflicts_with = "app_only")]
    user: Option<String>,
    /// Mint an App-only token (no user).
    #[arg(long)]
    app_only: bool,
    /// Application role to include (`roles`), e.g. Pcq.Admin or Pcq.Reviewer; repeatable.
    #[arg(long = "role", value_name = "NAME")]
    roles: Vec<String>,
    /// Directory role template id to include (`wids`); repeatable [default for App+User tokens:
    /// Directory Readers, a GDAP role that GovernmentCommunityCloud requests need].
    #[arg(long = "wid", value_name = "GUID", conflicts_with = "no_wids")]
    wids: Vec<String>,
    /// Include no directory role (`wids`): GovernmentCommunityCloud requests then get 403.
    #[arg(long)]
    no_wids: bool,
    /// Audience (`aud`) [default: the configured audience].
    #[arg(long, value_name = "URL")]
    audience: Option<String>,
    /// Lifetime in seconds; negative mints an already-expired token.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 3600,
        allow_negative_numbers = true
    )]
    ttl: i64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Token(args) => token(args),
        Command::Migrate(args) => migrate(args),
        Command::Admin {
            command: AdminCommand::Load(args),
        } => load::load(args),
        Command::Admin {
            command:
                AdminCommand::Reset {
                    partner,
                    json,
                    connection,
                },
        } => tokio::runtime::Runtime::new()
            .context("starting the async runtime")
            .and_then(|rt| rt.block_on(reset(partner, json, connection))),
        Command::Admin {
            command:
                AdminCommand::Faults {
                    command,
                    connection,
                },
        } => tokio::runtime::Runtime::new()
            .context("starting the async runtime")
            .and_then(|rt| rt.block_on(faults::run(command, connection))),
        Command::Admin {
            command:
                AdminCommand::Dump {
                    partner,
                    output,
                    connection,
                },
        } => tokio::runtime::Runtime::new()
            .context("starting the async runtime")
            .and_then(|rt| rt.block_on(state::dump(partner, output, connection))),
        Command::Admin {
            command:
                AdminCommand::Restore {
                    file,
                    partner,
                    json,
                    connection,
                },
        } => tokio::runtime::Runtime::new()
            .context("starting the async runtime")
            .and_then(|rt| rt.block_on(state::restore(file, partner, json, connection))),
        Command::Admin {
            command: AdminCommand::Requests(args),
        } => tokio::runtime::Runtime::new()
            .context("starting the async runtime")
            .and_then(|rt| rt.block_on(requests::run(args))),
        Command::Review {
            command,
            connection,
        } => tokio::runtime::Runtime::new()
            .context("starting the async runtime")
            .and_then(|rt| rt.block_on(review::run(command, connection))),
        Command::Customers {
            command,
            connection,
        } => block_on(customers::customers(command, connection)),
        Command::Qualifications {
            command,
            connection,
        } => block_on(customers::qualifications(command, connection)),
        Command::ValidationCodes {
            command,
            connection,
        } => block_on(customers::validation_codes(command, connection)),
        Command::Audit {
            command,
            connection,
        } => block_on(customers::audit(command, connection)),
        Command::Completions { shell } => {
            completions(shell);
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pcq: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command's future on a new runtime.
fn block_on(work: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()
        .context("starting the async runtime")?
        .block_on(work)
}

/// `pcq completions SHELL`: the completion script of every command, from the clap definitions.
fn completions(shell: clap_complete::Shell) {
    use clap::CommandFactory;
    clap_complete::generate(shell, &mut Cli::command(), "pcq", &mut std::io::stdout());
}

/// `pcq admin reset`: one POST to `/_pcq/admin/reset`.
async fn reset(partner: Option<String>, json: bool, connection: Connection) -> anyhow::Result<()> {
    let client = connection::connect(&connection, connection::Role::Admin).await?;
    let answer = client.admin().reset(partner.as_deref()).await?;
    if json {
        review::print(&answer);
        return Ok(());
    }
    let removed = review::counts(&answer["removed"]);
    let whose = review::whose(&answer);
    let seeded = if answer["seeded"] == true {
        "; the seed was loaded again"
    } else {
        ""
    };
    println!("reset {whose}: removed {removed}{seeded}");
    Ok(())
}

/// `config` with a command's `--data-dir` and `--database-url` on top.
fn with_store_options(
    mut config: Config,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
) -> Config {
    if let Some(dir) = data_dir {
        config.data_dir = dir;
        config.data_dir_explicit = true;
    }
    if let Some(url) = database_url {
        config.database_url = url;
    }
    config
}

/// The configuration of a tool that works on the store a `pcq serve` uses (on disk or in
/// PostgreSQL, never in memory): the file, then `--data-dir` and `--database-url`, validated.
pub(crate) fn tool_config(
    file: Option<&std::path::Path>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
) -> anyhow::Result<Config> {
    let mut config = with_store_options(Config::load(file)?, data_dir, database_url);
    config.in_memory = false;
    config.validate()?;
    Ok(config)
}

/// What `pcq serve --seed FILE` loads: a seed file, or a state document (`pcq admin dump`).
enum StartWith {
    Seed(Seed),
    State(PathBuf),
}

/// Reads the file given to `--seed`: a state document when it has `format`, else a seed.
fn start_with(path: &std::path::Path) -> anyhow::Result<StartWith> {
    use pcq_server::service::state::{Document, check};
    match check(path, None) {
        Ok(Document::State(_)) => Ok(StartWith::State(path.to_path_buf())),
        Ok(Document::Seed) => Ok(StartWith::Seed(Seed::from_file(path)?)),
        Err(fault) => {
            // A seed file with a mistake is told about in the seed's own terms.
            let mut head = Vec::new();
            let _ = std::io::Read::read_to_end(
                &mut std::io::Read::take(std::fs::File::open(path)?, 64 * 1024),
                &mut head,
            );
            if !String::from_utf8_lossy(&head).contains("\"format\"") {
                Seed::from_file(path)?;
            }
            anyhow::bail!("in the seed file {}: {}", path.display(), fault.description)
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = with_store_options(
        Config::load(args.config.as_deref())?,
        args.data_dir,
        args.database_url,
    );
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if args.in_memory {
        config.in_memory = true;
        config.database_url.clear();
    }
    config.validate()?;
    if args.no_worker {
        config.worker.enabled = false;
    }
    if args.no_throttle {
        config.throttle.enabled = false;
    }
    let seed = args.seed.as_deref().map(start_with).transpose()?;
    pcq_server::telemetry::init(&config.log);
    for name in &config.ignored_env {
        tracing::warn!(variable = %name, "ignoring an environment variable that names no configuration key");
    }

    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let app = Application::build(config).await?;
        match seed {
            Some(StartWith::Seed(seed)) => {
                let summary = app.seed(seed).await.context("loading the seed")?;
                tracing::info!(
                    customers_created = summary.customers_created,
                    customers_skipped = summary.customers_skipped,
                    codes_created = summary.codes_created,
                    codes_skipped = summary.codes_skipped,
                    "seed loaded"
                );
            }
            Some(StartWith::State(path)) => {
                match app
                    .load_state_file(&path)
                    .await
                    .context("loading the state document")?
                {
                    Some(loaded) => tracing::info!(
                        customers = loaded.loaded.customers,
                        qualifications = loaded.loaded.qualifications,
                        audit_records = loaded.loaded.audit_records,
                        "state document loaded"
                    ),
                    None => tracing::info!(
                        "the store holds customers already; the state document was not loaded"
                    ),
                }
            }
            None => {}
        }
        print_banner(&app);
        app.run_until_stopped(shutdown_signal()).await
    })
}

/// Prints the start-up lines. Write errors are ignored: a closed standard output must not stop
/// the service.
fn print_banner(app: &Application) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let addr = app.local_addr();
    let _ = writeln!(out, "pcq listening on http://{addr}");
    let state = app.state();
    let _ = writeln!(out, "development partner tenant: {}", state.dev_partner);
    let Some(issuer) = &state.dev_issuer else {
        let _ = writeln!(
            out,
            "the development issuer is off: configure an identity provider to call the API"
        );
        let _ = out.flush();
        return;
    };
    let spec = TokenSpec {
        tenant: state.dev_partner,
        user: Some(DEFAULT_USER.to_owned()),
        roles: vec![],
        wids: vec![pcq_server::auth::DIRECTORY_READERS.to_owned()],
        audience: state.config.auth.audience.clone(),
        ttl_seconds: 24 * 3600,
    };
    match issuer.mint(&spec) {
        Ok(token) => {
            let _ = writeln!(
                out,
                "try: curl -s {}/v1/customers -H 'Authorization: Bearer {token}'",
                state.pipeline.links.public_url
            );
        }
        Err(e) => eprintln!("pcq: could not mint the example token: {e:#}"),
    }
    let _ = out.flush();
}

const DEFAULT_USER: &str = "dev.user@partner.onmicrosoft.com";

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let config = tool_config(args.config.as_deref(), args.data_dir, args.database_url)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let said = runtime.block_on(pcq_server::migrate(&config))?;
    println!("{said}");
    Ok(())
}

/// The development issuer a command mints tokens with (`tool` names the command in what it
/// says). Without a database the key is the data directory's file: when this call creates it, a
/// pcq already running on another directory will refuse the tokens, so it says where the key
/// went.
pub(crate) async fn minting_issuer(
    config: &Config,
    tool: &str,
) -> anyhow::Result<std::sync::Arc<pcq_server::auth::dev_issuer::DevIssuer>> {
    let key_file = config
        .database_url
        .is_empty()
        .then(|| config.data_dir.join(pcq_server::auth::dev_issuer::KEY_FILE))
        .filter(|path| !path.exists());
    let issuer = tool_dev_issuer(config).await?;
    if let Some(path) = key_file.filter(|path| path.exists()) {
        let shown = std::fs::canonicalize(&path).unwrap_or(path);
        eprintln!(
            "{tool}: created a new development signing key in {}; a pcq already running on \
             another data directory refuses tokens signed with it (name that directory with \
             --data-dir, or run {tool} where pcq serve runs)",
            shown.display()
        );
    }
    Ok(issuer)
}

fn token(args: TokenArgs) -> anyhow::Result<()> {
    let config = tool_config(args.config.as_deref(), args.data_dir, args.database_url)?;
    let tenant = pcq_core::ids::parse_guid(&args.tenant)
        .with_context(|| format!("--tenant {:?} is not a GUID", args.tenant))?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let issuer = runtime.block_on(minting_issuer(&config, "pcq token"))?;
    let spec = TokenSpec {
        tenant,
        user: if args.app_only {
            None
        } else {
            Some(args.user.unwrap_or_else(|| DEFAULT_USER.to_owned()))
        },
        roles: args.roles,
        wids: if !args.wids.is_empty() || args.no_wids || args.app_only {
            args.wids
        } else {
            vec![pcq_server::auth::DIRECTORY_READERS.to_owned()]
        },
        audience: args.audience.unwrap_or(config.auth.audience),
        ttl_seconds: args.ttl,
    };
    println!("{}", issuer.mint(&spec)?);
    Ok(())
}
