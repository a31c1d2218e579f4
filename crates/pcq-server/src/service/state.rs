//! State snapshots (`docs/state.md`): the whole store, or one partner's data, as one JSON
//! document that a dump writes as it reads and a load reads row by row.
//!
//! - A dump ([`DumpState`]) is one read op: it reads every table page by page in key order
//!   inside one snapshot and writes the JSON into a bounded channel as it goes, so the document
//!   is consistent and never held in memory.
//! - A load is checked first ([`check`]): the document, spooled to a file, is parsed one row at
//!   a time and every row checked (types, names, references, duplicates, the partner of a
//!   partner's load); an error names the JSON path of the problem. Then [`LoadState`], one
//!   write op, removes what a reset removes and inserts the rows, reading the file again on a
//!   thread of its own that hands it rows in batches (a synchronous channel: the op awaits only
//!   its statements, as SQLite's writer requires).

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use pcq_core::vetting::VettingPolicy;
use pcq_core::{ApiFault, EducationSegment, Qualification, VettingStatus};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use pcq_core::time::Timestamp;

use super::seed::{ApplySeed, Seed};
use crate::error::Error;
use crate::store::reset::Removed;
use crate::store::sql::Table;
use crate::store::state::*;
use crate::store::{DeliveryStatus, Op, Tx};

/// The `format` of a state document.
pub const FORMAT: &str = "pcq-state/1";

/// The kinds of rows, in the order a dump writes them (parents before the rows that refer to
/// them, as a load requires).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Customers,
    Qualifications,
    QualificationEvents,
    ValidationCodes,
    VettingJobs,
    AuditRecords,
    WebhookRegistrations,
    WebhookDeliveries,
    WebhookAttempts,
    IdempotencyRecords,
}

impl Kind {
    const ALL: [Kind; 10] = [
        Kind::Customers,
        Kind::Qualifications,
        Kind::QualificationEvents,
        Kind::ValidationCodes,
        Kind::VettingJobs,
        Kind::AuditRecords,
        Kind::WebhookRegistrations,
        Kind::WebhookDeliveries,
        Kind::WebhookAttempts,
        Kind::IdempotencyRecords,
    ];

    /// The document's key for the rows.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Customers => "customers",
            Kind::Qualifications => "qualifications",
            Kind::QualificationEvents => "qualificationEvents",
            Kind::ValidationCodes => "validationCodes",
            Kind::VettingJobs => "vettingJobs",
            Kind::AuditRecords => "auditRecords",
            Kind::WebhookRegistrations => "webhookRegistrations",
            Kind::WebhookDeliveries => "webhookDeliveries",
            Kind::WebhookAttempts => "webhookAttempts",
            Kind::IdempotencyRecords => "idempotencyRecords",
        }
    }

    fn from_key(key: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.key() == key)
    }

    /// The kind whose rows these rows' foreign keys refer to, which must come first in a
    /// document (other references may point forward).
    fn parent(self) -> Option<Kind> {
        match self {
            Kind::Qualifications | Kind::QualificationEvents => Some(Kind::Customers),
            _ => None,
        }
    }
}

/// How many rows of each kind a load inserted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateCounts {
    /// Customers.
    pub customers: u64,
    /// Qualifications (their current state).
    pub qualifications: u64,
    /// Steps of the qualifications' history.
    pub qualification_events: u64,
    /// GCC validation codes.
    pub validation_codes: u64,
    /// Pending vetting decisions.
    pub vetting_jobs: u64,
    /// Audit records.
    pub audit_records: u64,
    /// Webhook registrations.
    pub webhook_registrations: u64,
    /// Webhook events (the outbox).
    pub webhook_deliveries: u64,
    /// Attempts to deliver them.
    pub webhook_attempts: u64,
    /// Stored answers of idempotent requests.
    pub idempotency_records: u64,
}

impl StateCounts {
    fn add(&mut self, kind: Kind, n: u64) {
        let count = match kind {
            Kind::Customers => &mut self.customers,
            Kind::Qualifications => &mut self.qualifications,
            Kind::QualificationEvents => &mut self.qualification_events,
            Kind::ValidationCodes => &mut self.validation_codes,
            Kind::VettingJobs => &mut self.vetting_jobs,
            Kind::AuditRecords => &mut self.audit_records,
            Kind::WebhookRegistrations => &mut self.webhook_registrations,
            Kind::WebhookDeliveries => &mut self.webhook_deliveries,
            Kind::WebhookAttempts => &mut self.webhook_attempts,
            Kind::IdempotencyRecords => &mut self.idempotency_records,
        };
        *count += n;
    }
}

