//! Property tests of the HTTP boundary: arbitrary requests on every route of the OpenAPI
//! document (and on paths no route has) never get a 5xx, and every error is the Partner Center
//! envelope; the request-id headers and the `Authorization` header take any bytes without
//! panicking.
//!
//! Requests go to the router in process (`tower::ServiceExt::oneshot`), so header values and
//! paths reach pcq exactly as generated, without an HTTP client tidying them first.

use std::sync::OnceLock;

use crate::common::{AUDIENCE, TestApp, urlencode};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use pcq_server::auth::{Authenticator, DevIssuer, TokenSpec};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

/// Cases per property (`PROPTEST_CASES` overrides it, as for every property test).
fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A node with some data, its router, and tokens of every kind.
struct Fixture {
    /// The node (stopped first when the fixture goes).
    _app: TestApp,
    runtime: tokio::runtime::Runtime,
    router: Router,
    /// Route templates of the OpenAPI document: (method, path).
    operations: Vec<(Method, String)>,
    customer: Uuid,
    /// Tokens: partner App+User, partner App-only, admin, reviewer.
    tokens: [String; 4],
}

impl Fixture {
    /// A node with a customer holding Education and a validation code, on a runtime of its own.
    fn new() -> Fixture {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let (app, customer, tokens) = runtime.block_on(async {
            let app = TestApp::spawn().await;
            let partner = app.dev_partner();
            let customer = app.create_customer(&partner, "fuzz.example.edu").await;
            let resp = app
                .post_qualification(&partner, customer, &json!({"qualification": "Education"}))
                .await;
            assert_eq!(resp.status().as_u16(), 201);
            app.issue_code(&partner, 1_000).await;
            let user = app.token(TokenSpec {
                wids: vec!["88d8e3e3-8f55-4a1e-953a-9b9898b8876b".to_owned()],
                ..TestApp::spec(partner.tenant)
            });
            let tokens = [
                user,
                partner.app.clone(),
                app.admin_token(),
                app.reviewer_token(),
            ];
            (app, customer, tokens)
        });
        let router = pcq_server::http::router(app.state.clone());
        let document = pcq_server::http::openapi();
        let mut operations = Vec::new();
        for (path, item) in &document.paths.paths {
            for (method, present) in [
                (Method::GET, item.get.is_some()),
                (Method::POST, item.post.is_some()),
                (Method::PUT, item.put.is_some()),
                (Method::DELETE, item.delete.is_some()),
                (Method::PATCH, item.patch.is_some()),
            ] {
                if present {
                    operations.push((method, path.clone()));
                }
            }
        }
        operations.push((Method::GET, "/_pcq/openapi.json".to_owned()));
        assert!(operations.len() > 20, "the document lists the routes");
        Fixture {
            _app: app,
            runtime,
            router,
            operations,
            customer,
            tokens,
        }
    }
}

