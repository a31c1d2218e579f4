//! Seek-based paging, as Partner Center collections page: a `size` parameter and a
//! continuation token in the `MS-ContinuationToken` header, offered in `links.next`.
//!
//! A continuation token is opaque and bound to whoever listed: the position after the last item
//! of a page, sealed with AES-256-GCM under a random nonce, with the list and the caller's tenant
//! as associated data. A client learns nothing from it (positions are sequences shared by all
//! partners, which would show how much others created), cannot forge or alter one, and cannot
//! use one issued to another tenant or for another list. The key is kept in the store, created
//! by the first node that needs it, so every node sharing a database accepts the tokens of the
//! others.
//!
//! A page ends after `size` items, or earlier once its items' JSON would pass
//! `paging.max_page_bytes`; the token continues from the last item it holds.

use std::io;

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pcq_core::ApiFault;
use pcq_core::wire::{Attributes, Collection, Link, LinkHeader, Links};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use uuid::Uuid;

use super::extract::QueryParams;
use crate::config::PagingConfig;

/// Header carrying a continuation token.
pub const CONTINUATION_HEADER: &str = "MS-ContinuationToken";

/// The first byte of every token: the format, so that a later one can be told apart.
const TOKEN_VERSION: u8 = 1;

/// Length of the stored key, in bytes (AES-256).
const KEY_LEN: usize = 32;

/// Longest token read; longer ones are refused before decoding.
const MAX_TOKEN_CHARS: usize = 1024;

/// The continuation token header of a paged list, as an OpenAPI parameter
/// (`params(.., ContinuationToken)`); [`Lister::position`] reads it.
#[derive(utoipa::IntoParams)]
#[into_params(names("MS-ContinuationToken"), parameter_in = Header)]
pub struct ContinuationToken(
    /// Continuation token from the previous page
    pub Option<String>,
);

/// The lists that hand out continuation tokens; a token is good for the list that issued it
/// only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// `GET /v1/customers`.
    Customers,
    /// `GET /v1/auditrecords`.
    AuditRecords,
    /// `GET /_pcq/review/queue`.
    ReviewQueue,
}

impl List {
    fn name(self) -> &'static str {
        match self {
            List::Customers => "customers",
            List::AuditRecords => "auditrecords",
            List::ReviewQueue => "reviewqueue",
        }
    }
}

/// Seals and opens continuation tokens, and cuts pages; one per node, with the store's key.
pub struct Pager {
    key: LessSafeKey,
    rng: SystemRandom,
    max_page_bytes: usize,
}

impl std::fmt::Debug for Pager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pager")
            .field("max_page_bytes", &self.max_page_bytes)
            .finish_non_exhaustive()
    }
}

impl Pager {
    /// A new random key, in the form the store keeps it (base64).
    pub fn generate_key() -> anyhow::Result<String> {
        let mut key = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
        Ok(URL_SAFE_NO_PAD.encode(key))
    }

    /// A pager sealing with `stored_key` (as [`Pager::generate_key`] makes it), cutting pages
    /// at `paging.max_page_bytes`.
    pub fn new(stored_key: &str, paging: &PagingConfig) -> anyhow::Result<Pager> {
        let bytes = URL_SAFE_NO_PAD
            .decode(stored_key.trim())
            .ok()
            .filter(|k| k.len() == KEY_LEN)
            .ok_or_else(|| anyhow::anyhow!("the stored continuation token key is not valid"))?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| anyhow::anyhow!("the stored continuation token key is not valid"))?;
        Ok(Pager {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
            max_page_bytes: paging.max_page_bytes,
        })
    }

    /// Paging of `list` for a caller of `tenant`: its tokens are good for that list and tenant
    /// only.
    pub fn lister(&self, list: List, tenant: Uuid) -> Lister<'_> {
        Lister {
            pager: self,
            list,
            tenant,
        }
    }
}

/// The associated data of a token: what it is good for.
fn scope(list: List, tenant: Uuid) -> Vec<u8> {
    let mut aad = Vec::with_capacity(48);
    aad.extend_from_slice(b"pcq continuation\0");
    aad.push(TOKEN_VERSION);
    aad.extend_from_slice(list.name().as_bytes());
    aad.push(0);
    aad.extend_from_slice(tenant.as_bytes());
    aad
}

/// Paging of one list for one caller.
pub struct Lister<'a> {
    pager: &'a Pager,
    list: List,
    tenant: Uuid,
}