/// What a load did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateLoaded {
    /// The partner whose data was replaced, or null when the whole store was.
    pub partner: Option<Uuid>,
    /// The document's format: `pcq-state/1`, or `seed` for a seed file (`docs/seed.md`).
    pub format: String,
    /// How many rows of each kind were loaded (for a seed, customers and validation codes).
    pub loaded: StateCounts,
    /// How many rows of each kind were removed first.
    pub removed: Removed,
}

/// The sandbox clock in a whole-store document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClockState {
    /// How far pcq's clock is ahead of the system's, in microseconds.
    pub offset_micros: i64,
}

/// One row of a document.
#[derive(Debug, Clone)]
pub enum StateRow {
    Customer(CustomerState),
    Qualification(QualificationState),
    QualificationEvent(QualificationEventState),
    ValidationCode(ValidationCodeState),
    VettingJob(VettingJobState),
    AuditRecord(AuditRecordState),
    WebhookRegistration(WebhookRegistrationState),
    WebhookDelivery(WebhookDeliveryState),
    WebhookAttempt(WebhookAttemptState),
    Idempotency(IdempotencyState),
}

/// What a document says besides its rows.
#[derive(Debug, Clone, Default)]
pub struct Header {
    /// `format`, when present.
    pub format: Option<String>,
    /// `partner`, when present.
    pub partner: Option<Option<Uuid>>,
    /// `clock`, when present.
    pub clock: Option<ClockState>,
    /// `vettingPolicy`, when present.
    pub policy: Option<Option<VettingPolicy>>,
    /// Whether the document has a seed's `partners`.
    pub seed_partners: bool,
    /// The kinds of rows, in the order they came.
    pub kinds: Vec<Kind>,
}

/// A problem with a row: the path inside it (empty, or `.field`) and what is wrong.
type RowProblem = (String, String);

/// Parses a document from `reader`, handing every row to `on_row` with its kind and index.
/// An error is a sentence that starts with the JSON path of the problem.
pub fn parse(
    reader: impl Read,
    on_row: &mut dyn FnMut(Kind, usize, StateRow) -> Result<(), RowProblem>,
) -> Result<Header, String> {
    let failure = RefCell::new(None);
    let mut json = serde_json::Deserializer::from_reader(BufReader::with_capacity(1 << 16, reader));
    let mut track = serde_path_to_error::Track::new();
    let result = DocSeed {
        on_row,
        failure: &failure,
    }
    .deserialize(serde_path_to_error::Deserializer::new(
        &mut json, &mut track,
    ))
    .and_then(|header| json.end().map(|()| header));
    match result {
        Ok(header) => Ok(header),
        Err(e) => Err(failure.into_inner().unwrap_or_else(|| {
            let path = track.path().to_string();
            if path == "." || path.is_empty() {
                format!("the document is not valid JSON: {e}")
            } else {
                format!("{path}: {e}")
            }
        })),
    }
}

/// Records a located problem and returns the error that stops the parse.
fn fail<E: serde::de::Error>(failure: &RefCell<Option<String>>, message: String) -> E {
    let error = E::custom(&message);
    failure.borrow_mut().get_or_insert(message);
    error
}

struct DocSeed<'a, 'f> {
    on_row: &'a mut dyn FnMut(Kind, usize, StateRow) -> Result<(), RowProblem>,
    failure: &'f RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for DocSeed<'_, '_> {
    type Value = Header;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Header, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DocSeed<'_, '_> {
    type Value = Header;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a pcq state document (an object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header, A::Error> {
        let mut header = Header::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "format" => {
                    let format: String = map.next_value()?;
                    if format != FORMAT {
                        return Err(fail(
                            self.failure,
                            format!(
                                "format: pcq does not know the format {format:?}; it reads \
                                 {FORMAT:?} (or a seed file, without \"format\")"
                            ),
                        ));
                    }
                    header.format = Some(format);
                }
                "partner" => header.partner = Some(map.next_value()?),
                "clock" => header.clock = Some(map.next_value()?),
                "vettingPolicy" => header.policy = Some(map.next_value()?),
                "partners" => {
                    map.next_value::<IgnoredAny>()?;
                    header.seed_partners = true;
                }
                other => {
                    let Some(kind) = Kind::from_key(other) else {
                        return Err(fail(
                            self.failure,
                            format!(
                                "{other}: unknown key; a state document has format, partner, \
                                 clock, vettingPolicy and {}",
                                Kind::ALL.map(Kind::key).join(", ")
                            ),
                        ));
                    };
                    if let Some(parent) = kind.parent()
                        && !header.kinds.contains(&parent)
                    {
                        return Err(fail(
                            self.failure,
                            format!(
                                "{}: must come after {} in the document (its rows refer to them)",
                                kind.key(),
                                parent.key()
                            ),
                        ));
                    }
                    header.kinds.push(kind);
                    map.next_value_seed(RowsSeed {
                        kind,
                        on_row: &mut *self.on_row,
                        failure: self.failure,
                    })?;
                }
            }
        }
        Ok(header)
    }
}