/// A generated request, before it is fitted to a route.
#[derive(Debug, Clone)]
struct Generated {
    operation: usize,
    /// Another method than the route's, sometimes.
    method: Option<Method>,
    /// Replacement values for the path parameters (cycled).
    segments: Vec<Segment>,
    /// Extra path segments appended (for paths no route has).
    extra: Option<String>,
    query: Query,
    authorization: Authorization,
    headers: Vec<(&'static str, Vec<u8>)>,
    content_type: Option<Vec<u8>>,
    body: BodyChoice,
}

#[derive(Debug, Clone)]
enum Segment {
    /// The fixture's customer, as is.
    Customer,
    /// The fixture's customer in braces and upper case.
    BracedCustomer,
    /// A GUID nobody has.
    Unknown,
    /// A known word (`all`, qualification names, …).
    Word(&'static str),
    /// Anything, percent-encoded.
    Text(String),
}

#[derive(Debug, Clone)]
enum Query {
    None,
    /// Pairs (known names and others), percent-encoded.
    Pairs(Vec<(String, String)>),
    /// Raw text made of URI characters, percent signs included (`%zz`, `%FF`).
    Raw(String),
}

#[derive(Debug, Clone)]
enum Authorization {
    None,
    /// The token the route calls for (admin, reviewer or the partner's App+User token).
    Fitting,
    /// One of the fixture's tokens.
    Token(usize),
    /// Any bytes.
    Raw(Vec<u8>),
}

const WORDS: [&str; 9] = [
    "all",
    "Education",
    "GovernmentCommunityCloud",
    "StateOwnedEntity",
    "None",
    "validations",
    "..",
    "%2e%2e",
    "qualifications",
];

const QUERY_NAMES: [&str; 12] = [
    "size",
    "code",
    "startDate",
    "endDate",
    "filter",
    "customerId",
    "operationType",
    "partnerId",
    "qualification",
    "olderThan",
    "seekOperation",
    "Size",
];

fn segment() -> impl Strategy<Value = Segment> {
    prop_oneof![
        3 => Just(Segment::Customer),
        1 => Just(Segment::BracedCustomer),
        2 => Just(Segment::Unknown),
        2 => proptest::sample::select(&WORDS[..]).prop_map(Segment::Word),
        3 => any::<String>().prop_map(Segment::Text),
    ]
}

/// Text that stresses parsers: numbers at and past the limits, odd unicode, NULs.
fn nasty_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9]{1,40}",
        Just("-1".to_owned()),
        Just("0".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("9223372036854775807".to_owned()),
        Just("-9223372036854775808".to_owned()),
        Just("1e999999".to_owned()),
        Just("9999-12-31".to_owned()),
        Just("0000-01-01".to_owned()),
        Just("12/31/9999 11:59:59 PM".to_owned()),
        Just("99999999999999999d".to_owned()),
        Just("\u{0}".to_owned()),
        Just("\u{202e}Education\u{200b}".to_owned()),
        Just("{\"Field\":\"CustomerId\",\"Value\":\"x\",\"Operator\":\"equals\"}".to_owned()),
        Just("{\"Field\":\"CompanyName\",\"Value\":\"%\",\"Operator\":\"substring\"}".to_owned()),
        "\\PC{0,8}",
    ]
}

fn query() -> impl Strategy<Value = Query> {
    prop_oneof![
        1 => Just(Query::None),
        4 => prop::collection::vec(
            (
                prop_oneof![
                    4 => proptest::sample::select(&QUERY_NAMES[..]).prop_map(str::to_owned),
                    1 => any::<String>(),
                ],
                nasty_text(),
            ),
            0..4,
        )
        .prop_map(Query::Pairs),
        1 => "[A-Za-z0-9%=&;+/?:@!$'()*,._~-]{0,40}".prop_map(Query::Raw),
    ]
}

fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        "[ -~]{0,200}".prop_map(String::into_bytes),
        Just(Uuid::new_v4().to_string().into_bytes()),
        Just(b"   ".to_vec()),
        Just("x".repeat(129).into_bytes()),
    ]
}

fn authorization() -> impl Strategy<Value = Authorization> {
    prop_oneof![
        1 => Just(Authorization::None),
        6 => Just(Authorization::Fitting),
        3 => (0usize..4).prop_map(Authorization::Token),
        1 => header_bytes().prop_map(Authorization::Raw),
        1 => prop_oneof![
            Just(b"Bearer".to_vec()),
            Just(b"Bearer ".to_vec()),
            Just(b"bearer a.b.c".to_vec()),
            Just(b"Basic dXNlcjpwYXNz".to_vec()),
            "Bearer [A-Za-z0-9_.-]{0,300}".prop_map(String::into_bytes),
        ]
        .prop_map(Authorization::Raw),
    ]
}