impl Lister<'_> {
    /// The token for `position`.
    pub fn seal(&self, position: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        self.pager
            .rng
            .fill(&mut nonce)
            .expect("the system random generator works");
        let mut sealed = position.as_bytes().to_vec();
        self.pager
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(scope(self.list, self.tenant)),
                &mut sealed,
            )
            .expect("positions are far shorter than AES-GCM's limit");
        let mut token = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        token.push(TOKEN_VERSION);
        token.extend_from_slice(&nonce);
        token.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(token)
    }

    /// The position `token` stands for, if this list issued it to this tenant, unaltered.
    pub fn open(&self, token: &str) -> Option<String> {
        if token.len() > MAX_TOKEN_CHARS {
            return None;
        }
        let mut bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() < 1 + NONCE_LEN + AES_256_GCM.tag_len() || bytes[0] != TOKEN_VERSION {
            return None;
        }
        let nonce = Nonce::try_assume_unique_for_key(&bytes[1..=NONCE_LEN]).ok()?;
        let plain = self
            .pager
            .key
            .open_in_place(
                nonce,
                Aad::from(scope(self.list, self.tenant)),
                &mut bytes[1 + NONCE_LEN..],
            )
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }

    /// The position a request's continuation token stands for; `None` for the first page.
    pub fn position(&self, headers: &HeaderMap) -> Result<Option<String>, ApiFault> {
        let Some(value) = headers.get(CONTINUATION_HEADER) else {
            return Ok(None);
        };
        let token = value
            .to_str()
            .map_err(|_| ApiFault::invalid_continuation_token())?
            .trim();
        if token.is_empty() {
            return Ok(None);
        }
        self.open(token)
            .map(Some)
            .ok_or_else(ApiFault::invalid_continuation_token)
    }

    /// A numeric position (an insertion sequence) from a request's continuation token; 0 for
    /// the first page.
    pub fn seq_position(&self, headers: &HeaderMap) -> Result<i64, ApiFault> {
        match self.position(headers)? {
            None => Ok(0),
            Some(p) => p
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(ApiFault::invalid_continuation_token),
        }
    }

    /// A page of rows read with [`limit`]: the first `size` rendered, fewer when their JSON
    /// would pass `paging.max_page_bytes` (one at least), and `next` pointing after the last of
    /// them (by its `position`) when rows are left.
    pub fn page<R, T: Serialize>(
        &self,
        rows: Vec<R>,
        size: u32,
        self_uri: String,
        position: impl Fn(&R) -> String,
        mut render: impl FnMut(&R) -> T,
    ) -> Collection<T> {
        let mut items = Vec::with_capacity(rows.len().min(size as usize));
        let mut bytes = 0usize;
        for row in rows.iter().take(size as usize) {
            let item = render(row);
            let item_bytes = json_len(&item);
            if !items.is_empty() && bytes.saturating_add(item_bytes) > self.pager.max_page_bytes {
                break;
            }
            bytes = bytes.saturating_add(item_bytes);
            items.push(item);
        }
        let next = (rows.len() > items.len())
            .then(|| items.len().checked_sub(1).map(|last| position(&rows[last])))
            .flatten();
        collection(items, self_uri, next.map(|p| self.seal(&p)))
    }
}

/// The length of a value's JSON, without writing it anywhere.
fn json_len<T: Serialize>(value: &T) -> usize {
    struct Count(usize);
    impl io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Items are plain data; should one fail to encode, the answer itself fails later.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// The row limit that reads a page of `size` and tells whether another follows: one more.
pub fn limit(size: u32) -> i64 {
    i64::from(size) + 1
}

/// The `size` parameter, checked against the configured limits.
pub fn page_size(query: &QueryParams, paging: &PagingConfig) -> Result<u32, ApiFault> {
    match query.get("size") {
        None => Ok(paging.default_size),
        Some(raw) => raw
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=paging.max_size).contains(n))
            .ok_or_else(|| {
                ApiFault::invalid_input(format!(
                    "The size '{}' is not valid; use an integer from 1 to {}.",
                    raw.chars().take(40).collect::<String>(),
                    paging.max_size
                ))
                .with_param("field", "size")
            }),
    }
}