struct RowsSeed<'a, 'f> {
    kind: Kind,
    on_row: &'a mut dyn FnMut(Kind, usize, StateRow) -> Result<(), RowProblem>,
    failure: &'f RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for RowsSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an array of {}", self.kind.key())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            let row = match self.kind {
                Kind::Customers => seq.next_element()?.map(StateRow::Customer),
                Kind::Qualifications => seq.next_element()?.map(StateRow::Qualification),
                Kind::QualificationEvents => seq.next_element()?.map(StateRow::QualificationEvent),
                Kind::ValidationCodes => seq.next_element()?.map(StateRow::ValidationCode),
                Kind::VettingJobs => seq.next_element()?.map(StateRow::VettingJob),
                Kind::AuditRecords => seq.next_element()?.map(StateRow::AuditRecord),
                Kind::WebhookRegistrations => {
                    seq.next_element()?.map(StateRow::WebhookRegistration)
                }
                Kind::WebhookDeliveries => seq.next_element()?.map(StateRow::WebhookDelivery),
                Kind::WebhookAttempts => seq.next_element()?.map(StateRow::WebhookAttempt),
                Kind::IdempotencyRecords => seq.next_element()?.map(StateRow::Idempotency),
            };
            let Some(row) = row else {
                return Ok(());
            };
            if let Err((at, problem)) = (self.on_row)(self.kind, index, row) {
                return Err(fail(
                    self.failure,
                    format!("{}[{index}]{at}: {problem}", self.kind.key()),
                ));
            }
            index += 1;
        }
    }
}

/// A checked document, spooled to a file, ready to load.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The rows of each kind.
    pub counts: StateCounts,
    /// The sandbox clock's offset (0 when the document has none).
    pub clock_offset: i64,
    /// The run-time vetting policy (none when the document has none).
    pub policy: Option<VettingPolicy>,
}

/// What a spooled document turned out to be.
#[derive(Debug)]
pub enum Document {
    /// A state document, checked.
    State(Checked),
    /// A seed file (no `format`).
    Seed,
}

fn hash_of(value: impl Hash) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// What the check of a document has seen so far.
struct Checker {
    scope: Option<Uuid>,
    counts: StateCounts,
    customers: HashSet<Uuid>,
    domains: HashSet<u64>,
    qualifications: HashSet<(Uuid, Qualification)>,
    codes: HashSet<u64>,
    jobs: HashSet<(Uuid, Qualification)>,
    audit: HashSet<u64>,
    registrations: HashSet<Uuid>,
    deliveries: HashSet<Uuid>,
    attempts: HashSet<(Uuid, i64)>,
    idempotency: HashSet<u64>,
    /// References to customers or deliveries that had not come yet: (path, id, delivery?).
    forward: Vec<(String, Uuid, bool)>,
}

fn missing_customer(id: Uuid) -> RowProblem {
    problem(
        ".customerId",
        format!("the customer {id} is not among the document's customers"),
    )
}

fn problem(at: &str, what: impl Into<String>) -> RowProblem {
    (at.to_owned(), what.into())
}

fn exact_name<T>(
    at: &str,
    raw: &str,
    parse: fn(&str) -> Option<T>,
    as_str: fn(&T) -> &str,
) -> Result<T, RowProblem> {
    match parse(raw) {
        Some(value) if as_str(&value) == raw => Ok(value),
        _ => Err(problem(at, format!("{raw:?} is not a stored name"))),
    }
}

fn qualification(at: &str, raw: &str) -> Result<Qualification, RowProblem> {
    exact_name(at, raw, Qualification::parse_str, |q| q.as_str())
}

fn vetting_status(at: &str, raw: &Option<String>) -> Result<(), RowProblem> {
    if let Some(raw) = raw {
        exact_name(at, raw, VettingStatus::parse_str, |s| s.as_str())?;
    }
    Ok(())
}

impl Checker {
    fn partner(&self, partner: Uuid) -> Result<(), RowProblem> {
        match self.scope {
            Some(scope) if scope != partner => Err(problem(
                ".partnerTenantId",
                format!("{partner} is another partner; this load replaces only {scope}'s data"),
            )),
            _ => Ok(()),
        }
    }

