//! HTTP calls of the tests.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// An HTTP client for the tests (no proxy; rustls with ring for `https` URLs).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// One request with a bearer token: the status and the JSON body (`null` if it is not JSON).
pub async fn call(
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client().request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A JSON answer as `T`; fails naming the type and showing the body when it is not one.
pub async fn json<T: DeserializeOwned>(resp: reqwest::Response) -> T {
    let text = resp.text().await.unwrap();
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not a {}: {e}: {text}", std::any::type_name::<T>()))
}

/// Every customer the token's partner has, following the continuation tokens.
pub async fn list_customers(http: &reqwest::Client, url: &str, token: &str) -> Vec<Value> {
    let mut listed = Vec::new();
    let mut continuation: Option<String> = None;
    loop {
        let mut req = http
            .get(format!("{url}/v1/customers?size=1000"))
            .bearer_auth(token);
        if let Some(c) = &continuation {
            req = req.header("MS-ContinuationToken", c);
        }
        let page: Value = req.send().await.unwrap().json().await.unwrap();
        listed.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["continuationToken"].as_str() {
            Some(c) => continuation = Some(c.to_owned()),
            None => return listed,
        }
    }
}

/// How many customers the token's partner has, following the continuation tokens.
pub async fn count_customers(http: &reqwest::Client, url: &str, token: &str) -> usize {
    list_customers(http, url, token).await.len()
}
