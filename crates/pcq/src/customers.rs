//! The partner's commands over the API: customers, their qualifications, validation codes and
//! audit records, through pcq-client. A table by default, `--json` for the API's own shapes.

use clap::{Subcommand, ValueEnum};
use futures_util::TryStreamExt;
use pcq_client::{AuditQuery, NewCustomer, QualificationRequest};
use pcq_core::enums::EducationSegment;
use pcq_core::wire::{AuditRecord, Customer, CustomerQualification, ValidationCode};

use crate::connection::{Connection, Role};
use crate::output::{self, count, print_json, text};
use serde_json::{Map, Value};

/// `pcq customers …`
#[derive(Subcommand)]
pub enum CustomersCommand {
    /// List the partner's customers (every page).
    List {
        /// Print the customers as the API answers them, in one JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Show one customer.
    Get {
        /// The customer's tenant id.
        #[arg(value_name = "ID")]
        id: String,
        /// Print the customer as the API answers it.
        #[arg(long)]
        json: bool,
    },
    /// Create a customer.
    Create {
        /// The customer's domain, e.g. contoso.onmicrosoft.com (unique among the partner's
        /// customers).
        #[arg(long, value_name = "DOMAIN")]
        domain: String,
        /// The company or organisation name.
        #[arg(long, value_name = "NAME")]
        company_name: Option<String>,
        /// The billing contact's email address.
        #[arg(long, value_name = "EMAIL")]
        email: Option<String>,
        /// The billing culture, e.g. en-US.
        #[arg(long, value_name = "CULTURE")]
        culture: Option<String>,
        /// The billing address's country, e.g. US.
        #[arg(long, value_name = "COUNTRY")]
        country: Option<String>,
        /// Print the created customer as the API answers it.
        #[arg(long)]
        json: bool,
    },
    /// Create customers (and request their qualifications) from a CSV file; run it again
    /// after an interruption: nothing is created twice.
    Import(crate::import::ImportArgs),
}

/// `pcq qualifications …`
#[derive(Subcommand)]
pub enum QualificationsCommand {
    /// Show a customer's qualifications.
    Get {
        /// The customer's tenant id.
        #[arg(value_name = "CUSTOMER")]
        customer: String,
        /// Print the API's JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Request a qualification for a customer (Education starts in review).
    Request {
        /// The customer's tenant id.
        #[arg(value_name = "CUSTOMER")]
        customer: String,
        /// The qualification.
        #[arg(value_enum, value_name = "QUALIFICATION")]
        qualification: Requested,
        /// The education segment (Education; the 2023 contract requires it).
        #[arg(long, value_enum)]
        segment: Option<Segment>,
        /// The education entity's website (Education).
        #[arg(long, value_name = "URL")]
        website: Option<String>,
        /// The partner's validation code (GovernmentCommunityCloud; see pcq validation-codes
        /// list).
        #[arg(long, value_name = "CODE")]
        code: Option<String>,
        /// Print the created qualification as the API answers it.
        #[arg(long)]
        json: bool,
    },
}

/// A qualification a partner can request.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Requested {
    /// Education: vetted asynchronously (InReview, then Approved or Denied).
    Education,
    /// Government Community Cloud: needs --code.
    Gcc,
    /// State Owned Entity.
    StateOwnedEntity,
}

/// An education segment.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Segment {
    /// Primary and secondary education.
    K12,
    /// Universities and colleges.
    HigherEducation,
}

impl From<Segment> for EducationSegment {
    fn from(segment: Segment) -> Self {
        match segment {
            Segment::K12 => EducationSegment::K12,
            Segment::HigherEducation => EducationSegment::HigherEducation,
        }
    }
}

/// `pcq validation-codes …`
#[derive(Subcommand)]
pub enum ValidationCodesCommand {
    /// List the partner's GCC validation codes.
    List {
        /// Print the API's JSON array.
        #[arg(long)]
        json: bool,
    },
}

