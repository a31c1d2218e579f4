//! The token providers against a token endpoint served by the test, and the client's one
//! refresh on a 401, against an API double that accepts only the latest token it issued.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use pcq_client::{ClientCredentials, Error, PartnerClient, RefreshToken, RetryPolicy};
use serde_json::json;

#[derive(Default)]
struct Seen {
    /// The form of every token request.
    token_forms: Vec<HashMap<String, String>>,
    /// The lifetime the endpoint gives its tokens.
    expires_in: u64,
    /// Whether the endpoint refuses the client.
    refuse: bool,
    /// The token the API accepts; `None`: the latest issued.
    accepted: Option<String>,
    /// Every API call: its bearer token, `MS-RequestId` and the status answered.
    calls: Vec<(String, String, u16)>,
}

type Shared = Arc<Mutex<Seen>>;

/// The fields of a form body (`application/x-www-form-urlencoded`), decoded.
fn form_fields(body: &str) -> HashMap<String, String> {
    let url = reqwest::Url::parse(&format!("http://form.invalid/?{body}")).unwrap();
    url.query_pairs().into_owned().collect()
}

async fn token(State(seen): State<Shared>, body: String) -> Response {
    let form = form_fields(&body);
    let mut seen = seen.lock().unwrap();
    if seen.refuse {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})),
        )
            .into_response();
    }
    seen.token_forms.push(form);
    let n = seen.token_forms.len();
    Json(json!({
        "token_type": "Bearer",
        "access_token": format!("tok-{n}"),
        "expires_in": seen.expires_in,
        "refresh_token": format!("rt-{n}"),
    }))
    .into_response()
}

async fn validations(State(seen): State<Shared>, headers: HeaderMap) -> Response {
    let mut seen = seen.lock().unwrap();
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let request_id = headers
        .get("ms-requestid")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let latest = format!("tok-{}", seen.token_forms.len());
    let accepted = seen.accepted.clone().unwrap_or(latest);
    let status = if bearer == accepted { 200 } else { 401 };
    seen.calls.push((bearer, request_id, status));
    if status == 200 {
        Json(json!([])).into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Bearer")],
            Json(
                json!({"code": 400, "description": "Access denied.", "errorName": "AccessDenied"}),
            ),
        )
            .into_response()
    }
}