    fn customer(&mut self, kind: Kind, index: usize, id: Uuid) -> Result<(), RowProblem> {
        match kind.parent() {
            Some(_) if !self.customers.contains(&id) => Err(missing_customer(id)),
            None if !self.customers.contains(&id) => {
                self.forward
                    .push((format!("{}[{index}].customerId", kind.key()), id, false));
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The references that pointed forward, now that every row has come.
    fn forward_references(&self) -> Result<(), String> {
        for (at, id, delivery) in &self.forward {
            if *delivery && !self.deliveries.contains(id) {
                return Err(format!(
                    "{at}: the delivery {id} is not among the document's webhookDeliveries"
                ));
            }
            if !*delivery && !self.customers.contains(id) {
                return Err(format!("{at}: {}", missing_customer(*id).1));
            }
        }
        Ok(())
    }

    fn row(&mut self, kind: Kind, index: usize, row: &StateRow) -> Result<(), RowProblem> {
        match row {
            StateRow::Customer(c) => {
                self.partner(c.partner_tenant_id)?;
                if c.domain.is_empty() || c.domain != c.domain.to_lowercase() {
                    return Err(problem(".domain", "must be a non-empty lower-case domain"));
                }
                if !self.customers.insert(c.id) {
                    return Err(problem(
                        ".id",
                        format!("the customer {} is listed twice", c.id),
                    ));
                }
                if !self
                    .domains
                    .insert(hash_of((c.partner_tenant_id, &c.domain)))
                {
                    return Err(problem(
                        ".domain",
                        format!(
                            "the partner has another customer with the domain {}",
                            c.domain
                        ),
                    ));
                }
            }
            StateRow::Qualification(q) => {
                self.customer(kind, index, q.customer_id)?;
                let which = qualification(".qualification", &q.qualification)?;
                vetting_status(".vettingStatus", &q.vetting_status)?;
                if let Some(raw) = &q.education_segment {
                    exact_name(".educationSegment", raw, EducationSegment::parse_str, |s| {
                        s.as_str()
                    })?;
                }
                if q.round < 1 {
                    return Err(problem(".round", "must be at least 1"));
                }
                if !self.qualifications.insert((q.customer_id, which)) {
                    return Err(problem(
                        ".qualification",
                        format!(
                            "the customer {} has {} twice",
                            q.customer_id, q.qualification
                        ),
                    ));
                }
            }
            StateRow::QualificationEvent(e) => {
                self.customer(kind, index, e.customer_id)?;
                qualification(".qualification", &e.qualification)?;
                vetting_status(".fromStatus", &e.from_status)?;
                vetting_status(".toStatus", &e.to_status)?;
            }
            StateRow::ValidationCode(v) => {
                self.partner(v.partner_tenant_id)?;
                if !(0..=v.max_creates).contains(&v.remaining_creates) {
                    return Err(problem(
                        ".remainingCreates",
                        "must be between 0 and maxCreates",
                    ));
                }
                if !self.codes.insert(hash_of(&v.validation_id)) {
                    return Err(problem(
                        ".validationId",
                        format!("the validation code {} is listed twice", v.validation_id),
                    ));
                }
            }
            StateRow::VettingJob(j) => {
                self.partner(j.partner_tenant_id)?;
                self.customer(kind, index, j.customer_id)?;
                let which = qualification(".qualification", &j.qualification)?;
                if !self.jobs.insert((j.customer_id, which)) {
                    return Err(problem(
                        ".qualification",
                        format!(
                            "the customer {} has two pending decisions for {}",
                            j.customer_id, j.qualification
                        ),
                    ));
                }
            }
            StateRow::AuditRecord(a) => {
                self.partner(a.partner_tenant_id)?;
                if !self.audit.insert(hash_of(&a.id)) {
                    return Err(problem(
                        ".id",
                        format!("the audit record {} is listed twice", a.id),
                    ));
                }
            }
            StateRow::WebhookRegistration(r) => {
                self.partner(r.partner_tenant_id)?;
                if !self.registrations.insert(r.partner_tenant_id) {
                    return Err(problem(
                        ".partnerTenantId",
                        format!("the partner {} has two registrations", r.partner_tenant_id),
                    ));
                }
            }
            StateRow::WebhookDelivery(d) => {
                self.partner(d.partner_tenant_id)?;
                exact_name(".status", &d.status, DeliveryStatus::parse_str, |s| {
                    s.as_str()
                })?;
                if !self.deliveries.insert(d.id) {
                    return Err(problem(
                        ".id",
                        format!("the delivery {} is listed twice", d.id),
                    ));
                }
            }
            StateRow::WebhookAttempt(a) => {
                if !self.deliveries.contains(&a.delivery_id) {
                    self.forward.push((
                        format!("{}[{index}].deliveryId", kind.key()),
                        a.delivery_id,
                        true,
                    ));
                }
                if !self.attempts.insert((a.delivery_id, a.attempt)) {
                    return Err(problem(
                        ".attempt",
                        format!("attempt {} of {} is listed twice", a.attempt, a.delivery_id),
                    ));
                }
            }
            StateRow::Idempotency(i) => {
                self.partner(i.partner_tenant_id)?;
                if !self.idempotency.insert(hash_of((
                    i.partner_tenant_id,
                    &i.request_id,
                    &i.method,
                    &i.route,
                ))) {
                    return Err(problem(
                        ".requestId",
                        format!(
                            "the request {} {} {} is listed twice",
                            i.request_id, i.method, i.route
                        ),
                    ));
                }
            }
        }
        self.counts.add(kind, 1);
        Ok(())
    }
}

/// Checks a spooled document: a state document row by row, or (without `format`) a seed. With
/// `scope`, every row must belong to that partner.
pub fn check(path: &Path, scope: Option<Uuid>) -> Result<Document, ApiFault> {
    let file = std::fs::File::open(path)
        .map_err(|e| ApiFault::invalid_input(format!("the document could not be read: {e}")))?;
    let mut checker = Checker {
        scope,
        counts: StateCounts::default(),
        customers: HashSet::new(),
        domains: HashSet::new(),
        qualifications: HashSet::new(),
        codes: HashSet::new(),
        jobs: HashSet::new(),
        audit: HashSet::new(),
        registrations: HashSet::new(),
        deliveries: HashSet::new(),
        attempts: HashSet::new(),
        idempotency: HashSet::new(),
        forward: Vec::new(),
    };
    let header = parse(file, &mut |kind, index, row| checker.row(kind, index, &row))
        .map_err(invalid_document)?;
    checker.forward_references().map_err(invalid_document)?;
    let Some(_) = header.format else {
        if !header.kinds.is_empty() || header.clock.is_some() || header.policy.is_some() {
            return Err(invalid_document(format!(
                "format: missing; a state document starts with \"format\": \"{FORMAT}\""
            )));
        }
        return Ok(Document::Seed);
    };
    if header.seed_partners {
        return Err(invalid_document(
            "partners: a state document has no partners (that is a seed file's key)".into(),
        ));
    }
    if let Some(Some(owner)) = header.partner
        && scope != Some(owner)
    {
        return Err(invalid_document(format!(
            "partner: the document holds the data of the partner {owner} only; load it for that \
             partner (?partner={owner}, pcq admin restore --partner {owner}) so that other \
             partners' data stays"
        )));
    }
    if scope.is_some() && (header.clock.is_some() || header.policy.is_some()) {
        return Err(invalid_document(
            "clock: a partner's load cannot set the sandbox clock or the vetting policy, which \
             every partner shares; load the document without ?partner= or remove them"
                .into(),
        ));
    }
    let clock_offset = header.clock.unwrap_or_default().offset_micros;
    if clock_offset < 0 {
        return Err(invalid_document(
            "clock.offsetMicros: must not be negative".into(),
        ));
    }
    Ok(Document::State(Checked {
        counts: checker.counts,
        clock_offset,
        policy: header.policy.flatten(),
    }))
}

fn invalid_document(description: String) -> ApiFault {
    ApiFault::invalid_input(format!("The state document is not valid: {description}"))
}

/// One batch of rows of one kind, handed from the thread reading the file to the load.
enum Batch {
    Customers(Vec<CustomerState>),
    Qualifications(Vec<QualificationState>),
    QualificationEvents(Vec<QualificationEventState>),
    ValidationCodes(Vec<ValidationCodeState>),
    VettingJobs(Vec<VettingJobState>),
    AuditRecords(Vec<AuditRecordState>),
    WebhookRegistrations(Vec<WebhookRegistrationState>),
    WebhookDeliveries(Vec<WebhookDeliveryState>),
    WebhookAttempts(Vec<WebhookAttemptState>),
    Idempotency(Vec<IdempotencyState>),
}

/// Rows per batch a load inserts.
const LOAD_BATCH: usize = 2000;

/// Collects rows into batches of one kind and sends them on.
struct Batcher {
    out: std::sync::mpsc::SyncSender<Result<Batch, String>>,
    current: Option<Batch>,
    len: usize,
}

impl Batcher {
    fn push(&mut self, row: StateRow) -> Result<(), RowProblem> {
        macro_rules! push {
            ($variant:ident, $row:expr) => {{
                if !matches!(self.current, Some(Batch::$variant(_))) {
                    self.flush()?;
                    self.current = Some(Batch::$variant(Vec::with_capacity(LOAD_BATCH)));
                }
                if let Some(Batch::$variant(rows)) = &mut self.current {
                    rows.push($row);
                }
            }};
        }
        match row {
            StateRow::Customer(r) => push!(Customers, r),
            StateRow::Qualification(r) => push!(Qualifications, r),
            StateRow::QualificationEvent(r) => push!(QualificationEvents, r),
            StateRow::ValidationCode(r) => push!(ValidationCodes, r),
            StateRow::VettingJob(r) => push!(VettingJobs, r),
            StateRow::AuditRecord(mut r) => {
                r.customer_name_lower = r.customer_name.as_deref().map(str::to_lowercase);
                push!(AuditRecords, r)
            }
            StateRow::WebhookRegistration(r) => push!(WebhookRegistrations, r),
            StateRow::WebhookDelivery(r) => push!(WebhookDeliveries, r),
            StateRow::WebhookAttempt(r) => push!(WebhookAttempts, r),
            StateRow::Idempotency(r) => push!(Idempotency, r),
        }
        self.len += 1;
        if self.len >= LOAD_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), RowProblem> {
        self.len = 0;
        if let Some(batch) = self.current.take() {
            self.out
                .send(Ok(batch))
                .map_err(|_| problem("", "the load stopped"))?;
        }
        Ok(())
    }
}

/// Where a checked document is.
#[derive(Debug, Clone)]
pub enum StateFile {
    /// A request's body, spooled (removed when the last clone is dropped).
    Spooled(Arc<tempfile::TempPath>),
    /// A file given at start (`pcq serve --seed`).
    Given(PathBuf),
}

impl StateFile {
    /// Its path.
    pub fn path(&self) -> &Path {
        match self {
            StateFile::Spooled(temp) => temp,
            StateFile::Given(path) => path,
        }
    }
}

/// Whether the store holds no customer (a state document given at start is loaded only then).
#[derive(Clone)]
pub struct HoldsNoCustomer;

impl Op for HoldsNoCustomer {
    type Output = bool;
    const BRIEF_READ: bool = true;

    async fn run(self, tx: &mut Tx<'_>) -> Result<bool, Error> {
        Ok(tx.holds_no_customer().await?)
    }
}

/// Replaces the whole store's state (or one partner's) with a checked document.
#[derive(Clone)]
pub struct LoadState {
    /// Only this partner's data.
    pub partner: Option<Uuid>,
    /// The document.
    pub file: StateFile,
    /// What its check found.
    pub checked: Checked,
}

async fn insert<T: Table>(tx: &mut Tx<'_>, kind: Kind, rows: &[T]) -> Result<u64, Error> {
    let inserted = tx.insert_state_rows(rows).await?;
    if inserted != rows.len() as u64 {
        return Err(ApiFault::invalid_input(format!(
            "The state document is not valid: {}: {} of its rows have the id (or domain) of \
             another partner's row, which this load does not replace",
            kind.key(),
            rows.len() as u64 - inserted
        ))
        .into());
    }
    Ok(inserted)
}

/// Inserts the batches the reader hands over, until it closes the channel (closing it, when
/// dropped, stops the reader if the load stopped early).
async fn insert_batches(
    tx: &mut Tx<'_>,
    batches: std::sync::mpsc::Receiver<Result<Batch, String>>,
) -> Result<StateCounts, Error> {
    let mut loaded = StateCounts::default();
    while let Ok(batch) = batches.recv() {
        let batch = batch.map_err(|e| {
            Error::Internal(format!("the checked document could not be read again: {e}"))
        })?;
        let (kind, n) = match &batch {
            Batch::Customers(r) => (Kind::Customers, insert(tx, Kind::Customers, r).await?),
            Batch::Qualifications(r) => (
                Kind::Qualifications,
                insert(tx, Kind::Qualifications, r).await?,
            ),
            Batch::QualificationEvents(r) => (
                Kind::QualificationEvents,
                insert(tx, Kind::QualificationEvents, r).await?,
            ),
            Batch::ValidationCodes(r) => (
                Kind::ValidationCodes,
                insert(tx, Kind::ValidationCodes, r).await?,
            ),
            Batch::VettingJobs(r) => (Kind::VettingJobs, insert(tx, Kind::VettingJobs, r).await?),
            Batch::AuditRecords(r) => {
                (Kind::AuditRecords, insert(tx, Kind::AuditRecords, r).await?)
            }
            Batch::WebhookRegistrations(r) => (
                Kind::WebhookRegistrations,
                insert(tx, Kind::WebhookRegistrations, r).await?,
            ),
            Batch::WebhookDeliveries(r) => (
                Kind::WebhookDeliveries,
                insert(tx, Kind::WebhookDeliveries, r).await?,
            ),
            Batch::WebhookAttempts(r) => (
                Kind::WebhookAttempts,
                insert(tx, Kind::WebhookAttempts, r).await?,
            ),
            Batch::Idempotency(r) => (
                Kind::IdempotencyRecords,
                insert(tx, Kind::IdempotencyRecords, r).await?,
            ),
        };
        loaded.add(kind, n);
    }
    Ok(loaded)
}

impl Op for LoadState {
    type Output = StateLoaded;

    async fn run(self, tx: &mut Tx<'_>) -> Result<StateLoaded, Error> {
        // For the whole store, a new clock epoch, so that every node takes the document's
        // offset up even if it is smaller than the one it has.
        let policy = self.checked.policy.clone();
        let removed = super::reset::start_over(tx, self.partner, policy).await?;
        if self.partner.is_none() && self.checked.clock_offset != 0 {
            tx.set_clock_offset(self.checked.clock_offset).await?;
        }
        // The file is read again on a thread of its own, which hands over batches through a
        // synchronous channel: this op waits for them without awaiting anything but its
        // statements.
        let (out, batches) = std::sync::mpsc::sync_channel(2);
        let path = self.file.path().to_path_buf();
        let reader = std::thread::Builder::new()
            .name("pcq-state-load".into())
            .spawn(move || {
                let file = match std::fs::File::open(&path) {
                    Ok(file) => file,
                    Err(e) => {
                        let _ = out.send(Err(format!("reading the document again: {e}")));
                        return;
                    }
                };
                let mut batcher = Batcher {
                    out: out.clone(),
                    current: None,
                    len: 0,
                };
                let result = parse(file, &mut |_, _, row| batcher.push(row))
                    .and_then(|_| batcher.flush().map_err(|(_, e)| e));
                if let Err(e) = result {
                    let _ = out.send(Err(e));
                }
            })
            .map_err(|e| Error::Internal(format!("starting the reader of the document: {e}")))?;
        let result = insert_batches(tx, batches).await;
        let _ = reader.join();
        let loaded = result?;
        if loaded != self.checked.counts {
            return Err(Error::Internal(
                "the document read again differs from the checked one".into(),
            ));
        }
        tx.wake_worker();
        Ok(StateLoaded {
            partner: self.partner,
            format: FORMAT.to_owned(),
            loaded,
            removed,
        })
    }
}

/// The sending end of a dump: the document in chunks, through a bounded channel, or the error
/// that cut it short.
pub type DumpSender = tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>;

/// Buffers the document and sends it on in chunks, waiting (synchronously) while the channel
/// is full.
struct ChunkWriter {
    out: DumpSender,
    buffer: Vec<u8>,
}

const CHUNK: usize = 64 * 1024;

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK + 4096),
        ));
        futures_executor::block_on(self.out.send(Ok(chunk)))
            .map_err(|_| std::io::Error::other("the client stopped reading the dump"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Writes the whole store's state (or one partner's) as a document, in one read snapshot.
#[derive(Clone)]
pub struct DumpState {
    /// Only this partner's data.
    pub partner: Option<Uuid>,
    /// Where the document goes.
    pub out: DumpSender,
}

fn io_error(e: std::io::Error) -> Error {
    Error::Internal(format!("writing the dump: {e}"))
}

fn json_error(e: serde_json::Error) -> Error {
    Error::Internal(format!("writing the dump: {e}"))
}

/// Where the next page of a dump starts: after this row's key.
trait DumpKey {
    fn after(&self) -> After;
}

macro_rules! dump_keys {
    ($($row:ty => |$r:ident| $after:expr),* $(,)?) => {
        $(impl DumpKey for $row {
            fn after(&self) -> After {
                let $r = self;
                $after
            }
        })*
    };
}

dump_keys! {
    CustomerState => |r| After::Seq(r.seq),
    QualificationState => |r| After::Pair(r.customer_id.to_string(), r.qualification.clone()),
    QualificationEventState => |r| After::Seq(r.id),
    ValidationCodeState => |r| After::Pair(r.validation_id.clone(), String::new()),
    VettingJobState => |r| After::Pair(r.customer_id.to_string(), r.qualification.clone()),
    AuditRecordState => |r| After::Seq(r.seq),
    WebhookRegistrationState => |r| After::Pair(r.partner_tenant_id.to_string(), String::new()),
    WebhookDeliveryState => |r| After::Seq(r.seq),
    WebhookAttemptState => |r| After::Attempt(r.delivery_id, r.attempt),
    IdempotencyState => |r| After::Idem(
        r.partner_tenant_id,
        r.request_id.clone(),
        r.method.clone(),
        r.route.clone(),
    ),
}

/// Writes one array of the document: `,"key":[` rows `]`, reading pages after the last row's
/// key until a page comes back short.
macro_rules! dump_rows {
    ($tx:expr, $w:expr, $partner:expr, $kind:expr, $read:ident) => {{
        write!($w, ",\n\"{}\":[", $kind.key()).map_err(io_error)?;
        let mut after = After::Start;
        let mut first = true;
        loop {
            let rows = $tx.$read($partner, &after).await?;
            for row in &rows {
                $w.write_all(if first { b"\n" } else { b",\n" })
                    .map_err(io_error)?;
                first = false;
                serde_json::to_writer(&mut $w, row).map_err(json_error)?;
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == DUMP_PAGE => after = last.after(),
                _ => break,
            }
        }
        $w.write_all(b"]").map_err(io_error)?;
    }};
}

impl Op for DumpState {
    type Output = ();

    async fn run(self, tx: &mut Tx<'_>) -> Result<(), Error> {
        let mut w = ChunkWriter {
            out: self.out.clone(),
            buffer: Vec::with_capacity(CHUNK + 4096),
        };
        let p = self.partner;
        write!(w, "{{\"format\":\"{FORMAT}\",\n\"partner\":").map_err(io_error)?;
        serde_json::to_writer(&mut w, &p).map_err(json_error)?;
        if p.is_none() {
            let (offset, policy) = tx.state_settings().await?;
            write!(w, ",\n\"clock\":").map_err(io_error)?;
            serde_json::to_writer(
                &mut w,
                &ClockState {
                    offset_micros: offset,
                },
            )
            .map_err(json_error)?;
            write!(w, ",\n\"vettingPolicy\":").map_err(io_error)?;
            serde_json::to_writer(&mut w, &policy).map_err(json_error)?;
        }
        dump_rows!(tx, w, p, Kind::Customers, state_customers);
        dump_rows!(tx, w, p, Kind::Qualifications, state_qualifications);
        dump_rows!(
            tx,
            w,
            p,
            Kind::QualificationEvents,
            state_qualification_events
        );
        dump_rows!(tx, w, p, Kind::ValidationCodes, state_validation_codes);
        dump_rows!(tx, w, p, Kind::VettingJobs, state_vetting_jobs);
        dump_rows!(tx, w, p, Kind::AuditRecords, state_audit_records);
        dump_rows!(
            tx,
            w,
            p,
            Kind::WebhookRegistrations,
            state_webhook_registrations
        );
        dump_rows!(tx, w, p, Kind::WebhookDeliveries, state_webhook_deliveries);
        dump_rows!(tx, w, p, Kind::WebhookAttempts, state_webhook_attempts);
        dump_rows!(tx, w, p, Kind::IdempotencyRecords, state_idempotency);
        w.write_all(b"\n}\n").map_err(io_error)?;
        w.flush().map_err(io_error)?;
        Ok(())
    }
}

/// Replaces the whole store's state (or one partner's) with a seed file's entries: what a
/// reset does, with this seed instead of the node's.
#[derive(Clone)]
pub struct LoadSeed {
    /// Only this partner's data (the seed holds no other partner's entries).
    pub partner: Option<Uuid>,
    /// The checked seed.
    pub seed: Seed,
    /// The development partner (the seed's `dev`).
    pub dev_partner: Uuid,
    /// When the seed is loaded.
    pub now: Timestamp,
}

impl Op for LoadSeed {
    type Output = StateLoaded;

    async fn run(self, tx: &mut Tx<'_>) -> Result<StateLoaded, Error> {
        let removed = super::reset::start_over(tx, self.partner, None).await?;
        let summary = ApplySeed {
            seed: self.seed,
            dev_partner: self.dev_partner,
            now: self.now,
        }
        .run(tx)
        .await?;
        tx.wake_worker();
        Ok(StateLoaded {
            partner: self.partner,
            format: "seed".to_owned(),
            loaded: StateCounts {
                customers: summary.customers_created as u64,
                validation_codes: summary.codes_created as u64,
                ..StateCounts::default()
            },
            removed,
        })
    }
}