/// JSON values with the shapes of pcq's bodies and every kind of leaf.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        nasty_text().prop_map(Value::String),
        proptest::sample::select(
            &[
                "Education",
                "education",
                "government_community_cloud",
                "StateOwnedEntity",
                "K12",
                "HigherEducation",
                "Approved",
                "Denied",
                "Not an Academic Domain",
                "https://hooks.example.com/pc",
                "http://127.0.0.1:9/x",
                "test-created",
                "contoso.example.com",
                "72h",
                "immediate",
            ][..]
        )
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        proptest::sample::select(
                            &[
                                "qualification",
                                "Qualification",
                                "educationSegment",
                                "website",
                                "validationCode",
                                "companyProfile",
                                "CompanyProfile",
                                "domain",
                                "companyName",
                                "billingProfile",
                                "organizationName",
                                "maxCreates",
                                "validationId",
                                "decision",
                                "reason",
                                "round",
                                "WebhookUrl",
                                "WebhookEvents",
                                "advance",
                                "policy",
                                "after",
                                "after_reads",
                            ][..]
                        )
                        .prop_map(str::to_owned),
                        any::<String>(),
                    ],
                    inner,
                ),
                0..5,
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Bodies of the shapes pcq's routes take, with values at and past their edges, so that
/// requests get past parsing into the rules and the store.
fn plausible_bodies() -> impl Strategy<Value = [Value; 7]> {
    let domain = prop_oneof![
        "[a-z0-9-]{1,20}\\.(example\\.)?(com|edu|ac\\.uk|org)",
        nasty_text(),
    ];
    let duration = prop_oneof![
        "[0-9]{1,6}[dhms]",
        "([0-9]{1,3}[dhms]){1,4}",
        "[0-9]{15,25}[dhms]",
        nasty_text(),
    ];
    let int = prop_oneof![-3i64..1_000, any::<i64>(), Just(1_000_000), Just(1_000_001)];
    let qualification = proptest::sample::select(
        &[
            "Education",
            "GovernmentCommunityCloud",
            "StateOwnedEntity",
            "state_owned_entity",
            "None",
            "Nonprofit",
            "1",
            "3",
        ][..],
    );
    (
        (domain, nasty_text(), json_value()).prop_map(|(domain, name, billing)| {
            json!({"companyProfile": {"domain": domain, "companyName": name},
                   "billingProfile": billing})
        }),
        (
            qualification,
            proptest::option::of(prop_oneof![Just("K12".to_owned()), nasty_text()]),
            proptest::option::of(nasty_text()),
            proptest::option::of(prop_oneof!["[0-9]{6}", nasty_text()]),
        )
            .prop_map(|(q, segment, website, code)| {
                json!({"qualification": q, "educationSegment": segment, "website": website,
                       "validationCode": code})
            }),
        (nasty_text(), int.clone(), proptest::option::of("[0-9]{1,20}")).prop_map(
            |(name, max, id)| json!({"organizationName": name, "maxCreates": max, "validationId": id})
        ),
        (
            proptest::sample::select(&["Approved", "Denied", "InReview", "denied"][..]),
            proptest::option::of(prop_oneof![Just("Not an Academic Domain".to_owned()), nasty_text()]),
            proptest::option::of(int.clone()),
        )
            .prop_map(|(decision, reason, round)| {
                json!({"decision": decision, "reason": reason, "round": round})
            }),
        (
            prop_oneof![
                "http://127\\.0\\.0\\.1:9/[a-z]{0,8}",
                nasty_text(),
            ],
            prop::collection::vec(
                prop_oneof![Just("test-created".to_owned()), nasty_text()],
                0..3
            ),
        )
            .prop_map(|(url, events)| json!({"WebhookUrl": url, "WebhookEvents": events})),
        duration.clone().prop_map(|d| json!({"advance": d})),
        (
            proptest::sample::select(
                &["manual", "immediate", "after", "after_reads", "domain_rules", "bogus"][..],
            ),
            duration,
            int,
            proptest::sample::select(&["approve", "deny", "domain_rules", "maybe"][..]),
            prop::collection::vec(nasty_text(), 0..3),
        )
            .prop_map(|(policy, after, reads, outcome, suffixes)| {
                json!({"policy": policy, "after": after, "after_reads": reads,
                       "outcome": outcome, "academic_suffixes": suffixes})
            }),
    )
        .prop_map(|(a, b, c, d, e, f, g)| [a, b, c, d, e, f, g])
}

