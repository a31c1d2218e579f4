//! `pcq customers import FILE.csv`: creates a customer (and requests a qualification) for each
//! row of a CSV file, several rows at a time, and can be run again after an interruption or a
//! fix without creating anything twice.
//!
//! Why a rerun creates nothing twice: each request carries an `MS-RequestId` derived from the
//! file's bytes, the row's line and the step ([`file::RequestIds`]), so a request pcq already
//! carried out is answered with its stored answer; and the customers the partner already has
//! are listed once at the start, so a row whose domain is there already is counted as such and
//! goes on to its qualification with the customer's id.

mod file;
mod progress;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use futures_util::{StreamExt, TryStreamExt};
use pcq_client::PartnerClient;
use serde_json::json;
use uuid::Uuid;

use crate::connection::{Connection, Role};
use file::{ImportFile, Plan, Step, Wanted};
use progress::{Counts, Progress};

/// Failed rows told on standard error (the report lists them all).
const SHOWN_FAILURES: usize = 10;

/// `pcq customers import …`
#[derive(Args)]
pub struct ImportArgs {
    /// The CSV file: a header line naming the columns (domain, companyName, email, culture,
    /// country, qualification, educationSegment, website, validationCode; any order, any case;
    /// only domain is required), then one customer per line.
    #[arg(value_name = "FILE.csv")]
    file: PathBuf,
    /// How many rows are sent at the same time.
    #[arg(long, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// Write the failed rows to this file (CSV: line, domain, step, status, code, error).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Show no progress.
    #[arg(long, short)]
    quiet: bool,
}

/// How a row ended.
#[derive(Debug)]
enum Outcome {
    Created,
    AlreadyThere,
    Failed(Failure),
}

/// Why a row failed.
#[derive(Debug)]
struct Failure {
    line: u64,
    domain: String,
    /// `row` (the file or the row's values), `customer` or `qualification`.
    step: &'static str,
    /// The HTTP status and the fault's code, when pcq answered.
    status: Option<u16>,
    code: Option<u32>,
    error: String,
}

impl Failure {
    fn of_row(line: u64, domain: &str, error: String) -> Failure {
        Failure {
            line,
            domain: domain.to_owned(),
            step: "row",
            status: None,
            code: None,
            error,
        }
    }

    fn of_call(plan: &Plan, step: Step, error: &pcq_client::Error) -> Failure {
        Failure {
            line: plan.line,
            domain: plan.domain.clone(),
            step: step.name(),
            status: error.status().map(|s| s.as_u16()),
            code: error.fault().map(|f| f.code),
            error: error.to_string(),
        }
    }
}

/// The customers the partner has, by domain: listed once at the start, then kept up to date
/// with the ones this import creates.
struct Known {
    by_domain: Mutex<HashMap<String, Uuid>>,
    /// Held while the list is read again (once for all the rows that need it at that time).
    relisting: tokio::sync::Mutex<u64>,
}

impl Known {
    async fn list(client: &PartnerClient) -> Result<HashMap<String, Uuid>, pcq_client::Error> {
        client
            .customers()
            .list()
            .page_size(1000)
            .stream()
            .map_ok(|c| (c.company_profile.domain.to_ascii_lowercase(), c.id))
            .try_collect()
            .await
    }

    fn get(&self, domain: &str) -> Option<Uuid> {
        self.by_domain
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(domain)
            .copied()
    }

    fn insert(&self, domain: String, id: Uuid) {
        self.by_domain
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(domain, id);
    }

    /// The id of a customer pcq says exists (a domain taken since the start: an earlier row of
    /// the file, another client): read from the list again when it is not known yet.
    async fn find(&self, client: &PartnerClient, domain: &str) -> Option<Uuid> {
        if let Some(id) = self.get(domain) {
            return Some(id);
        }
        let mut relisted = self.relisting.lock().await;
        if let Some(id) = self.get(domain) {
            return Some(id);
        }
        let listed = Known::list(client).await.ok()?;
        *relisted += 1;
        let found = listed.get(domain).copied();
        self.by_domain
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(listed);
        found
    }
}

/// What every row's task shares.
struct Import {
    client: PartnerClient,
    ids: file::RequestIds,
    known: Known,
}

