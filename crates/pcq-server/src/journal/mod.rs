//! The request journal: the requests this node served, newest last, in memory.
//!
//! Each node keeps its own journal (recording a request costs a few allocations and a short
//! lock, where a store write per request would cost a GET far more and compete with real writes
//! for SQLite's one writer). It is bounded by a count and by bytes; the oldest entries go first.
//! Entries are numbered in the order their answers finished, from 1 at the node's start, and
//! never renumbered (not by a clear or a reset either), so a reader that asks for the entries after the last id it
//! saw misses none and sees none twice.
//!
//! What is kept has no credentials: no header but the request ids, and the query and bodies
//! cleaned by [`redact`] before they are stored.

pub mod redact;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::{HeaderValue, Method};
use pcq_core::time::Timestamp;
use serde::Serialize;
use uuid::Uuid;

use crate::clock::Clock;
use crate::config::JournalConfig;

/// The most bytes of a request or response body an entry keeps.
pub const BODY_LIMIT: usize = 4096;

/// Most entries one read answers.
pub const MAX_LIMIT: usize = 1000;

/// Entries one read answers when no limit is asked for.
pub const DEFAULT_LIMIT: usize = 100;

/// Who made a request, once its credentials were verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalCaller {
    /// The partner tenant.
    pub partner: Uuid,
    /// The user principal name of a delegated caller.
    pub user: Option<String>,
    /// The application id.
    pub application: Option<String>,
}

/// The first bytes of a body, cleaned of credentials.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    /// At most [`BODY_LIMIT`] bytes.
    pub bytes: Bytes,
    /// Whether the body was longer and was cut.
    pub truncated: bool,
}

impl Captured {
    /// The first bytes of a request body seen in full or in part, cleaned of credentials.
    pub fn new(bytes: Bytes, truncated: bool) -> Self {
        let bytes = match redact::redact_body(&bytes) {
            Some(clean) => Bytes::from(clean),
            None => kept(&bytes),
        };
        Captured { bytes, truncated }
    }

    /// The first bytes of a response body, cleaned of the credentials of its URLs (see
    /// [`redact::redact_response_body`]).
    pub fn response(bytes: Bytes, truncated: bool) -> Self {
        let bytes = match redact::redact_response_body(&bytes) {
            Some(clean) => Bytes::from(clean),
            None => kept(&bytes),
        };
        Captured { bytes, truncated }
    }

    fn size(&self) -> usize {
        self.bytes.len()
    }

    /// The body as the API shows it: JSON when it parses, else text; `None` when empty.
    fn view(&self) -> Option<serde_json::Value> {
        if self.bytes.is_empty() {
            return None;
        }
        if !self.truncated {
            if let Ok(value) = serde_json::from_slice(&self.bytes) {
                return Some(value);
            }
        }
        Some(serde_json::Value::String(
            String::from_utf8_lossy(&self.bytes).into_owned(),
        ))
    }
}

/// A body's bytes in a block of their own size. The bytes as they streamed are a slice of a
/// larger buffer (the connection's read buffer, a response's buffer grown by doubling): kept as
/// they are, an entry would hold the whole buffer for as long as it is kept, and every request
/// would fill fresh, cold memory where it now reuses the buffer the last one freed (measured:
/// about 70 cache lines written cold per GET).
fn kept(bytes: &Bytes) -> Bytes {
    if bytes.is_empty() {
        Bytes::new()
    } else {
        Bytes::copy_from_slice(bytes)
    }
}

/// A request id or correlation id as the answer carried it: a GUID (kept in 16 bytes, as most
/// are) or any other text.
#[derive(Debug, Clone)]
pub enum RequestId {
    /// A GUID written in lower case with hyphens (as pcq generates them).
    Guid(Uuid),
    /// Anything else, as it was.
    Text(Box<str>),
}

impl RequestId {
    /// The id in text.
    pub fn parse(text: &str) -> Self {
        let bytes = text.as_bytes();
        // Only the form that prints back the same: hyphenated, in lower case. Of the bytes of a
        // hyphenated GUID, only the upper-case letters lack the 0x20 bit (one pass, no branch).
        if bytes.len() == 36 && bytes.iter().fold(0x20, |all, b| all & b) == 0x20 {
            if let Ok(guid) = Uuid::try_parse_ascii(bytes) {
                return RequestId::Guid(guid);
            }
        }
        RequestId::Text(text.into())
    }

    fn text(&self) -> String {
        match self {
            RequestId::Guid(guid) => guid.to_string(),
            RequestId::Text(text) => text.to_string(),
        }
    }