/// `pcq audit …`
#[derive(Subcommand)]
pub enum AuditCommand {
    /// List the partner's audit records, oldest first (every page).
    List {
        /// From this day on (yyyy-mm-dd or RFC 3339) [default: 30 days ago].
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Up to this day, inclusive [default: today].
        #[arg(long, value_name = "DATE")]
        until: Option<String>,
        /// Only this customer's records.
        #[arg(long, value_name = "ID")]
        customer: Option<String>,
        /// Only this operation, e.g. add_customer or update_customer_qualification.
        #[arg(long, value_name = "TYPE")]
        operation: Option<String>,
        /// Print the records as the API answers them, in one JSON array.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `pcq customers …`.
pub async fn customers(command: CustomersCommand, connection: Connection) -> anyhow::Result<()> {
    if let CustomersCommand::Import(args) = command {
        return crate::import::run(args, connection).await;
    }
    let client = crate::connection::connect(&connection, Role::Partner).await?;
    match command {
        CustomersCommand::List { json } => {
            let customers: Vec<Customer> = client
                .customers()
                .list()
                .page_size(1000)
                .stream()
                .try_collect()
                .await?;
            if json {
                print_json(&customers);
            } else {
                customers_table(&customers);
            }
        }
        CustomersCommand::Get { id, json } => {
            let customer = client.customers().by_id(id.as_str()).get().await?;
            show_customer(&customer, json);
        }
        CustomersCommand::Create {
            domain,
            company_name,
            email,
            culture,
            country,
            json,
        } => {
            let customer = client
                .customers()
                .create(&new_customer(
                    &domain,
                    company_name.as_deref(),
                    email.as_deref(),
                    culture.as_deref(),
                    country.as_deref(),
                ))
                .await?;
            show_customer(&customer, json);
        }
        CustomersCommand::Import(_) => unreachable!("handled above"),
    }
    Ok(())
}

/// A customer to create: the domain and name in its company profile, the email address, culture
/// and country in its billing profile (as Partner Center's `Customer` has them).
pub fn new_customer(
    domain: &str,
    company_name: Option<&str>,
    email: Option<&str>,
    culture: Option<&str>,
    country: Option<&str>,
) -> NewCustomer {
    let mut customer = NewCustomer::new(domain);
    if let Some(name) = company_name {
        customer = customer.company_name(name);
    }
    let mut billing = Map::new();
    if let Some(email) = email {
        billing.insert("email".to_owned(), Value::from(email));
    }
    if let Some(culture) = culture {
        billing.insert("culture".to_owned(), Value::from(culture));
    }
    if let Some(country) = country {
        let mut address = Map::new();
        address.insert("country".to_owned(), Value::from(country));
        billing.insert("defaultAddress".to_owned(), Value::Object(address));
    }
    if !billing.is_empty() {
        customer = customer.billing_profile(billing);
    }
    customer
}

/// An Education request, with its segment when given (the 2021 contract allows none).
pub fn education(segment: Option<EducationSegment>, website: Option<&str>) -> QualificationRequest {
    let request = match segment {
        Some(segment) => QualificationRequest::education(segment),
        None => QualificationRequest::education_without_segment(),
    };
    match website {
        Some(website) => request.website(website),
        None => request,
    }
}

/// A value of the billing profile (`email`, `defaultAddress.country`).
fn billing(customer: &Customer, path: &[&str]) -> Option<String> {
    let mut value = customer.billing_profile.as_ref()?;
    for key in path {
        value = value.get(key)?;
    }
    Some(text(value)).filter(|s| !s.is_empty())
}

fn customers_table(customers: &[Customer]) {
    if customers.is_empty() {
        println!("no customers");
        return;
    }
    let mut table = output::table(["id", "domain", "company name", "email", "country"]);
    for c in customers {
        table.add_row([
            c.id.to_string(),
            c.company_profile.domain.clone(),
            c.company_profile.company_name.clone().unwrap_or_default(),
            billing(c, &["email"]).unwrap_or_default(),
            billing(c, &["defaultAddress", "country"]).unwrap_or_default(),
        ]);
    }
    println!("{table}");
    println!("{}", count(customers.len(), "customer", "customers"));
}

fn show_customer(customer: &Customer, json: bool) {
    if json {
        print_json(customer);
        return;
    }
    let c = customer;
    let table = output::fields(&[
        ("id", Some(c.id.to_string())),
        ("domain", Some(c.company_profile.domain.clone())),
        ("company name", c.company_profile.company_name.clone()),
        ("email", billing(c, &["email"])),
        ("culture", billing(c, &["culture"])),
        ("country", billing(c, &["defaultAddress", "country"])),
        ("relationship", Some(c.relationship_to_partner.clone())),
        (
            "delegated access",
            c.allow_delegated_access.map(|a| a.to_string()),
        ),
    ]);
    println!("{table}");
}

/// Runs `pcq qualifications …`.
pub async fn qualifications(
    command: QualificationsCommand,
    connection: Connection,
) -> anyhow::Result<()> {
    let client = crate::connection::connect(&connection, Role::Partner).await?;
    match command {
        QualificationsCommand::Get { customer, json } => {
            let held = client
                .customers()
                .by_id(customer.as_str())
                .qualifications()
                .get()
                .await?;
            if json {
                print_json(&held);
            } else if held.is_empty() {
                println!("{customer} has no qualification");
            } else {
                qualifications_table(&held);
            }
        }
        QualificationsCommand::Request {
            customer,
            qualification,
            segment,
            website,
            code,
            json,
        } => {
            let request = match qualification {
                Requested::Education => {
                    if code.is_some() {
                        anyhow::bail!("--code is for gcc, not education");
                    }
                    education(segment.map(Into::into), website.as_deref())
                }
                Requested::Gcc => {
                    only_education(segment, &website, "gcc")?;
                    let Some(code) = code else {
                        anyhow::bail!(
                            "gcc needs --code, a validation code of the partner (pcq \
                             validation-codes list)"
                        );
                    };
                    QualificationRequest::gcc(code)
                }
                Requested::StateOwnedEntity => {
                    only_education(segment, &website, "state-owned-entity")?;
                    if code.is_some() {
                        anyhow::bail!("--code is for gcc, not state-owned-entity");
                    }
                    QualificationRequest::state_owned_entity()
                }
            };
            let created = client
                .customers()
                .by_id(customer.as_str())
                .qualifications()
                .create(request)
                .await?;
            if json {
                print_json(&created);
            } else {
                qualifications_table(std::slice::from_ref(&created));
            }
        }
    }
    Ok(())
}

fn only_education(
    segment: Option<Segment>,
    website: &Option<String>,
    what: &str,
) -> anyhow::Result<()> {
    if segment.is_some() || website.is_some() {
        anyhow::bail!("--segment and --website are for education, not {what}");
    }
    Ok(())
}

fn qualifications_table(held: &[CustomerQualification]) {
    let mut table = output::table(["qualification", "vetting status", "reason", "since"]);
    for q in held {
        table.add_row([
            q.qualification.to_string(),
            q.vetting_status.map(|s| s.to_string()).unwrap_or_default(),
            q.vetting_reason.clone().unwrap_or_default(),
            q.vetting_create_date.clone().unwrap_or_default(),
        ]);
    }
    println!("{table}");
}

/// Runs `pcq validation-codes …`.
pub async fn validation_codes(
    command: ValidationCodesCommand,
    connection: Connection,
) -> anyhow::Result<()> {
    let client = crate::connection::connect(&connection, Role::Partner).await?;
    let ValidationCodesCommand::List { json } = command;
    let codes: Vec<ValidationCode> = client.validation_codes().list().await?;
    if json {
        print_json(&codes);
        return Ok(());
    }
    if codes.is_empty() {
        println!("no validation codes");
        return Ok(());
    }
    let mut table = output::table(["validation id", "organization", "remaining", "of"]);
    for code in &codes {
        table.add_row([
            code.validation_id.clone(),
            code.organization_name.clone(),
            code.remaining_creates.to_string(),
            code.max_creates.to_string(),
        ]);
    }
    println!("{table}");
    println!(
        "{}",
        count(codes.len(), "validation code", "validation codes")
    );
    Ok(())
}

/// Runs `pcq audit …`.
pub async fn audit(command: AuditCommand, connection: Connection) -> anyhow::Result<()> {
    let client = crate::connection::connect(&connection, Role::Partner).await?;
    let AuditCommand::List {
        since,
        until,
        customer,
        operation,
        json,
    } = command;
    let mut query = AuditQuery::new();
    if let Some(since) = since {
        query = query.start_date(since);
    }
    if let Some(until) = until {
        query = query.end_date(until);
    }
    if let Some(customer) = customer {
        query = query.customer_id(customer);
    }
    if let Some(operation) = operation {
        query = query.operation_type(operation);
    }
    let records: Vec<AuditRecord> = client
        .audit_records()
        .query(query)
        .page_size(1000)
        .stream()
        .try_collect()
        .await?;
    if json {
        print_json(&records);
        return Ok(());
    }
    if records.is_empty() {
        println!("no audit records");
        return Ok(());
    }
    let mut table = output::table(["date", "operation", "status", "customer", "by"]);
    for r in &records {
        let customer = r
            .customer_name
            .clone()
            .or_else(|| r.customer_id.map(|id| id.to_string()))
            .unwrap_or_default();
        let by = r
            .user_principal_name
            .clone()
            .or_else(|| r.application_id.clone().map(|a| format!("app {a}")))
            .unwrap_or_default();
        table.add_row([
            r.operation_date.clone(),
            r.operation_type.clone(),
            r.operation_status.clone(),
            customer,
            by,
        ]);
    }
    println!("{table}");
    println!("{}", count(records.len(), "audit record", "audit records"));
    Ok(())
}
