//! `pcq review`: the reviewer workflow from the command line, over the HTTP API.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use pcq_server::auth::{ROLE_ADMIN, ROLE_REVIEWER, TokenSpec};
use serde_json::{Value, json};

/// Where the pcq to talk to is, and how to sign in.
#[derive(Args, Debug)]
pub struct Connection {
    /// Base URL of pcq.
    #[arg(
        long,
        env = "PCQ_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// Bearer token with the role the command needs (Pcq.Reviewer, or Pcq.Admin for pcq admin
    /// reset and requests); without one, a development token is minted with the key in the data
    /// directory.
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
}

/// `pcq review …`
#[derive(Subcommand, Debug)]
pub enum ReviewCommand {
    /// List the qualifications waiting for a decision, oldest first.
    List {
        /// Only this partner's customers.
        #[arg(long, value_name = "GUID")]
        partner: Option<String>,
        /// Only this qualification.
        #[arg(long)]
        qualification: Option<String>,
        /// Only those waiting longer than this, e.g. 72h.
        #[arg(long, value_name = "DURATION")]
        older_than: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Approve a qualification in review.
    Approve {
        #[command(flatten)]
        target: Decided,
    },
    /// Deny a qualification in review, with a documented reason.
    Deny {
        #[command(flatten)]
        target: Decided,
        /// The reason, e.g. "Not an Academic Domain".
        #[arg(long)]
        reason: String,
    },
}

/// The qualification a decision is about, and how to print the answer.
#[derive(Args, Debug)]
pub struct Decided {
    /// The customer's tenant id.
    customer: String,
    /// The qualification.
    #[arg(long, default_value = "Education")]
    qualification: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// pcq's HTTP API, signed in as the connection says.
pub struct Client {
    http: reqwest::Client,
    /// Without a total timeout: for documents streamed up or down.
    streaming: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    /// Signs in with the connection's token, or mints a development token holding `role`.
    pub async fn new(connection: &Connection, role: &str) -> anyhow::Result<Self> {
        pcq_server::install_tls_provider();
        let token = match &connection.token {
            Some(t) => t.clone(),
            None => {
                let config = crate::tool_config(
                    connection.config.as_deref(),
                    connection.data_dir.clone(),
                    connection.database_url.clone(),
                )?;
                let tool = if role == ROLE_ADMIN {
                    "pcq admin"
                } else {
                    "pcq review"
                };
                let issuer = crate::minting_issuer(&config, tool).await?;
                issuer.mint(&TokenSpec {
                    tenant: uuid::Uuid::nil(),
                    user: Some(if role == ROLE_ADMIN {
                        "admin@pcq.local".to_owned()
                    } else {
                        "reviewer@pcq.local".to_owned()
                    }),
                    roles: vec![role.to_owned()],
                    wids: vec![],
                    audience: config.auth.audience.clone(),
                    ttl_seconds: 600,
                })?
            }
        };
        Ok(Client {
            http: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(10))
                .timeout(std::time::Duration::from_secs(60))
                .build()?,
            streaming: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(10))
                .build()?,
            url: connection.url.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// POSTs to `path` (with the query) and answers the JSON body; a failure names the status
    /// and the envelope's description.
    pub async fn post(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        let request = self.http.post(format!("{}{path}", self.url)).query(query);
        Ok(self.send(request).await?.1)
    }

    /// POSTs `body` as JSON to `path` and answers the JSON body (failures as [`Client::post`]).
    pub async fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let request = self.http.post(format!("{}{path}", self.url)).json(body);
        Ok(self.send(request).await?.1)
    }

    /// GETs `path` (with the query) and answers the JSON body; a failure names the status and
    /// the envelope's description.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        let request = self.http.get(format!("{}{path}", self.url)).query(query);
        Ok(self.send(request).await?.1)
    }

    /// DELETEs `path` and answers the JSON body, null when there is none (failures as
    /// [`Client::post`]).
    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        let request = self.http.delete(format!("{}{path}", self.url));
        Ok(self.send(request).await?.1)
    }