    fn size(&self) -> usize {
        match self {
            RequestId::Guid(_) => 0,
            RequestId::Text(text) => text.len(),
        }
    }
}

/// One request and its answer.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its number on this node, given when it is recorded.
    pub id: u64,
    /// When the request arrived, on the system's clock (microseconds since the epoch).
    pub wall_micros: i64,
    /// How far pcq's clock was ahead of the system's then.
    pub offset_micros: i64,
    /// The method.
    pub method: Method,
    /// The path and the query (credentials removed).
    pub target: String,
    /// The answer's status.
    pub status: u16,
    /// From the request's arrival to its answer's head, in microseconds.
    pub duration_micros: u64,
    /// The authenticated caller, when there was one (shared by the entries of one caller).
    pub caller: Option<Arc<JournalCaller>>,
    /// The `MS-RequestId` of the answer.
    pub request_id: Option<RequestId>,
    /// The `MS-CorrelationId` of the answer.
    pub correlation_id: Option<RequestId>,
    /// The request body as read.
    pub request_body: Captured,
    /// The response body as sent.
    pub response_body: Captured,
    /// The `x-pcq-fault` header of the answer: the injected fault that answered.
    pub fault: Option<HeaderValue>,
    /// Whether the answer was the stored answer of an earlier request with the same
    /// `MS-RequestId`.
    pub replayed: bool,
}

impl Entry {
    fn size(&self) -> usize {
        std::mem::size_of::<Entry>()
            + self.target.len()
            + self.request_body.size()
            + self.response_body.size()
            + self.request_id.as_ref().map_or(0, RequestId::size)
            + self.correlation_id.as_ref().map_or(0, RequestId::size)
            + self.fault.as_ref().map_or(0, HeaderValue::len)
    }

    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

/// Which statuses a filter keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// One status.
    Exact(u16),
    /// A class: `4` for 4xx.
    Class(u16),
}

impl StatusFilter {
    /// `404`, or `4xx` (any letter case); `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        if let Some(class) = raw
            .strip_suffix("xx")
            .or_else(|| raw.strip_suffix("XX"))
            .filter(|c| c.len() == 1)
        {
            let class: u16 = class.parse().ok()?;
            return (1..=5)
                .contains(&class)
                .then_some(StatusFilter::Class(class));
        }
        if raw.len() != 3 {
            return None;
        }
        let status: u16 = raw.parse().ok()?;
        (100..=599)
            .contains(&status)
            .then_some(StatusFilter::Exact(status))
    }

    fn keeps(self, status: u16) -> bool {
        match self {
            StatusFilter::Exact(s) => s == status,
            StatusFilter::Class(c) => status / 100 == c,
        }
    }
}

/// What a read of the journal asks for.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this partner's requests.
    pub partner: Option<Uuid>,
    /// Only this method (upper case).
    pub method: Option<String>,
    /// Only paths starting with this.
    pub path_prefix: Option<String>,
    /// Only these statuses.
    pub status: Option<StatusFilter>,
    /// Only entries after this id; the read then goes forward from it.
    pub since: Option<u64>,
    /// Most entries answered.
    pub limit: usize,
}

impl Filter {
    fn keeps(&self, entry: &Entry) -> bool {
        self.partner
            .is_none_or(|p| entry.caller.as_ref().is_some_and(|c| c.partner == p))
            && self
                .method
                .as_deref()
                .is_none_or(|m| entry.method.as_str() == m)
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|prefix| entry.path().starts_with(prefix))
            && self.status.is_none_or(|s| s.keeps(entry.status))
    }
}

/// What a read found.
#[derive(Debug, Clone)]
pub struct Found {
    /// The entries, newest first.
    pub entries: Vec<Entry>,
    /// Whether more entries matched than were answered.
    pub truncated: bool,
    /// The id to read after next time to see only newer entries, missing none.
    pub next_since: u64,
}

struct Ring {
    entries: VecDeque<Entry>,
    bytes: usize,
    last_id: u64,
    /// The clock epoch (sandbox resets) the entries belong to.
    epoch: u64,
}

/// This node's journal.
pub struct Journal {
    enabled: bool,
    max_entries: usize,
    max_bytes: usize,
    clock: Clock,
    ring: Mutex<Ring>,
    /// The last caller recorded, shared by its next entries (callers repeat).
    last_caller: Mutex<Option<Arc<JournalCaller>>>,
}

