//! `pcq admin faults`: injected faults over the HTTP API (role Pcq.Admin).

use clap::{Args, Subcommand};
use pcq_client::FaultSpec;
use serde_json::Value;

use crate::connection::{Connection, Role};
use crate::review;

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
    count: Option<u32>,
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
    /// The fault to add (the body of `POST /_pcq/admin/faults`).
    fn spec(&self) -> anyhow::Result<FaultSpec> {
        let mut spec = FaultSpec::new(&self.path).method(&self.method);
        match self.status.as_deref() {
            None => {}
            Some("reset") => spec = spec.reset_connection(),
            Some(status) => {
                let status = status.parse::<u16>().map_err(|_| {
                    anyhow::anyhow!(
                        "--status {status:?} is neither an HTTP status (400 to 599) nor reset"
                    )
                })?;
                spec = spec.status(status);
            }
        }
        if let Some(partner) = &self.partner {
            spec = spec.partner(partner);
        }
        if let Some(seconds) = self.retry_after {
            spec = spec.retry_after_seconds(seconds);
        }
        if let Some(ms) = self.delay_ms {
            spec = spec.delay_ms(ms);
        }
        if let Some(p) = self.probability {
            spec = spec.probability(p);
        }
        if let Some(n) = self.count {
            spec = spec.count(n);
        }
        if let Some(seed) = self.seed {
            spec = spec.seed(seed);
        }
        match self.when.as_deref() {
            None | Some("before") => {}
            Some("after") => spec = spec.after(),
            Some(other) => anyhow::bail!("--when {other:?} is neither before nor after"),
        }
        Ok(spec)
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
pub async fn run(command: FaultsCommand, connection: Connection) -> anyhow::Result<()> {
    let client = crate::connection::connect(&connection, Role::Admin).await?;
    let faults = client.admin().faults();
    match command {
        FaultsCommand::Add(args) => {
            let fault = faults.add(&args.spec()?).await?;
            if args.json {
                review::print(&fault);
            } else {
                println!("added {}", describe(&fault));
            }
        }
        FaultsCommand::List { json } => {
            let listed = faults.list().await?;
            if json {
                crate::output::print_json(&listed);
            } else {
                for fault in &listed {
                    println!("{}", describe(fault));
                }
                println!("{}", crate::output::count(listed.len(), "fault", "faults"));
            }
        }
        FaultsCommand::Rm { id } => {
            faults.remove(&id).await?;
            println!("removed fault {id}");
        }
        FaultsCommand::Clear => {
            let answer = faults.clear().await?;
            println!("removed {} faults", answer["removed"]);
        }
    }
    Ok(())
}
