//! Where the pcq a command talks to is, how the command signs in, and the one HTTP client
//! (pcq-client's [`PartnerClient`]) every command that talks to pcq uses.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use pcq_client::{PartnerClient, RetryPolicy};
use pcq_server::auth::{DIRECTORY_READERS, ROLE_ADMIN, ROLE_REVIEWER, TokenSpec};

/// Where the pcq to talk to is, and how to sign in.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// Base URL of pcq.
    #[arg(
        long,
        env = "PCQ_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// Bearer token with what the command needs (a partner's token; the role Pcq.Reviewer for
    /// pcq review, Pcq.Admin for pcq admin); without one, a development token is minted with
    /// the key in the data directory.
    #[arg(long, env = "PCQ_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// Data directory holding the development signing key [default: from the configuration].
    #[arg(long, value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Configuration file, for the data directory and audience.
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// PostgreSQL database holding the development signing key (when pcq runs on one).
    #[arg(long, value_name = "URL", global = true)]
    database_url: Option<String>,
    /// Partner tenant a minted token is for [default: the development partner of the store in
    /// the data directory or database]; partner commands only.
    #[arg(long, value_name = "GUID", global = true)]
    tenant: Option<String>,
}

/// Who a command acts as, when it mints its own token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A partner's user (App+User, with the Directory Readers role GCC requests need).
    Partner,
    /// A reviewer (role Pcq.Reviewer).
    Reviewer,
    /// An operator (role Pcq.Admin).
    Admin,
}

/// The user of a minted partner token (the one `pcq token` and `pcq serve`'s banner use).
const PARTNER_USER: &str = "dev.user@partner.onmicrosoft.com";

/// How long a minted partner token lasts: long enough for a large import.
const PARTNER_TOKEN_SECONDS: i64 = 12 * 3600;

impl Connection {
    /// The token to send: the one given, or one minted for `role`.
    async fn token(&self, role: Role) -> anyhow::Result<String> {
        if let Some(token) = &self.token {
            return Ok(token.clone());
        }
        let config = crate::tool_config(
            self.config.as_deref(),
            self.data_dir.clone(),
            self.database_url.clone(),
        )?;
        let (tool, spec) = match role {
            Role::Partner => {
                let tenant = match &self.tenant {
                    Some(t) => pcq_core::ids::parse_guid(t)
                        .with_context(|| format!("--tenant {t:?} is not a GUID"))?,
                    None => dev_partner(&config).await?,
                };
                let spec = TokenSpec {
                    tenant,
                    user: Some(PARTNER_USER.to_owned()),
                    roles: vec![],
                    wids: vec![DIRECTORY_READERS.to_owned()],
                    audience: config.auth.audience.clone(),
                    ttl_seconds: PARTNER_TOKEN_SECONDS,
                };
                ("pcq", spec)
            }
            Role::Reviewer | Role::Admin => {
                let (tool, user, name) = if role == Role::Admin {
                    ("pcq admin", "admin@pcq.local", ROLE_ADMIN)
                } else {
                    ("pcq review", "reviewer@pcq.local", ROLE_REVIEWER)
                };
                let spec = TokenSpec {
                    tenant: uuid::Uuid::nil(),
                    user: Some(user.to_owned()),
                    roles: vec![name.to_owned()],
                    wids: vec![],
                    audience: config.auth.audience.clone(),
                    ttl_seconds: 600,
                };
                (tool, spec)
            }
        };
        let issuer = crate::minting_issuer(&config, tool).await?;
        issuer.mint(&spec)
    }
}

/// The development partner tenant of the store a running pcq uses (on disk or in PostgreSQL),
/// as its banner says it. A store is never created for this: a pcq keeping its data in memory
/// has none to read, so the token must be given.
async fn dev_partner(config: &pcq_server::config::Config) -> anyhow::Result<uuid::Uuid> {
    if config.database_url.is_empty() {
        let file = config.data_dir.join(pcq_server::DATABASE_FILE);
        anyhow::ensure!(
            file.exists(),
            "there is no pcq database at {} to find the development partner in: give the \
             partner's token (--token or PCQ_TOKEN; pcq serve --in-memory prints one), or the \
             data directory pcq serve uses (--data-dir), or the partner (--tenant)",
            file.display()
        );
    }
    let store = pcq_server::open_store(config).await?;
    let partner = store.write(pcq_server::service::DevPartner).await;
    store.close().await;
    Ok(partner
        .context("reading the development partner from the store")?
        .output)
}

/// The client of `connection`, signed in as `role` (with the given token, or a minted one).
pub async fn connect(connection: &Connection, role: Role) -> anyhow::Result<PartnerClient> {
    client(connection, role, None, RetryPolicy::default()).await
}

/// [`connect`] for an import, whose many calls meet pcq's throttling (and Partner Center's) as
/// a matter of course: a throttled call waits its `Retry-After` and tries again for up to ten
/// minutes, instead of failing its row after three attempts.
pub async fn connect_for_import(
    connection: &Connection,
    role: Role,
) -> anyhow::Result<PartnerClient> {
    let patient = RetryPolicy::default()
        .max_retries(30)
        .max_total_time(Duration::from_secs(600));
    client(connection, role, None, patient).await
}

/// How long a state document may take to go up or down (pcq streams it, however large).
const DOCUMENT_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// [`connect`] for calls that stream a state document, without the usual time limit.
pub async fn connect_for_documents(
    connection: &Connection,
    role: Role,
) -> anyhow::Result<PartnerClient> {
    client(
        connection,
        role,
        Some(DOCUMENT_TIMEOUT),
        RetryPolicy::default(),
    )
    .await
}

async fn client(
    connection: &Connection,
    role: Role,
    timeout: Option<Duration>,
    retry: RetryPolicy,
) -> anyhow::Result<PartnerClient> {
    let token = connection.token(role).await?;
    let mut builder = PartnerClient::builder(connection.url.trim_end_matches('/'))
        .token(token)
        .retry(retry)
        .user_agent(concat!("pcq/", env!("CARGO_PKG_VERSION")));
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout);
    }
    builder
        .build()
        .with_context(|| format!("setting up the client of {}", connection.url))
}