/// Which of [`plausible_bodies`] a route takes.
fn plausible_for(method: &Method, template: &str, bodies: &[Value; 7]) -> Option<Value> {
    let index = match (method.as_str(), template) {
        ("POST", "/v1/customers") => 0,
        ("PUT", t) if t.ends_with("/qualification") => {
            return Some(bodies[1]["qualification"].clone());
        }
        (_, t) if t.ends_with("/qualifications") => 1,
        (_, t) if t.ends_with("/validation-codes") => 2,
        (_, t) if t.ends_with("/decision") => 3,
        (_, "/webhooks/v1/registration") => 4,
        (_, "/_pcq/admin/clock") => 5,
        (_, "/_pcq/admin/vetting-policy") => 6,
        _ => return None,
    };
    Some(bodies[index].clone())
}

/// A request body: bytes, or the plausible body of whatever route the request goes to.
#[derive(Debug, Clone)]
enum BodyChoice {
    Bytes(Vec<u8>),
    ForRoute(Box<[Value; 7]>),
}

fn body() -> impl Strategy<Value = BodyChoice> {
    prop_oneof![
        5 => raw_body().prop_map(BodyChoice::Bytes),
        4 => plausible_bodies().prop_map(|b| BodyChoice::ForRoute(Box::new(b))),
    ]
}

fn raw_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => Just(Vec::new()),
        4 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        2 => prop::collection::vec(any::<u8>(), 0..128),
        1 => (1usize..3000, any::<bool>()).prop_map(|(depth, objects)| {
            let (open, close) = if objects { ("{\"a\":", "}") } else { ("[", "]") };
            format!("{}1{}", open.repeat(depth), close.repeat(depth)).into_bytes()
        }),
        1 => proptest::sample::select(&[
            "{\"qualification\": 1e400}",
            "{\"qualification\": -0}",
            "{\"maxCreates\": 1e2}",
            "{\"round\": 18446744073709551616}",
            "{'qualification': 'Education',}",
            "/* c */ {\"advance\": \"1d\"}",
            "{\"qualification\": \"Education\\u0000\"}",
            "\"\\ud800\"",
            "{\"a\": \"\\uDFFF\"}",
            "[1,2",
            "{\"a\":1,\"a\":2}",
        ][..])
        .prop_map(|s| s.as_bytes().to_vec()),
    ]
}

fn method() -> impl Strategy<Value = Option<Method>> {
    prop_oneof![
        6 => Just(None),
        1 => proptest::sample::select(&[
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::OPTIONS,
            Method::HEAD,
        ][..])
        .prop_map(Some),
    ]
}

fn generated() -> impl Strategy<Value = Generated> {
    let headers = prop::collection::vec(
        (
            proptest::sample::select(
                &[
                    "MS-RequestId",
                    "MS-CorrelationId",
                    "MS-CV",
                    "MS-ContinuationToken",
                    "MS-Contract-Version",
                    "X-Locale",
                    "Accept",
                    "Content-Length",
                    "Transfer-Encoding",
                ][..],
            ),
            header_bytes(),
        ),
        0..3,
    );
    (
        (
            any::<prop::sample::Index>(),
            method(),
            prop::collection::vec(segment(), 1..3),
            proptest::option::weighted(0.1, any::<String>()),
        ),
        (
            query(),
            authorization(),
            headers,
            proptest::option::weighted(
                0.3,
                prop_oneof![
                    Just(b"application/json".to_vec()),
                    Just(b"text/json; charset=utf-8".to_vec()),
                    Just(b"text/plain".to_vec()),
                    header_bytes(),
                ],
            ),
            body(),
        ),
    )
        .prop_map(
            |((operation, method, segments, extra), (query, authorization, headers, ct, body))| {
                Generated {
                    operation: operation.index(usize::MAX),
                    method,
                    segments,
                    extra,
                    query,
                    authorization,
                    headers,
                    content_type: ct,
                    body,
                }
            },
        )
}