/// The `self` URI of a page: the path and the query as received, without `seekOperation`.
pub fn self_uri(path: &str, raw_query: &str) -> String {
    let kept: Vec<&str> = raw_query
        .split('&')
        .filter(|p| !p.is_empty() && !p.to_ascii_lowercase().starts_with("seekoperation="))
        .collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// A page in the Collection shape: `next` (and `continuationToken`) when a `continuation`
/// token is given.
pub fn collection<T>(
    items: Vec<T>,
    self_uri: String,
    continuation: Option<String>,
) -> Collection<T> {
    let separator = if self_uri.contains('?') { '&' } else { '?' };
    Collection {
        total_count: items.len() as u64,
        items,
        links: Links {
            next: continuation.as_ref().map(|token| Link {
                uri: format!("{self_uri}{separator}seekOperation=Next"),
                method: "GET".to_owned(),
                headers: vec![LinkHeader {
                    key: CONTINUATION_HEADER.to_owned(),
                    value: token.clone(),
                }],
            }),
            self_link: Link::get(self_uri),
        },
        continuation_token: continuation,
        attributes: Attributes::of("Collection"),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn pager(max_page_bytes: usize) -> Pager {
        let paging = PagingConfig {
            default_size: 100,
            max_size: 1000,
            max_page_bytes,
        };
        Pager::new(&Pager::generate_key().unwrap(), &paging).unwrap()
    }

    fn headers(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTINUATION_HEADER, token.parse().unwrap());
        h
    }

    #[test]
    fn self_uris_drop_the_seek_operation() {
        assert_eq!(self_uri("/v1/x", ""), "/v1/x");
        assert_eq!(
            self_uri("/v1/x", "size=3&seekOperation=Next"),
            "/v1/x?size=3"
        );
        assert_eq!(self_uri("/v1/x", "SeekOperation=Next"), "/v1/x");
    }

    #[test]
    fn tokens_round_trip_and_reject_junk() {
        let pager = pager(1 << 20);
        let lister = pager.lister(List::Customers, Uuid::new_v4());
        assert_eq!(
            lister.seq_position(&headers(&lister.seal("42"))).unwrap(),
            42
        );
        assert_eq!(lister.seq_position(&HeaderMap::new()).unwrap(), 0);
        let old_format = URL_SAFE_NO_PAD.encode("pcq1:42");
        for junk in ["abc", "cGNxMTotMQ", "!!!", old_format.as_str()] {
            assert!(lister.seq_position(&headers(junk)).is_err(), "{junk}");
        }
        // A sealed position that is not a sequence.
        assert!(lister.seq_position(&headers(&lister.seal("-1"))).is_err());
    }

    #[test]
    fn tokens_are_good_for_one_key_only() {
        let tenant = Uuid::new_v4();
        let (one, other) = (pager(1 << 20), pager(1 << 20));
        let token = one.lister(List::Customers, tenant).seal("7");
        assert_eq!(other.lister(List::Customers, tenant).open(&token), None);
    }

    #[test]
    fn pages_are_cut_by_bytes_and_continue_after_the_last_item() {
        let pager = pager(100);
        let lister = pager.lister(List::Customers, Uuid::new_v4());
        // Items of 42 bytes of JSON each (40 characters and the quotes): two fit in 100.
        let rows: Vec<u32> = (1..=5).collect();
        let page = lister.page(rows.clone(), 4, "/x".into(), u32::to_string, |r| {
            format!("{r:040}")
        });
        assert_eq!(page.items.len(), 2);
        let token = page.continuation_token.unwrap();
        assert_eq!(lister.open(&token).as_deref(), Some("2"));
        // One item is always given, however large.
        let page = lister.page(rows.clone(), 4, "/x".into(), u32::to_string, |r| {
            format!("{r:0200}")
        });
        assert_eq!(page.items.len(), 1);
        assert_eq!(
            lister.open(&page.continuation_token.unwrap()).as_deref(),
            Some("1")
        );
        // Small items are cut by count as before; the last page has no token.
        let page = lister.page(rows.clone(), 4, "/x".into(), u32::to_string, |r| *r);
        assert_eq!(page.items, [1, 2, 3, 4]);
        assert_eq!(
            lister.open(&page.continuation_token.unwrap()).as_deref(),
            Some("4")
        );
        let page = lister.page(rows, 5, "/x".into(), u32::to_string, |r| *r);
        assert_eq!(page.items.len(), 5);
        assert!(page.continuation_token.is_none() && page.links.next.is_none());
    }

    fn list() -> impl Strategy<Value = List> {
        prop::sample::select(&[List::Customers, List::AuditRecords, List::ReviewQueue][..])
    }

    proptest! {
        #[test]
        fn tokens_open_only_for_the_scope_that_sealed_them(
            position in "[0-9|a-zA-Z-]{0,80}",
            sealed_for in list(),
            opened_for in list(),
            tenants in any::<[u128; 2]>(),
            same_tenant in any::<bool>(),
        ) {
            let pager = pager(1 << 20);
            let issuer = Uuid::from_u128(tenants[0]);
            let reader = if same_tenant { issuer } else { Uuid::from_u128(tenants[1]) };
            let token = pager.lister(sealed_for, issuer).seal(&position);
            let opened = pager.lister(opened_for, reader).open(&token);
            if sealed_for == opened_for && issuer == reader {
                prop_assert_eq!(opened, Some(position));
            } else {
                prop_assert_eq!(opened, None);
            }
        }

        #[test]
        fn altered_tokens_are_refused(
            position in "[0-9]{1,19}",
            flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let pager = pager(1 << 20);
            let lister = pager.lister(List::AuditRecords, Uuid::new_v4());
            let token = lister.seal(&position);
            let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
            if truncate {
                bytes.truncate(cut.index(bytes.len()));
            } else {
                for (at, mask) in &flips {
                    let at = at.index(bytes.len());
                    bytes[at] ^= mask;
                }
            }
            let altered = URL_SAFE_NO_PAD.encode(&bytes);
            // An empty header asks for the first page.
            prop_assume!(altered != token && !altered.is_empty());
            prop_assert_eq!(lister.open(&altered), None);
            prop_assert!(lister.position(&headers(&altered)).is_err());
        }
    }
}
