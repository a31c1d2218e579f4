//! `pcq review`: the reviewer workflow from the command line, over the HTTP API.

use clap::{Args, Subcommand};
use futures_util::TryStreamExt;
use pcq_client::{CustomerQualification, Qualification, ReviewQuery};
use serde_json::Value;

use crate::connection::{Connection, Role};

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
    crate::output::print_json(value);
}

/// The qualification named on the command line (any accepted spelling).
fn qualification(raw: &str) -> anyhow::Result<Qualification> {
    Qualification::from_name(raw.trim()).ok_or_else(|| {
        anyhow::anyhow!(
            "--qualification {raw:?} is not one of {}",
            Qualification::NAMES.join(", ")
        )
    })
}

/// Runs a review command.
pub async fn run(command: ReviewCommand, connection: Connection) -> anyhow::Result<()> {
    let client = crate::connection::connect(&connection, Role::Reviewer).await?;
    match command {
        ReviewCommand::List {
            partner,
            qualification: only,
            older_than,
            json,
        } => {
            // The server's default page size applies; the stream follows continuation tokens.
            let mut query = ReviewQuery::new();
            if let Some(partner) = partner {
                query = query.partner_id(partner);
            }
            if let Some(only) = only {
                query = query.qualification(qualification(&only)?);
            }
            if let Some(age) = older_than {
                query = query.older_than(age);
            }
            let items: Vec<Value> = client.review().queue(query).stream().try_collect().await?;
            if json {
                print(&Value::Array(items));
                return Ok(());
            }
            if items.is_empty() {
                println!("nothing is waiting for a decision");
                return Ok(());
            }
            let mut table = crate::output::table([
                "customer",
                "partner",
                "domain",
                "qualification",
                "round",
                "waiting",
            ]);
            for item in &items {
                let text = |key: &str| crate::output::text(&item[key]);
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
            let decided = client
                .review()
                .approve(&target.customer, qualification(&target.qualification)?)
                .await?;
            show_decision(&target, &decided);
        }
        ReviewCommand::Deny { target, reason } => {
            let decided = client
                .review()
                .deny(
                    &target.customer,
                    qualification(&target.qualification)?,
                    reason,
                )
                .await?;
            show_decision(&target, &decided);
        }
    }
    Ok(())
}

fn show_decision(target: &Decided, answer: &CustomerQualification) {
    if target.json {
        crate::output::print_json(answer);
        return;
    }
    let reason = answer
        .vetting_reason
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let status = answer
        .vetting_status
        .map_or("?".to_owned(), |s| s.to_string());
    println!(
        "{} of {}: {status}{reason}",
        answer.qualification, target.customer
    );
}