impl Journal {
    /// A journal as configured, following `clock`'s resets.
    pub fn new(config: &JournalConfig, clock: Clock) -> Self {
        Journal {
            enabled: config.enabled,
            max_entries: config.max_entries,
            max_bytes: config.max_bytes,
            ring: Mutex::new(Ring {
                entries: VecDeque::new(),
                bytes: 0,
                last_id: 0,
                epoch: clock.epoch(),
            }),
            clock,
            last_caller: Mutex::new(None),
        }
    }

    /// The caller of an entry: the last one's when it is the same (then nothing is copied).
    pub fn caller(
        &self,
        partner: Uuid,
        user: Option<&str>,
        application: Option<&str>,
    ) -> Arc<JournalCaller> {
        let mut last = self.last_caller.lock().unwrap_or_else(|p| p.into_inner());
        match &*last {
            Some(shared)
                if shared.partner == partner
                    && shared.user.as_deref() == user
                    && shared.application.as_deref() == application =>
            {
                shared.clone()
            }
            _ => {
                let shared = Arc::new(JournalCaller {
                    partner,
                    user: user.map(str::to_owned),
                    application: application.map(str::to_owned),
                });
                *last = Some(shared.clone());
                shared
            }
        }
    }

    /// Whether requests are recorded.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The clock requests are timed with.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The ring, emptied first when the sandbox was reset (on any node) since it was last
    /// looked at.
    fn ring(&self) -> MutexGuard<'_, Ring> {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let epoch = self.clock.epoch();
        if epoch > ring.epoch {
            ring.epoch = epoch;
            ring.entries.clear();
            ring.bytes = 0;
        }
        ring
    }

    /// Records an entry (its `id` is given here), dropping the oldest beyond the bounds.
    pub fn record(&self, mut entry: Entry) {
        if !self.enabled {
            return;
        }
        let size = entry.size();
        // The entries pushed out are freed after the lock is let go; as a rule there is one.
        let mut first_dropped = None;
        let mut more_dropped = Vec::new();
        {
            let mut ring = self.ring();
            ring.last_id += 1;
            entry.id = ring.last_id;
            ring.entries.push_back(entry);
            ring.bytes += size;
            while ring.entries.len() > self.max_entries
                || (ring.bytes > self.max_bytes && ring.entries.len() > 1)
            {
                let Some(old) = ring.entries.pop_front() else {
                    break;
                };
                ring.bytes -= old.size();
                match first_dropped {
                    None => first_dropped = Some(old),
                    Some(_) => more_dropped.push(old),
                }
            }
        }
        drop(first_dropped);
        drop(more_dropped);
    }

    /// The entries a filter keeps: without `since`, the newest `limit`; with it, the first
    /// `limit` after it; newest first either way.
    pub fn find(&self, filter: &Filter) -> Found {
        let ring = self.ring();
        let last_id = ring.last_id;
        let mut entries = Vec::new();
        let mut truncated = false;
        match filter.since {
            None => {
                for entry in ring.entries.iter().rev().filter(|e| filter.keeps(e)) {
                    if entries.len() == filter.limit {
                        truncated = true;
                        break;
                    }
                    entries.push(entry.clone());
                }
            }
            Some(since) => {
                let start = ring.entries.partition_point(|e| e.id <= since);
                for entry in ring.entries.range(start..).filter(|e| filter.keeps(e)) {
                    if entries.len() == filter.limit {
                        truncated = true;
                        break;
                    }
                    entries.push(entry.clone());
                }
                entries.reverse();
            }
        }
        drop(ring);
        let next_since = match (filter.since, truncated) {
            // More wait after the last one answered.
            (Some(_), true) => entries.first().map_or(last_id, |e| e.id),
            // Everything up to the newest was looked at. (A `since` beyond it names an entry of
            // an earlier run of the node: reading on from the newest picks up this run's.)
            _ => last_id,
        };
        Found {
            entries,
            truncated,
            next_since,
        }
    }

    /// Removes every entry; answers how many.
    pub fn clear(&self) -> usize {
        let mut ring = self.ring();
        let n = ring.entries.len();
        ring.entries.clear();
        ring.bytes = 0;
        n
    }

    /// Removes the entries of one partner's requests; answers how many.
    pub fn remove_partner(&self, partner: Uuid) -> usize {
        let mut ring = self.ring();
        let before = ring.entries.len();
        ring.entries
            .retain(|e| e.caller.as_ref().is_none_or(|c| c.partner != partner));
        ring.bytes = ring.entries.iter().map(|e| e.size()).sum();
        before - ring.entries.len()
    }

    /// Takes up a sandbox reset made on this node: forgets the entries before it and counts the
    /// clock's new epoch as seen, so the reset's own entry and those after it stay.
    pub fn reset(&self) {
        let mut ring = self.ring();
        ring.entries.clear();
        ring.bytes = 0;
    }

    /// How many entries are kept, and the bytes they take (for tests).
    pub fn usage(&self) -> (usize, usize) {
        let ring = self.ring();
        (ring.entries.len(), ring.bytes)
    }
}