impl Fixture {
    /// The request `g` stands for on one of the document's routes.
    fn request(&self, g: &Generated) -> Request<Body> {
        let (route_method, template) = &self.operations[g.operation % self.operations.len()];
        let mut path = String::new();
        let mut segments = g.segments.iter().cycle();
        for part in template.split('/').skip(1) {
            path.push('/');
            if part.starts_with('{') && part.ends_with('}') {
                let value = match segments.next().unwrap_or(&Segment::Unknown) {
                    Segment::Customer => self.customer.to_string(),
                    Segment::BracedCustomer => {
                        urlencode(&format!("{{{}}}", self.customer.to_string().to_uppercase()))
                    }
                    Segment::Unknown => Uuid::new_v4().to_string(),
                    Segment::Word(w) => (*w).to_owned(),
                    Segment::Text(t) => urlencode(t),
                };
                path.push_str(&value);
            } else {
                path.push_str(part);
            }
        }
        if let Some(extra) = &g.extra {
            path.push('/');
            path.push_str(&urlencode(extra));
        }
        match &g.query {
            Query::None => {}
            Query::Pairs(pairs) => {
                let text: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
                    .collect();
                path.push('?');
                path.push_str(&text.join("&"));
            }
            Query::Raw(raw) => {
                path.push('?');
                path.push_str(raw);
            }
        }
        let method = g.method.clone().unwrap_or_else(|| route_method.clone());
        let mut builder = Request::builder().method(method).uri(&path);
        let headers = builder.headers_mut().expect("a fresh builder");
        let fitting = if template.starts_with("/_pcq/admin") {
            2
        } else if template.starts_with("/_pcq/review") {
            3
        } else {
            0
        };
        match &g.authorization {
            Authorization::None => {}
            Authorization::Fitting | Authorization::Token(_) => {
                let i = match g.authorization {
                    Authorization::Token(i) => i,
                    _ => fitting,
                };
                let value = format!("Bearer {}", self.tokens[i]);
                headers.insert(
                    header::AUTHORIZATION,
                    HeaderValue::from_str(&value).expect("a token is ASCII"),
                );
            }
            Authorization::Raw(bytes) => {
                if let Ok(value) = HeaderValue::from_bytes(bytes) {
                    headers.insert(header::AUTHORIZATION, value);
                }
            }
        }
        for (name, bytes) in &g.headers {
            // Framing headers would disagree with the body; the HTTP server owns them.
            if matches!(*name, "Content-Length" | "Transfer-Encoding") {
                continue;
            }
            if let Ok(value) = HeaderValue::from_bytes(bytes) {
                headers.append(HeaderName::from_static_lower(name), value);
            }
        }
        if let Some(ct) = &g.content_type {
            if let Ok(value) = HeaderValue::from_bytes(ct) {
                headers.insert(header::CONTENT_TYPE, value);
            }
        }
        let body = match &g.body {
            BodyChoice::Bytes(bytes) => bytes.clone(),
            BodyChoice::ForRoute(bodies) => plausible_for(route_method, template, bodies)
                .map(|v| serde_json::to_vec(&v).unwrap_or_default())
                .unwrap_or_default(),
        };
        builder.body(Body::from(body)).unwrap_or_else(|_| {
            // Not a valid URI after all: the request line is then the bare path.
            Request::builder()
                .method(Method::GET)
                .uri("/")
                .body(Body::empty())
                .expect("a plain request")
        })
    }

    fn send(&self, request: Request<Body>) -> (Response<()>, Vec<u8>) {
        self.runtime.block_on(async {
            let response = self
                .router
                .clone()
                .oneshot(request)
                .await
                .expect("the router is infallible");
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .expect("a body")
                .to_vec();
            (Response::from_parts(parts, ()), bytes)
        })
    }
}

trait FromStaticLower {
    fn from_static_lower(name: &'static str) -> HeaderName;
}

impl FromStaticLower for HeaderName {
    fn from_static_lower(name: &'static str) -> HeaderName {
        HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).expect("a header name")
    }
}

