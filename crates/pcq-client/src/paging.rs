//! Paged lists: one page at a time, or every item as a stream that follows the continuation
//! tokens.

use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use pcq_core::wire::Collection;
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;

use crate::client::{Decoder, Operation};
use crate::{Error, PartnerClient};

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// Its items.
    pub items: Vec<T>,
    /// The token of the next page; `None` on the last page.
    pub continuation_token: Option<String>,
}

/// A paged list (customers, audit records, the review queue), not read yet.
///
/// [`Pager::page`] reads one page; [`Pager::stream`] reads every item, page after page, with one
/// correlation id for all its calls.
#[must_use = "a list is read by .page(..) or .stream()"]
pub struct Pager<T> {
    client: PartnerClient,
    url: Url,
    page_size: Option<u32>,
    _items: std::marker::PhantomData<fn() -> T>,
}

impl<T> Clone for Pager<T> {
    fn clone(&self) -> Self {
        Pager {
            client: self.client.clone(),
            url: self.url.clone(),
            page_size: self.page_size,
            _items: std::marker::PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Pager<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pager")
            .field("url", &self.url.as_str())
            .field("page_size", &self.page_size)
            .finish()
    }
}

impl<T: DeserializeOwned + Send + 'static> Pager<T> {
    /// A list at `url` (with its filters in the query).
    pub(crate) fn new(client: PartnerClient, url: Url) -> Self {
        Pager {
            client,
            url,
            page_size: None,
            _items: std::marker::PhantomData,
        }
    }

    /// How many items a page holds at most (the service's default when not set; pcq allows 1
    /// to 1000).
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = Some(size);
        self
    }

    /// The page after `continuation_token`, or the first one with `None`.
    pub fn page(&self, continuation_token: Option<String>) -> Operation<Page<T>> {
        let mut url = self.url.clone();
        if let Some(size) = self.page_size {
            url.query_pairs_mut().append_pair("size", &size.to_string());
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        Operation::new(
            self.client.clone(),
            Method::GET,
            url,
            Decoder::Json(|body| {
                let collection: Collection<T> = serde_json::from_slice(body)?;
                Ok(Page {
                    items: collection.items,
                    continuation_token: collection.continuation_token,
                })
            }),
        )
        .continuation(continuation_token)
    }

    /// Every item of the list, reading the next page when the last one is used up. A failed
    /// page ends the stream with its error (after the client's retries).
    pub fn stream(self) -> BoxStream<'static, Result<T, Error>> {
        let correlation_id = uuid::Uuid::new_v4().to_string();
        // The state: `Some(token)` for the page to read next (`Some(None)`: the first), `None`
        // once the last page was read.
        stream::try_unfold(Some(None::<String>), move |next| {
            let pager = self.clone();
            let correlation_id = correlation_id.clone();
            async move {
                let Some(token) = next else {
                    return Ok(None);
                };
                let mut call = pager.page(token);
                if pager.client.fixed_correlation_id().is_none() {
                    call = call.with_correlation_id(correlation_id);
                }
                let page = call.await?;
                Ok(Some((page.items, page.continuation_token.map(Some))))
            }
        })
        .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    /// Every item of the list, collected.
    pub async fn collect_all(self) -> Result<Vec<T>, Error> {
        self.stream().try_collect().await
    }
}