/// An entry as `GET /_pcq/admin/requests` shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntryView {
    /// Its number on its node: later requests have larger ones.
    pub id: u64,
    /// The node that served it (its public URL).
    pub node: String,
    /// When the request arrived, on the system's clock (RFC 3339).
    pub time: String,
    /// The same moment on pcq's clock (which `POST /_pcq/admin/clock` moves), as the request's
    /// writes were stamped.
    pub pcq_time: String,
    /// The method.
    pub method: String,
    /// The path and query (credential parameters replaced by `REDACTED`).
    pub path: String,
    /// The answer's status; 0 when no answer was sent (a fault closed the connection, or the
    /// client went away first).
    pub status: u16,
    /// From the request's arrival to its answer, in microseconds.
    pub duration_micros: u64,
    /// The caller's partner tenant (null when no credentials were verified).
    #[schema(value_type = Option<uuid::Uuid>)]
    pub partner: Option<Uuid>,
    /// The caller's user principal name (App+User tokens).
    pub user: Option<String>,
    /// The caller's application id.
    pub application: Option<String>,
    /// The answer's `MS-RequestId`.
    pub request_id: Option<String>,
    /// The answer's `MS-CorrelationId`.
    pub correlation_id: Option<String>,
    /// The request body as pcq read it (JSON when it parses, else text; at most 4 KiB; null
    /// when none was read). Credential fields are replaced by `REDACTED`.
    #[schema(value_type = Option<Value>)]
    pub request_body: Option<serde_json::Value>,
    /// Whether the request body was longer than 4 KiB and was cut (it is then text).
    pub request_body_truncated: bool,
    /// The response body (as the request body).
    #[schema(value_type = Option<Value>)]
    pub response_body: Option<serde_json::Value>,
    /// Whether the response body was longer than 4 KiB and was cut.
    pub response_body_truncated: bool,
    /// The injected fault that answered (the answer's `x-pcq-fault` header), if any.
    pub fault: Option<String>,
    /// Whether the answer was the stored answer of an earlier request with the same
    /// `MS-RequestId` (an idempotent replay).
    pub replayed: bool,
}