impl Import {
    /// Carries out one row: its customer, then its qualification.
    async fn row(&self, plan: Plan) -> Outcome {
        let client = self
            .client
            .with_correlation_id(self.ids.correlation_id(plan.line).to_string());
        let known = plan.domain_key.as_deref().and_then(|d| self.known.get(d));
        let (customer, outcome) = match known {
            Some(id) => (id, Outcome::AlreadyThere),
            None => match self.create_customer(&client, &plan).await {
                Ok(id) => (id, Outcome::Created),
                Err(e) if domain_taken(&e) => {
                    let key = plan.domain_key.as_deref().unwrap_or_default();
                    match self.known.find(&client, key).await {
                        Some(id) => (id, Outcome::AlreadyThere),
                        None => {
                            return Outcome::Failed(Failure::of_call(&plan, Step::Customer, &e));
                        }
                    }
                }
                Err(e) => return Outcome::Failed(Failure::of_call(&plan, Step::Customer, &e)),
            },
        };
        if let Some(wanted) = &plan.qualification {
            match self
                .request_qualification(&client, &plan, customer, wanted)
                .await
            {
                Ok(()) => {}
                // Held already (requested by other means, or by a changed file).
                Err(e) if qualification_held(&e) => {}
                Err(e) => {
                    return Outcome::Failed(Failure::of_call(&plan, Step::Qualification, &e));
                }
            }
        }
        outcome
    }

    async fn create_customer(
        &self,
        client: &PartnerClient,
        plan: &Plan,
    ) -> Result<Uuid, pcq_client::Error> {
        let request_id = self.ids.request_id(plan.line, Step::Customer);
        let customer = client
            .customers()
            .create(&crate::customers::new_customer(
                &plan.domain,
                plan.company_name.as_deref(),
                plan.email.as_deref(),
                plan.culture.as_deref(),
                plan.country.as_deref(),
            ))
            .with_request_id(request_id.to_string())
            .await?;
        if let Some(key) = &plan.domain_key {
            self.known.insert(key.clone(), customer.id);
        }
        Ok(customer.id)
    }

    async fn request_qualification(
        &self,
        client: &PartnerClient,
        plan: &Plan,
        customer: Uuid,
        wanted: &Wanted,
    ) -> Result<(), pcq_client::Error> {
        let request = match wanted {
            Wanted::Education { segment, website } => {
                crate::customers::education(*segment, website.as_deref())
            }
            Wanted::Gcc { code } => pcq_client::QualificationRequest::gcc(code.clone()),
            Wanted::StateOwnedEntity => pcq_client::QualificationRequest::state_owned_entity(),
        };
        let request_id = self.ids.request_id(plan.line, Step::Qualification);
        client
            .customers()
            .by_id(customer)
            .qualifications()
            .create(request)
            .with_request_id(request_id.to_string())
            .await?;
        Ok(())
    }
}

/// A 409 because another customer of the partner has the domain.
fn domain_taken(e: &pcq_client::Error) -> bool {
    e.status().map(|s| s.as_u16()) == Some(409)
        && e.fault()
            .is_some_and(|f| f.error_name == "DomainAlreadyExists")
}

/// A 409 because the customer holds the qualification already.
fn qualification_held(e: &pcq_client::Error) -> bool {
    e.status().map(|s| s.as_u16()) == Some(409)
        && e.fault()
            .is_some_and(|f| f.error_name == "QualificationAlreadyExists")
}

/// The summary of an import.
struct Summary {
    rows: u64,
    counts: Counts,
    seconds: f64,
    failures: Vec<Failure>,
}