/// Checks that an answer is no server error and, when it is an error, the envelope.
fn check_answer(
    what: &str,
    method: &Method,
    response: &Response<()>,
    body: &[u8],
) -> Result<(), TestCaseError> {
    let status = response.status();
    let text = String::from_utf8_lossy(body);
    prop_assert!(
        !status.is_server_error(),
        "{what}: {status} {}",
        &text[..text.len().min(400)]
    );
    for name in ["ms-requestid", "ms-correlationid", "ms-cv"] {
        prop_assert!(
            response.headers().contains_key(name),
            "{what}: no {name} header"
        );
    }
    if status.as_u16() < 400 || *method == Method::HEAD {
        return Ok(());
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    prop_assert!(
        content_type.starts_with("application/json"),
        "{what}: {status} with content type {content_type:?}"
    );
    let envelope: Value = serde_json::from_slice(body).map_err(|e| {
        TestCaseError::fail(format!("{what}: {status} body is not JSON ({e}): {text}"))
    })?;
    prop_assert!(envelope["code"].is_u64(), "{what}: {envelope}");
    prop_assert!(
        envelope["description"]
            .as_str()
            .is_some_and(|d| !d.trim().is_empty()),
        "{what}: {envelope}"
    );
    prop_assert!(envelope["message"].is_string(), "{what}: {envelope}");
    prop_assert!(envelope["errorName"].is_string(), "{what}: {envelope}");
    prop_assert!(envelope["isRetryable"].is_boolean(), "{what}: {envelope}");
    prop_assert!(envelope["parameters"].is_object(), "{what}: {envelope}");
    prop_assert!(envelope["data"].is_array(), "{what}: {envelope}");
    prop_assert_eq!(&envelope["source"], "pcq", "{}", what);
    if status == StatusCode::UNAUTHORIZED {
        prop_assert!(
            response.headers().contains_key(header::WWW_AUTHENTICATE),
            "{what}: 401 without WWW-Authenticate"
        );
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        prop_assert!(
            response.headers().contains_key(header::ALLOW),
            "{what}: 405 without Allow"
        );
    }
    Ok(())
}

/// Any request on any route (or on none): never a 5xx, every error the envelope.
#[test]
fn any_request_is_answered_without_a_server_error() {
    let fixture = Fixture::new();
    proptest!(cases(1000), |(g in generated())| {
        let request = fixture.request(&g);
        let what = format!("{} {}", request.method(), request.uri());
        let method = request.method().clone();
        let (response, body) = fixture.send(request);
        if std::env::var_os("PCQ_FUZZ_TRACE").is_some() {
            eprintln!("{} {}", response.status().as_u16(), what.chars().take(100).collect::<String>());
        }
        check_answer(&what, &method, &response, &body)?;
    });
}

/// `MS-RequestId` and `MS-CorrelationId` of any bytes: a usable id is echoed (trimmed), an
/// empty one replaced by a generated GUID, any other refused with a 400 envelope; `MS-CV`
/// always comes back extended.
#[test]
fn request_id_headers_of_any_bytes() {
    let fixture = Fixture::new();
    proptest!(cases(200), |(
        request_id in header_bytes(),
        correlation_id in header_bytes(),
        cv in header_bytes(),
        authenticated in any::<bool>(),
    )| {
        let path = if authenticated { "/v1/customers" } else { "/_pcq/health" };
        let mut builder = Request::builder().uri(path);
        if authenticated {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {}", fixture.tokens[0]));
        }
        let values: Vec<(&str, Option<HeaderValue>)> = [
            ("ms-requestid", &request_id),
            ("ms-correlationid", &correlation_id),
            ("ms-cv", &cv),
        ]
        .into_iter()
        .map(|(name, bytes)| (name, HeaderValue::from_bytes(bytes).ok()))
        .collect();
        for (name, value) in &values {
            if let Some(value) = value {
                builder = builder.header(*name, value.clone());
            }
        }
        let request = builder.body(Body::empty()).expect("a request");
        let (response, body) = fixture.send(request);
        check_answer(path, &Method::GET, &response, &body)?;

        let usable = |value: &Option<HeaderValue>| -> Option<Option<String>> {
            // Some(Some(id)): echoed; Some(None): generated; None: refused.
            let Some(value) = value else { return Some(None) };
            let Ok(text) = value.to_str() else { return None };
            let text = text.trim();
            if text.is_empty() {
                Some(None)
            } else if text.chars().count() > 128 {
                None
            } else {
                Some(Some(text.to_owned()))
            }
        };
        let ids = [usable(&values[0].1), usable(&values[1].1)];
        if ids.iter().any(Option::is_none) {
            prop_assert_eq!(response.status(), StatusCode::BAD_REQUEST);
            let envelope: Value = serde_json::from_slice(&body).unwrap_or_default();
            prop_assert_eq!(&envelope["code"], 800002);
        } else {
            prop_assert_eq!(response.status(), StatusCode::OK);
        }
        for (i, name) in ["ms-requestid", "ms-correlationid"].into_iter().enumerate() {
            let echoed = response.headers()[name].to_str().unwrap_or("").to_owned();
            match &ids[i] {
                Some(Some(sent)) => prop_assert_eq!(&echoed, sent),
                _ => prop_assert!(Uuid::parse_str(&echoed).is_ok(), "{name}: {echoed:?}"),
            }
        }
        let cv_back = response.headers()["ms-cv"].to_str().unwrap_or("").to_owned();
        prop_assert!(cv_back.ends_with(".0") && cv_back.len() <= 130, "{cv_back:?}");
    });
}

/// An authenticator trusting a development issuer of its own.
fn authenticator() -> &'static (Authenticator, String) {
    static AUTH: OnceLock<(Authenticator, String)> = OnceLock::new();
    AUTH.get_or_init(|| {
        let issuer = DevIssuer::ephemeral().expect("a key");
        let kid = issuer.kid().to_owned();
        (
            Authenticator::new(AUDIENCE, Some(std::sync::Arc::new(issuer)), vec![]),
            kid,
        )
    })
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Three dot-separated segments: JSON headers and claims of any shape, any signature.
fn jwt_shaped() -> impl Strategy<Value = String> {
    let header = (
        proptest::option::of(prop_oneof![
            Just("RS256".to_owned()),
            Just("EdDSA".to_owned()),
            Just("ES256".to_owned()),
            any::<String>()
        ]),
        proptest::option::of(prop_oneof![
            Just(None::<String>),
            any::<String>().prop_map(Some)
        ]),
        any::<bool>(),
    )
        .prop_map(|(alg, kid, json_header)| {
            let kid = match kid {
                Some(Some(k)) => json!(k),
                Some(None) => json!(authenticator().1),
                None => Value::Null,
            };
            let header = json!({"alg": alg, "kid": kid, "typ": "JWT"});
            if json_header {
                base64url(header.to_string().as_bytes())
            } else {
                base64url(b"not json")
            }
        });
    (
        header,
        json_value(),
        prop::collection::vec(any::<u8>(), 0..80),
    )
        .prop_map(|(header, claims, signature)| {
            format!(
                "{header}.{}.{}",
                base64url(claims.to_string().as_bytes()),
                base64url(&signature)
            )
        })
}

proptest! {
    #![proptest_config(cases(300))]

    /// Any `Authorization` value: never a panic, and anything not a valid token is a 401.
    #[test]
    fn authorization_values_of_any_form_are_401(
        raw in prop_oneof![
            any::<String>(),
            "[ -~]{0,100}",
            jwt_shaped().prop_map(|t| format!("Bearer {t}")),
            jwt_shaped().prop_map(|t| format!("bEaReR   {t}  ")),
            Just("x".repeat(20_000)),
            Just(format!("Bearer {}", "a".repeat(17_000))),
        ],
    ) {
        let (auth, _) = authenticator();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let fault = runtime
            .block_on(auth.authenticate(Some(&raw)))
            .expect_err("no valid token by chance");
        prop_assert_eq!(fault.status, 401, "{}", fault.description);
        prop_assert!(!fault.description.is_empty());
    }
}
