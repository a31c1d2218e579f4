//! Reading answers: status and JSON, the error envelope, dates.

use pcq_core::fault::Envelope;
use reqwest::{Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Reads a response as (status, JSON body).
pub async fn status_json(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    (status, pcq_test_support::json(resp).await)
}

/// Asserts a response is 200 OK (showing the body when it is not) and reads its JSON as `T`.
pub async fn ok<T: DeserializeOwned>(resp: Response) -> T {
    let status = resp.status();
    if status != StatusCode::OK {
        let body = resp.text().await.unwrap_or_default();
        panic!("status {status}, not 200 OK; body: {body}");
    }
    pcq_test_support::json(resp).await
}

/// Asserts a response is a Partner Center error envelope with this status and code, every key
/// present; returns the envelope.
pub async fn assert_fault(resp: Response, status: u16, code: u64) -> Envelope {
    let (got, body) = status_json(resp).await;
    assert_eq!(got.as_u16(), status, "status; body: {body}");
    assert_eq!(body["code"], code, "code; body: {body}");
    for key in Envelope::KEYS {
        assert!(
            body.get(key).is_some(),
            "envelope key {key} missing: {body}"
        );
    }
    assert!(!body["description"].as_str().unwrap().is_empty());
    serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("not an envelope: {e}: {body}"))
}

/// Replaces a `vettingCreateDate` with a marker after checking its form.
pub fn redact_dates(mut value: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(date)) = map.get("vettingCreateDate") {
                    assert!(
                        date.ends_with('Z')
                            && pcq_core::time::Timestamp::parse_rfc3339(date).is_some(),
                        "vettingCreateDate {date} is RFC 3339 UTC with Z"
                    );
                    map.insert("vettingCreateDate".into(), Value::String("<date>".into()));
                }
                map.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}