/// Serves the token endpoint at `/tenant/oauth2/v2.0/token` and the API; answers its URL.
async fn serve(seen: Shared) -> String {
    let app = Router::new()
        .route("/tenant/oauth2/v2.0/token", post(token))
        .route("/v1/customers/all/validations", get(validations))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn seen(expires_in: u64) -> Shared {
    Arc::new(Mutex::new(Seen {
        expires_in,
        ..Seen::default()
    }))
}

fn client(url: &str, provider: impl pcq_client::TokenProvider) -> PartnerClient {
    PartnerClient::builder(url)
        .token_provider(provider)
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn client_credentials_are_posted_once_and_the_token_cached() {
    let seen = seen(3600);
    let url = serve(seen.clone()).await;
    let provider = ClientCredentials::new("tenant", "app-id", "s3cret")
        .token_endpoint(format!("{url}/tenant/oauth2/v2.0/token"));
    let client = client(&url, provider);

    for _ in 0..3 {
        client.validation_codes().list().await.unwrap();
    }
    // Calls at the same time wait for the same token.
    let together: Vec<_> = (0..8)
        .map(|_| client.validation_codes().list().send())
        .collect();
    for r in futures_util::future::join_all(together).await {
        r.unwrap();
    }

    let seen = seen.lock().unwrap();
    assert_eq!(seen.token_forms.len(), 1, "one token request for 11 calls");
    let form = &seen.token_forms[0];
    let expected: HashMap<String, String> = [
        ("grant_type", "client_credentials"),
        ("client_id", "app-id"),
        ("client_secret", "s3cret"),
        ("scope", "https://api.partnercenter.microsoft.com/.default"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(form, &expected);
    assert_eq!(seen.calls.len(), 11);
    assert!(seen.calls.iter().all(|(t, _, s)| t == "tok-1" && *s == 200));
}

#[tokio::test]
async fn a_token_about_to_expire_is_not_used() {
    // A token of no lifetime is renewed before every call.
    let seen = seen(0);
    let url = serve(seen.clone()).await;
    let provider = ClientCredentials::new("tenant", "app-id", "s3cret")
        .token_endpoint(format!("{url}/tenant/oauth2/v2.0/token"));
    let client = client(&url, provider);
    for _ in 0..3 {
        client.validation_codes().list().await.unwrap();
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.token_forms.len(), 3);
    let used: Vec<_> = seen.calls.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(used, ["tok-1", "tok-2", "tok-3"]);
}

#[tokio::test]
async fn a_401_gets_one_fresh_token_and_the_call_repeated() {
    let seen = seen(3600);
    let url = serve(seen.clone()).await;
    let provider = RefreshToken::new("public-app", "rt-0")
        .token_endpoint(format!("{url}/tenant/oauth2/v2.0/token"));
    let provider = Arc::new(provider);
    let client = client(&url, provider.clone());

    client.validation_codes().list().await.unwrap();
    // The service stops accepting tok-1 (revoked): the next call is refused once, the client
    // gets tok-2 and repeats the call, with the same request id.
    seen.lock().unwrap().accepted = Some("tok-2".into());
    client
        .validation_codes()
        .list()
        .with_request_id("fixed-id")
        .await
        .unwrap();

    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.token_forms.len(), 2);
        let first = &seen.token_forms[0];
        assert_eq!(first["grant_type"], "refresh_token");
        assert_eq!(first["client_id"], "public-app");
        assert_eq!(first["refresh_token"], "rt-0");
        assert_eq!(
            first["scope"],
            "https://api.partnercenter.microsoft.com/.default"
        );
        assert!(!first.contains_key("client_secret"));
        // The refresh token the endpoint sent back replaced the first one.
        assert_eq!(seen.token_forms[1]["refresh_token"], "rt-1");
        let last_two: Vec<_> = seen.calls[1..]
            .iter()
            .map(|(t, id, s)| (t.as_str(), id.as_str(), *s))
            .collect();
        assert_eq!(
            last_two,
            [("tok-1", "fixed-id", 401), ("tok-2", "fixed-id", 200)]
        );
    }
    assert_eq!(provider.current_refresh_token(), "rt-2");

    // A token that is refused again is not refreshed a second time: the 401 is the answer.
    seen.lock().unwrap().accepted = Some("never".into());
    let err = client.validation_codes().list().await.unwrap_err();
    assert_eq!(err.status(), Some(reqwest::StatusCode::UNAUTHORIZED));
    assert_eq!(err.fault().unwrap().description, "Access denied.");
    assert_eq!(seen.lock().unwrap().token_forms.len(), 3);
    assert_eq!(seen.lock().unwrap().calls.len(), 5);
}

#[tokio::test]
async fn the_secret_of_a_confidential_app_is_sent_with_the_refresh_token() {
    let seen = seen(3600);
    let url = serve(seen.clone()).await;
    let provider = RefreshToken::new("web-app", "rt-0")
        .client_secret("s3cret")
        .scope("https://api.partnercenter.microsoft.com/user_impersonation")
        .token_endpoint(format!("{url}/tenant/oauth2/v2.0/token"));
    client(&url, provider)
        .validation_codes()
        .list()
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.token_forms[0]["client_secret"], "s3cret");
    assert_eq!(
        seen.token_forms[0]["scope"],
        "https://api.partnercenter.microsoft.com/user_impersonation"
    );
}

#[tokio::test]
async fn a_refusal_of_the_token_endpoint_is_a_token_error_that_says_why() {
    let seen = seen(3600);
    seen.lock().unwrap().refuse = true;
    let url = serve(seen.clone()).await;
    let provider = ClientCredentials::new("tenant", "app-id", "wrong")
        .token_endpoint(format!("{url}/tenant/oauth2/v2.0/token"));
    let err = client(&url, provider)
        .validation_codes()
        .list()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Token { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("401") && text.contains("invalid_client") && text.contains("AADSTS7000215"),
        "{text}"
    );
    assert!(
        seen.lock().unwrap().calls.is_empty(),
        "no API call without a token"
    );
}