fn header_text(value: &Option<HeaderValue>) -> Option<String> {
    value
        .as_ref()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn id_text(value: &Option<RequestId>) -> Option<String> {
    value.as_ref().map(RequestId::text)
}

impl EntryView {
    /// How `entry`, recorded by the node at `node`, is shown.
    pub fn new(entry: &Entry, node: &str) -> Self {
        let wall = Timestamp::from_micros(entry.wall_micros);
        EntryView {
            id: entry.id,
            node: node.to_owned(),
            time: wall.to_rfc3339(),
            pcq_time: wall.plus_micros(entry.offset_micros).to_rfc3339(),
            method: entry.method.as_str().to_owned(),
            path: entry.target.clone(),
            status: entry.status,
            duration_micros: entry.duration_micros,
            partner: entry.caller.as_ref().map(|c| c.partner),
            user: entry.caller.as_ref().and_then(|c| c.user.clone()),
            application: entry.caller.as_ref().and_then(|c| c.application.clone()),
            request_id: id_text(&entry.request_id),
            correlation_id: id_text(&entry.correlation_id),
            request_body: entry.request_body.view(),
            request_body_truncated: entry.request_body.truncated,
            response_body: entry.response_body.view(),
            response_body_truncated: entry.response_body.truncated,
            fault: header_text(&entry.fault),
            replayed: entry.replayed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(max_entries: usize, max_bytes: usize) -> Journal {
        Journal::new(
            &JournalConfig {
                enabled: true,
                max_entries,
                max_bytes,
            },
            Clock::system(),
        )
    }

    fn entry(status: u16, body: &[u8]) -> Entry {
        Entry {
            id: 0,
            wall_micros: 0,
            offset_micros: 0,
            method: Method::GET,
            target: "/v1/customers".to_owned(),
            status,
            duration_micros: 1,
            caller: None,
            request_id: None,
            correlation_id: None,
            request_body: Captured::default(),
            response_body: Captured::response(Bytes::copy_from_slice(body), false),
            fault: None,
            replayed: false,
        }
    }

    fn all(limit: usize) -> Filter {
        Filter {
            limit,
            ..Filter::default()
        }
    }

    #[test]
    fn bounded_by_count_and_bytes_oldest_first() {
        let j = journal(3, 1 << 20);
        for status in 200..205 {
            j.record(entry(status, b""));
        }
        let found = j.find(&all(10));
        let ids: Vec<u64> = found.entries.iter().map(|e| e.id).collect();
        assert_eq!(ids, [5, 4, 3]);
        let j = journal(100, 3 * (std::mem::size_of::<Entry>() + 1000 + 13));
        for _ in 0..10 {
            j.record(entry(200, &[b'x'; 1000]));
        }
        let (n, bytes) = j.usage();
        assert!(
            n <= 3 && bytes <= 3 * (std::mem::size_of::<Entry>() + 1013),
            "{n} {bytes}"
        );
        assert_eq!(j.find(&all(10)).entries[0].id, 10);
    }

    #[test]
    fn since_goes_forward_without_gaps() {
        let j = journal(100, 1 << 20);
        for status in 200..210 {
            j.record(entry(status, b""));
        }
        let filter = |since, limit| Filter {
            since: Some(since),
            limit,
            ..Filter::default()
        };
        let found = j.find(&filter(3, 4));
        let ids: Vec<u64> = found.entries.iter().map(|e| e.id).collect();
        assert_eq!(ids, [7, 6, 5, 4]);
        assert!(found.truncated);
        assert_eq!(found.next_since, 7);
        let found = j.find(&filter(7, 4));
        assert_eq!(found.entries.len(), 3);
        assert!(!found.truncated);
        assert_eq!(found.next_since, 10);
        assert!(j.find(&filter(10, 4)).entries.is_empty());
        // Without since: the newest.
        let found = j.find(&all(2));
        let ids: Vec<u64> = found.entries.iter().map(|e| e.id).collect();
        assert_eq!(
            (ids, found.truncated, found.next_since),
            (vec![10, 9], true, 10)
        );
        // Ids go on after a clear.
        j.clear();
        j.record(entry(200, b""));
        assert_eq!(j.find(&all(5)).entries[0].id, 11);
    }

    #[test]
    fn status_filters() {
        assert_eq!(StatusFilter::parse("404"), Some(StatusFilter::Exact(404)));
        assert_eq!(StatusFilter::parse("4xx"), Some(StatusFilter::Class(4)));
        assert_eq!(StatusFilter::parse("5XX"), Some(StatusFilter::Class(5)));
        for bad in ["", "4x", "6xx", "99", "1000", "abc", "0xx", "-12"] {
            assert_eq!(StatusFilter::parse(bad), None, "{bad}");
        }
        assert!(StatusFilter::Class(4).keeps(429));
        assert!(!StatusFilter::Class(4).keeps(500));
    }

    #[test]
    fn ids_print_back_as_they_came() {
        for id in [
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "0F8FAD5B-D9CB-469F-A165-70867728950E",
            "{0f8fad5b-d9cb-469f-a165-70867728950e}",
            "0f8fad5bd9cb469fa16570867728950e",
            "my-request-1",
        ] {
            let parsed = RequestId::parse(id);
            assert_eq!(parsed.text(), id);
        }
        assert!(matches!(
            RequestId::parse("0f8fad5b-d9cb-469f-a165-70867728950e"),
            RequestId::Guid(_)
        ));
    }

    #[test]
    fn callers_are_shared() {
        let j = journal(10, 1 << 20);
        let caller = |user: &str| j.caller(Uuid::nil(), Some(user), None);
        let a = caller("a");
        assert!(Arc::ptr_eq(&a, &caller("a")));
        let b = caller("b");
        assert_eq!(b.user.as_deref(), Some("b"));
        assert!(!Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn cut_bodies_show_as_text() {
        let whole = Captured::new(Bytes::from_static(b"{\"a\": 1}"), false);
        assert_eq!(whole.view().unwrap()["a"], 1);
        let cut = Captured::new(Bytes::from_static(b"{\"a\": 1}"), true);
        assert_eq!(cut.view().unwrap(), "{\"a\": 1}");
        let text = Captured::new(Bytes::from_static(b"plain"), false);
        assert_eq!(text.view().unwrap(), "plain");
        assert!(Captured::default().view().is_none());
    }
}
