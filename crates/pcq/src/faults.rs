//! `pcq admin faults`: injected faults over the HTTP API (role Pcq.Admin).

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::review::{self, Client};

/// What `pcq admin faults` does.
#[derive(Subcommand)]
pub enum FaultsCommand {
    /// Add a fault: matching requests are answered with its status, have their connection
    /// closed (--status reset), or are slowed down (--delay-ms).
    Add(AddArgs),
    /// List the faults in force, with how often each has fired.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove one fault.
    Rm {
        /// The fault's id (from `pcq admin faults list`).
        id: String,
    },
    /// Remove every fault.
    Clear,
}

/// A fault to add.
#[derive(Args)]
pub struct AddArgs {
    /// The method to match, or * for any.
    #[arg(long, default_value = "*")]
    method: String,
    /// A glob on the request path (* within a segment, ** across segments), e.g.
    /// '/v1/customers/*/qualifications'.
    #[arg(long)]
    path: String,
    /// An HTTP status from 400 to 599, or "reset" to close the connection without answering.
    #[arg(long)]
    status: Option<String>,
    /// Only requests authenticated as this partner tenant.
    #[arg(long, value_name = "GUID")]
    partner: Option<String>,
    /// The Retry-After of the answer, in seconds (a 429 without it sends 1).
    #[arg(long, value_name = "SECONDS")]
    retry_after: Option<u64>,
    /// Hold the answer back this long, in milliseconds.
    #[arg(long, value_name = "MS")]
    delay_ms: Option<u64>,
    /// The chance that a matching request is faulted, from 0 to 1 [default: 1].
    #[arg(long)]
    probability: Option<f64>,
    /// Fire this many times, then be removed [default: unlimited].
    #[arg(long)]
    count: Option<u64>,
    /// Make --probability repeatable.
    #[arg(long)]
    seed: Option<u64>,
    /// "before" (the request is not carried out) or "after" (it takes effect, then its answer
    /// is lost) [default: before].
    #[arg(long, value_name = "WHEN")]
    when: Option<String>,
    /// Print the fault as JSON.
    #[arg(long)]
    json: bool,
}

impl AddArgs {
    /// The body of `POST /_pcq/admin/faults`.
    fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("method".into(), json!(self.method));
        body.insert("path".into(), json!(self.path));
        if let Some(status) = &self.status {
            // A number when it is one, so that the API sees the status it documents.
            let value = status
                .parse::<u64>()
                .map_or_else(|_| json!(status), |n| json!(n));
            body.insert("status".into(), value);
        }
        let optional = [
            ("partner", self.partner.as_ref().map(|p| json!(p))),
            ("retryAfterSeconds", self.retry_after.map(|n| json!(n))),
            ("delayMs", self.delay_ms.map(|n| json!(n))),
            ("probability", self.probability.map(|p| json!(p))),
            ("count", self.count.map(|n| json!(n))),
            ("seed", self.seed.map(|n| json!(n))),
            ("when", self.when.as_ref().map(|w| json!(w))),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                body.insert(key.into(), value);
            }
        }
        Value::Object(body)
    }
}

/// One line about a fault.
fn describe(fault: &Value) -> String {
    let what = match (&fault["status"], fault["delayMs"].as_u64().unwrap_or(0)) {
        (Value::Null, delay) => format!("delay {delay} ms"),
        (status, 0) => format!(
            "status {}",
            status.as_str().map_or(status.to_string(), str::to_owned)
        ),
        (status, delay) => format!(
            "status {} after {delay} ms",
            status.as_str().map_or(status.to_string(), str::to_owned)
        ),
    };
    let mut line = format!(
        "{}  {} {}  {what}  {}",
        fault["id"].as_str().unwrap_or("?"),
        fault["method"].as_str().unwrap_or("*"),
        fault["path"].as_str().unwrap_or("?"),
        fault["when"].as_str().unwrap_or("before"),
    );
    if let Some(partner) = fault["partner"].as_str() {
        line.push_str(&format!("  partner {partner}"));
    }
    if fault["probability"].as_f64().is_some_and(|p| p < 1.0) {
        line.push_str(&format!("  probability {}", fault["probability"]));
    }
    line.push_str(&format!("  fired {}", fault["fired"]));
    if let Some(left) = fault["remaining"].as_u64() {
        line.push_str(&format!(", {left} left"));
    }
    line
}

/// Runs `pcq admin faults …`.
pub async fn run(command: FaultsCommand, connection: review::Connection) -> anyhow::Result<()> {
    let client = Client::new(&connection, pcq_server::auth::ROLE_ADMIN).await?;
    match command {
        FaultsCommand::Add(args) => {
            let fault = client.post_json("/_pcq/admin/faults", &args.body()).await?;
            if args.json {
                review::print(&fault);
            } else {
                println!("added {}", describe(&fault));
            }
        }
        FaultsCommand::List { json } => {
            let faults = client.get("/_pcq/admin/faults", &[]).await?;
            if json {
                review::print(&faults);
            } else {
                let faults = faults.as_array().cloned().unwrap_or_default();
                for fault in &faults {
                    println!("{}", describe(fault));
                }
                println!(
                    "{} fault{}",
                    faults.len(),
                    if faults.len() == 1 { "" } else { "s" }
                );
            }
        }
        FaultsCommand::Rm { id } => {
            client.delete(&format!("/_pcq/admin/faults/{id}")).await?;
            println!("removed fault {id}");
        }
        FaultsCommand::Clear => {
            let answer = client.delete("/_pcq/admin/faults").await?;
            println!("removed {} faults", answer["removed"]);
        }
    }
    Ok(())
}