/// Runs `pcq customers import`. Fails (exit status 1) when a row failed.
pub async fn run(args: ImportArgs, connection: Connection) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let parsed =
        ImportFile::parse(&bytes).with_context(|| format!("in {}", args.file.display()))?;
    drop(bytes);
    // The report's file is created before anything is sent: a wrong path stops the import.
    let report = args
        .report
        .as_deref()
        .map(|path| {
            csv::Writer::from_path(path)
                .with_context(|| format!("creating the report {}", path.display()))
        })
        .transpose()?;
    let client = crate::connection::connect_for_import(&connection, Role::Partner).await?;
    let known = Known::list(&client)
        .await
        .context("listing the customers already there")?;
    let import = Arc::new(Import {
        client,
        ids: parsed.request_ids,
        known: Known {
            by_domain: Mutex::new(known),
            relisting: tokio::sync::Mutex::new(0),
        },
    });

    let total = parsed.rows.len() as u64;
    let started = Instant::now();
    let mut progress = Progress::start(total, args.quiet || args.json);
    let mut counts = Counts::default();
    let mut failures = Vec::new();
    let mut outcomes = futures_util::stream::iter(parsed.rows)
        .map(|row| {
            let import = import.clone();
            async move {
                let row = match row {
                    Ok(row) => row,
                    Err(bad) => return Outcome::Failed(Failure::of_row(bad.line, "", bad.error)),
                };
                match row.plan() {
                    Ok(plan) => import.row(plan).await,
                    Err(error) => Outcome::Failed(Failure::of_row(
                        row.line,
                        row.get(file::Column::Domain).unwrap_or_default(),
                        error,
                    )),
                }
            }
        })
        .buffer_unordered(usize::from(args.concurrency));
    while let Some(outcome) = outcomes.next().await {
        match outcome {
            Outcome::Created => counts.created += 1,
            Outcome::AlreadyThere => counts.already_there += 1,
            Outcome::Failed(failure) => {
                counts.failed += 1;
                failures.push(failure);
            }
        }
        progress.update(&counts);
    }
    progress.finish();
    failures.sort_by_key(|f| f.line);
    let summary = Summary {
        rows: total,
        counts,
        seconds: started.elapsed().as_secs_f64(),
        failures,
    };
    if let Some(report) = report {
        write_report(report, &summary.failures)
            .with_context(|| format!("writing the report {}", path_of(&args.report).display()))?;
    }
    print_summary(&args, &summary);
    if summary.counts.failed > 0 {
        bail!(
            "{} of {} rows failed{}",
            summary.counts.failed,
            summary.rows,
            match &args.report {
                Some(path) => format!("; {} lists them", path.display()),
                None => String::new(),
            }
        );
    }
    Ok(())
}

fn path_of(report: &Option<PathBuf>) -> &Path {
    report.as_deref().unwrap_or(Path::new("-"))
}

/// The report: one CSV line per failed row, in line order.
fn write_report(
    mut writer: csv::Writer<std::fs::File>,
    failures: &[Failure],
) -> anyhow::Result<()> {
    writer.write_record(["line", "domain", "step", "status", "code", "error"])?;
    for f in failures {
        writer.write_record([
            f.line.to_string(),
            f.domain.clone(),
            f.step.to_owned(),
            f.status.map(|s| s.to_string()).unwrap_or_default(),
            f.code.map(|c| c.to_string()).unwrap_or_default(),
            f.error.clone(),
        ])?;
    }
    writer.flush()?;
    Ok(())
}

fn print_summary(args: &ImportArgs, summary: &Summary) {
    let Counts {
        created,
        already_there,
        failed,
    } = summary.counts;
    let rate = summary.rows as f64 / summary.seconds.max(0.001);
    if args.json {
        let failures: Vec<_> = summary
            .failures
            .iter()
            .map(|f| {
                json!({"line": f.line, "domain": f.domain, "step": f.step, "status": f.status,
                       "code": f.code, "error": f.error})
            })
            .collect();
        crate::output::print_json(&json!({
            "rows": summary.rows,
            "created": created,
            "alreadyThere": already_there,
            "failed": failed,
            "seconds": (summary.seconds * 1000.0).round() / 1000.0,
            "rowsPerSecond": rate.round(),
            "failures": failures,
        }));
        return;
    }
    for f in summary.failures.iter().take(SHOWN_FAILURES) {
        eprintln!("pcq: line {}: {}: {}", f.line, f.step, f.error);
    }
    if summary.failures.len() > SHOWN_FAILURES && args.report.is_none() {
        eprintln!(
            "pcq: … and {} more failed rows (--report FILE lists them all)",
            summary.failures.len() - SHOWN_FAILURES
        );
    }
    println!(
        "{} rows from {} in {:.1} s ({rate:.0} rows/s): {created} created, {already_there} already \
         there, {failed} failed",
        summary.rows,
        args.file.display(),
        summary.seconds,
    );
}