    /// Sends `method` to `path` (with the query and `body`, if any) without a total timeout
    /// and answers the response once its head says it succeeded, for its body to be streamed; a
    /// failure names the status and the envelope's description.
    pub async fn streamed(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<reqwest::Body>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut request = self
            .streaming
            .request(method, format!("{}{path}", self.url))
            .query(query)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("calling pcq at {}", self.url))?;
        let status = response.status();
        if !status.is_success() {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let why = body["description"].as_str().unwrap_or("no description");
            bail!("{} {why}", status.as_u16());
        }
        Ok(response)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<(reqwest::header::HeaderMap, Value)> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("calling pcq at {}", self.url))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let why = body["description"].as_str().unwrap_or("no description");
            bail!("{} {why}", status.as_u16());
        }
        Ok((headers, body))
    }
}

/// A JSON object of counts by kind (a reset's `removed`, a restore's `loaded`) as one line:
/// `customers 2, qualifications 1, …`.
pub fn counts(value: &Value) -> String {
    value
        .as_object()
        .map(|kinds| {
            kinds
                .iter()
                .map(|(kind, n)| format!("{kind} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// Whose data a sandbox control's answer covered: its `partner`, or every partner.
pub fn whose(answer: &Value) -> String {
    match answer["partner"].as_str() {
        Some(p) => format!("partner {p}"),
        None => "every partner".to_owned(),
    }
}

/// Prints JSON, indented.
pub fn print(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// Runs a review command.
pub async fn run(command: ReviewCommand, connection: Connection) -> anyhow::Result<()> {
    let client = Client::new(&connection, ROLE_REVIEWER).await?;
    match command {
        ReviewCommand::List {
            partner,
            qualification,
            older_than,
            json,
        } => {
            // The server's default page size applies; the loop follows continuation tokens.
            let mut query: Vec<(String, String)> = Vec::new();
            query.extend(partner.map(|p| ("partnerId".to_owned(), p)));
            query.extend(qualification.map(|q| ("qualification".to_owned(), q)));
            query.extend(older_than.map(|d| ("olderThan".to_owned(), d)));
            let mut items = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let mut request = client
                    .http
                    .get(format!("{}/_pcq/review/queue", client.url))
                    .query(&query);
                if let Some(t) = &token {
                    request = request.header("MS-ContinuationToken", t);
                }
                let (_, page) = client.send(request).await?;
                items.extend(page["items"].as_array().cloned().unwrap_or_default());
                match page["continuationToken"].as_str() {
                    Some(t) => token = Some(t.to_owned()),
                    None => break,
                }
            }
            if json {
                print(&Value::Array(items));
                return Ok(());
            }
            if items.is_empty() {
                println!("nothing is waiting for a decision");
                return Ok(());
            }
            let mut table = Table::new();
            table.load_preset(UTF8_FULL_CONDENSED).set_header([
                "customer",
                "partner",
                "domain",
                "qualification",
                "round",
                "waiting",
            ]);
            for item in &items {
                let text = |key: &str| match &item[key] {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                table.add_row([
                    text("customerId"),
                    text("partnerId"),
                    text("domain"),
                    text("qualification"),
                    text("round"),
                    text("waiting"),
                ]);
            }
            println!("{table}");
            println!("{} waiting", items.len());
        }
        ReviewCommand::Approve { target } => {
            decide(&client, &target, json!({"decision": "Approved"})).await?;
        }
        ReviewCommand::Deny { target, reason } => {
            decide(
                &client,
                &target,
                json!({"decision": "Denied", "reason": reason}),
            )
            .await?;
        }
    }
    Ok(())
}

async fn decide(client: &Client, target: &Decided, body: Value) -> anyhow::Result<()> {
    let Decided {
        customer,
        qualification,
        json,
    } = target;
    let url = format!(
        "{}/_pcq/review/customers/{customer}/qualifications/{qualification}/decision",
        client.url
    );
    let (_, answer) = client.send(client.http.post(url).json(&body)).await?;
    if *json {
        print(&answer);
    } else {
        let reason = answer["vettingReason"]
            .as_str()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        println!(
            "{} of {customer}: {}{reason}",
            answer["qualification"].as_str().unwrap_or(qualification),
            answer["vettingStatus"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}
