//! External identity providers (RS256 and ES256 keys from a JWKS URL or file), the token attack
//! matrix against them, the GDAP role rule for GCC, and when the development issuer is trusted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::common::{AUDIENCE, TestApp, assert_fault, gcc, status_json};
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pcq_server::config::{AutoBool, Config, IssuerConfig};
use reqwest::{Method, StatusCode};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use uuid::Uuid;

/// The Entra ID (v1) issuer form: one issuer per tenant.
const ENTRA_ISSUER: &str = "https://sts.windows.net/{tenantid}/";
/// A single-tenant provider whose keys are in a file.
const FILE_ISSUER: &str = "https://idp.example.com/pcq";
const DIRECTORY_READERS: &str = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b";

/// An RSA signing key and its public JWK.
struct RsaKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
    /// The public key in PKCS#1 DER, for the HMAC-with-the-public-key attack.
    public_der: Vec<u8>,
}

impl RsaKey {
    fn generate(kid: &str) -> RsaKey {
        let mut rng = rand_core_rng();
        let private = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA key");
        let pem = private
            .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
            .expect("PEM");
        let public = private.to_public_key();
        let public_der = rsa::pkcs1::EncodeRsaPublicKey::to_pkcs1_der(&public)
            .unwrap()
            .as_bytes()
            .to_vec();
        // Shaped like a key of Microsoft's JWKS, extra members included.
        let jwk = json!({
            "kty": "RSA",
            "use": "sig",
            "kid": kid,
            "x5t": kid,
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
            "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
            "cloud_instance_name": "microsoftonline.com",
        });
        RsaKey {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            jwk,
            public_der,
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

fn rand_core_rng() -> impl rsa::rand_core::CryptoRngCore {
    rsa::rand_core::OsRng
}

/// A P-256 signing key and its public JWK.
struct EcKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

impl EcKey {
    fn generate(kid: &str) -> EcKey {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        assert_eq!(point.len(), 65, "uncompressed P-256 point");
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "use": "sig",
            "alg": "ES256",
            "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        });
        EcKey {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk,
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// The keys of the tests, generated once per run (RSA generation is slow).
struct Keys {
    entra: RsaKey,
    rotated: RsaKey,
    impostor: RsaKey,
    ec: EcKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let impostor = RsaKey::generate("entra-1");
        Keys {
            entra: RsaKey::generate("entra-1"),
            rotated: RsaKey::generate("entra-2"),
            // Same kid as the real key, different key: a forged signature.
            impostor,
            ec: EcKey::generate("file-ec-1"),
        }
    })
}

/// A JWKS endpoint whose document the test can change, counting how often it is fetched, and
/// able to hold its answers until the test releases them.
struct JwksServer {
    url: String,
    document: Arc<Mutex<Value>>,
    hits: Arc<AtomicU64>,
    gate: Arc<Gate>,
}

/// Whether the JWKS endpoint answers (open) or holds its answers, and how many it holds.
struct Gate {
    open: tokio::sync::watch::Sender<bool>,
    holding: tokio::sync::watch::Sender<usize>,
}

impl JwksServer {
    async fn start(document: Value) -> JwksServer {
        #[derive(Clone)]
        struct Shared {
            document: Arc<Mutex<Value>>,
            hits: Arc<AtomicU64>,
            gate: Arc<Gate>,
        }
        async fn serve(State(shared): State<Shared>) -> axum::Json<Value> {
            shared.hits.fetch_add(1, Ordering::SeqCst);
            let mut open = shared.gate.open.subscribe();
            if !*open.borrow_and_update() {
                shared.gate.holding.send_modify(|n| *n += 1);
                let _ = open.wait_for(|open| *open).await;
                shared.gate.holding.send_modify(|n| *n -= 1);
            }
            axum::Json(shared.document.lock().unwrap().clone())
        }
        let shared = Shared {
            document: Arc::new(Mutex::new(document)),
            hits: Arc::new(AtomicU64::new(0)),
            gate: Arc::new(Gate {
                open: tokio::sync::watch::Sender::new(true),
                holding: tokio::sync::watch::Sender::new(0),
            }),
        };
        let router = axum::Router::new()
            .route("/common/discovery/keys", axum::routing::get(serve))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        JwksServer {
            url: format!("http://{addr}/common/discovery/keys"),
            document: shared.document,
            hits: shared.hits,
            gate: shared.gate,
        }
    }

    fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    /// From now on, answers are held until [`JwksServer::release`].
    fn hold(&self) {
        self.gate.open.send_replace(false);
    }

    /// Answers the held fetches, and later ones at once.
    fn release(&self) {
        self.gate.open.send_replace(true);
    }

    /// How many fetches are held right now.
    fn holding(&self) -> usize {
        *self.gate.holding.borrow()
    }

    /// Waits until a fetch is held (a test deadline bounds the wait).
    async fn until_holding(&self) {
        let mut holding = self.gate.holding.subscribe();
        within_deadline(holding.wait_for(|n| *n > 0))
            .await
            .expect("the JWKS server stays up");
    }
}

/// Awaits `future`, failing the test if it takes longer than a generous deadline (a guard
/// against hanging, never a measure of speed).
async fn within_deadline<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(std::time::Duration::from_secs(60), future)
        .await
        .expect("the awaited condition came true within the test deadline")
}

/// Polls `condition` until it holds, within the test deadline.
async fn until(mut condition: impl AsyncFnMut() -> bool) {
    within_deadline(async {
        while !condition().await {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
}

/// A JWKS server holding the Entra ID key, and a node trusting it (and the JWKS file of
/// [`spawn_with_providers`]).
async fn entra_node(min_refresh_seconds: u64) -> (JwksServer, TestApp) {
    let jwks = JwksServer::start(json!({"keys": [keys().entra.jwk]})).await;
    let app = spawn_with_providers(&jwks, min_refresh_seconds, |_| {}).await;
    (jwks, app)
}

/// A node trusting the JWKS server (Entra ID form) and a JWKS file (a single-tenant provider).
async fn spawn_with_providers(
    jwks: &JwksServer,
    min_refresh_seconds: u64,
    change: impl FnOnce(&mut Config),
) -> TestApp {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        json!({"keys": [keys().ec.jwk.clone()]}).to_string(),
    )
    .unwrap();
    let (_, path) = file.keep().unwrap();
    let url = jwks.url.clone();
    TestApp::spawn_with(move |c| {
        c.auth.jwks_min_refresh_seconds = min_refresh_seconds;
        c.auth.issuers = vec![
            IssuerConfig {
                issuer: ENTRA_ISSUER.into(),
                jwks: url,
                audiences: vec![],
                leeway_seconds: 60,
                role_tenants: vec![],
            },
            IssuerConfig {
                issuer: FILE_ISSUER.into(),
                jwks: path.display().to_string(),
                audiences: vec!["api://pcq".into()],
                leeway_seconds: 0,
                role_tenants: vec![],
            },
        ];
        change(c);
    })
    .await
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The claims of a delegated (App+User) Entra ID v1 access token for Partner Center.
fn entra_claims(tenant: Uuid) -> Value {
    let now = now();
    json!({
        "aud": AUDIENCE,
        "iss": format!("https://sts.windows.net/{tenant}/"),
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + 3600,
        "acr": "1",
        "amr": ["pwd", "mfa"],
        "appid": "1950a258-227b-4e31-a9cf-717495945fc2",
        "appidacr": "0",
        "family_name": "Agent",
        "given_name": "Ana",
        "ipaddr": "203.0.113.7",
        "name": "Ana Agent",
        "oid": Uuid::new_v4().to_string(),
        "scp": "user_impersonation",
        "sub": "x7hGmvNnnX5rtJNm0oA2cw2J9DEalhd_eJHy3mNtXTs",
        "tid": tenant.to_string(),
        "unique_name": "ana@partner.onmicrosoft.com",
        "upn": "ana@partner.onmicrosoft.com",
        "ver": "1.0",
        "wids": [DIRECTORY_READERS, "b79fbf4d-3ef9-4689-8143-76b194e85509"],
    })
}

/// The claims of an App-only Entra ID token.
fn entra_app_claims(tenant: Uuid) -> Value {
    let mut claims = entra_claims(tenant);
    let object = claims.as_object_mut().unwrap();
    for user_claim in [
        "scp",
        "upn",
        "unique_name",
        "name",
        "given_name",
        "family_name",
        "amr",
    ] {
        object.remove(user_claim);
    }
    object.insert("idtyp".into(), json!("app"));
    object.insert("roles".into(), json!([]));
    claims
}

fn file_claims(tenant: Uuid) -> Value {
    json!({
        "aud": "api://pcq",
        "iss": FILE_ISSUER,
        "exp": now() + 600,
        "tid": tenant.to_string(),
        "scp": "pcq.access",
        "preferred_username": "ops@contoso.example",
    })
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Real-shaped tokens of both providers are accepted and act for their own tenant.
async fn tokens_of_configured_providers_are_accepted() {
    let (jwks, app) = entra_node(60).await;
    assert_eq!(jwks.hits(), 1, "keys fetched once at start");

    let tenant = Uuid::new_v4();
    let rs256 = keys().entra.sign(&entra_claims(tenant));
    let (status, body) = status_json(
        app.send_post(
            "/v1/customers",
            &rs256,
            &json!({"companyProfile": {"domain": "entra.example.edu", "companyName": "Entra"}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let customer = body["id"].as_str().unwrap().to_owned();
    // The customer belongs to the token's tenant: its development token sees it too.
    assert_eq!(app.customer_count_with(&app.user_token(tenant)).await, 1);
    // App+User: it may request qualifications (GCC included, through Directory Readers).
    let (status, body) = status_json(
        app.send_post(
            &format!("/v1/customers/{customer}/qualifications"),
            &rs256,
            &json!({"qualification": "Education"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let es256 = keys().ec.sign(&file_claims(tenant));
    assert_eq!(app.customer_count_with(&es256).await, 1);
    // Keys were served from the cache.
    assert_eq!(jwks.hits(), 1);
}

/// The attack matrix against the external providers: each gets 401 (or 403) and the envelope,
/// and none reaches a handler (a POST that would create a customer creates none).
async fn forged_and_invalid_tokens_never_reach_a_handler() {
    let (jwks, app) = entra_node(3600).await;
    let tenant = Uuid::new_v4();
    let claims = entra_claims(tenant);
    let good = keys().entra.sign(&claims);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = claims.clone();
        change(&mut c);
        keys().entra.sign(&c)
    };
    let unsigned = |header: Value, claims: &Value, signature: &str| {
        format!(
            "{}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    };
    let hmac_with_public_key = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("entra-1".into());
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(&keys().entra.public_der),
        )
        .unwrap()
    };
    let tampered = {
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        let mut c = claims.clone();
        c["tid"] = json!(Uuid::new_v4().to_string());
        c["iss"] = json!(format!(
            "https://sts.windows.net/{}/",
            c["tid"].as_str().unwrap()
        ));
        parts[1] = URL_SAFE_NO_PAD.encode(c.to_string());
        parts.join(".")
    };
    let bad_signature = {
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        let mut signature = URL_SAFE_NO_PAD.decode(&parts[2]).unwrap();
        signature[10] ^= 0x01;
        parts[2] = URL_SAFE_NO_PAD.encode(signature);
        parts.join(".")
    };
    // An ES256 token naming the RSA key: the algorithm must come from the key.
    let es256_on_rsa_kid = {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("entra-1".into());
        jsonwebtoken::encode(&header, &claims, &keys().ec.encoding).unwrap()
    };
    let other_tenants_issuer = with(&|c| {
        c["iss"] = json!(format!("https://sts.windows.net/{}/", Uuid::new_v4()));
    });

    // Every attack is a 401: (what, Authorization header, code, words in the description).
    let headers: Vec<(&str, Option<String>, u64, &str)> = vec![
        ("no header", None, 800001, ""),
        ("wrong scheme", Some("Basic YTpi".into()), 400, "Bearer"),
    ];
    // The same for bearer tokens: (what, token, code, words).
    let tokens: Vec<(&str, String, u64, &str)> = vec![
        ("malformed", "a.b".to_owned(), 400, "well-formed"),
        (
            "alg none",
            unsigned(
                json!({"alg": "none", "typ": "JWT", "kid": "entra-1"}),
                &claims,
                "",
            ),
            400,
            "",
        ),
        (
            "HMAC signed with the RSA public key",
            hmac_with_public_key,
            400,
            "algorithm",
        ),
        (
            "ES256 header on an RSA key",
            es256_on_rsa_kid,
            400,
            "algorithm",
        ),
        (
            "unknown kid",
            keys().rotated.sign(&claims),
            400,
            "does not publish",
        ),
        (
            "forged signature (same kid, other key)",
            keys().impostor.sign(&claims),
            400,
            "signature",
        ),
        ("bad signature", bad_signature, 400, "signature"),
        ("tampered payload", tampered, 400, "signature"),
        (
            "expired beyond the leeway",
            with(&|c| c["exp"] = json!(now() - 120)),
            400,
            "expired",
        ),
        (
            "not yet valid",
            with(&|c| c["nbf"] = json!(now() + 600)),
            400,
            "not valid yet",
        ),
        (
            "wrong audience",
            with(&|c| c["aud"] = json!("https://graph.microsoft.com")),
            900420,
            "graph.microsoft.com",
        ),
        (
            "untrusted issuer",
            with(&|c| c["iss"] = json!("https://evil.example.com/")),
            400,
            "issuer",
        ),
        (
            "another tenant's issuer",
            other_tenants_issuer,
            400,
            "issuer",
        ),
        (
            "missing tid",
            with(&|c| {
                c.as_object_mut().unwrap().remove("tid");
            }),
            400,
            "issuer",
        ),
        (
            "missing exp",
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            400,
            "exp",
        ),
        (
            "token of the file provider for the Entra audience",
            keys().ec.sign(&json!({
                "aud": AUDIENCE, "iss": FILE_ISSUER, "exp": now() + 600,
                "tid": tenant.to_string(), "scp": "x"
            })),
            900420,
            "api://pcq",
        ),
    ];
    let cases: Vec<(&str, Option<String>, u64, &str)> = headers
        .into_iter()
        .chain(
            tokens
                .into_iter()
                .map(|(what, token, code, words)| (what, Some(bearer(&token)), code, words)),
        )
        .collect();
    assert!(cases.len() >= 15);
    let body = json!({"companyProfile": {"domain": "attack.example.com", "companyName": "A"}});
    for (what, header, code, words) in &cases {
        let mut request = app.anon(Method::POST, "/v1/customers").json(&body);
        if let Some(header) = header {
            request = request.header("Authorization", header);
        }
        let response = request.send().await.unwrap();
        assert!(
            response.headers().contains_key("www-authenticate"),
            "{what}: 401 without WWW-Authenticate"
        );
        let fault = assert_fault(response, 401, *code).await;
        let description = fault.description.as_str();
        assert!(
            description.contains(words),
            "{what}: {description:?} should mention {words:?}"
        );
    }
    // Nothing was created, for this tenant or the tampered one.
    assert_eq!(app.customer_count_with(&good).await, 0);
    // The unknown kid did not refetch inside the minimum interval.
    assert_eq!(jwks.hits(), 1);
}

/// Credential kinds and roles from external tokens, and reviewers versus partners' data.
async fn external_tokens_get_the_routes_their_claims_allow() {
    let reviewers = Uuid::new_v4();
    let jwks = JwksServer::start(json!({"keys": [keys().entra.jwk]})).await;
    let app = spawn_with_providers(&jwks, 60, |c| {
        c.auth.issuers[0].role_tenants = vec![reviewers.to_string()];
    })
    .await;
    let tenant = Uuid::new_v4();
    let partner_token = keys().entra.sign(&entra_claims(tenant));
    let customer = {
        let (status, body) = status_json(
            app.send_post(
                "/v1/customers",
                &partner_token,
                &json!({"companyProfile": {"domain": "kinds.example.edu", "companyName": "K"}}),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    };

    // App-only on an App+User route.
    let app_only = keys().entra.sign(&entra_app_claims(tenant));
    let fault = assert_fault(
        app.send_post(
            &format!("/v1/customers/{customer}/qualifications"),
            &app_only,
            &json!({"qualification": "Education"}),
        )
        .await,
        403,
        900150,
    )
    .await;
    assert_eq!(fault.error_name, "ApplicationCredentialsNotAllowed");
    // ...but App-only may read.
    assert_eq!(app.customer_count_with(&app_only).await, 1);

    // A partner's token on reviewer and admin routes.
    for (method, path) in [
        (Method::GET, "/_pcq/review/queue".to_owned()),
        (Method::GET, "/_pcq/admin/clock".to_owned()),
        (Method::POST, "/_pcq/admin/worker/drain".to_owned()),
    ] {
        let resp = app.send(method.clone(), &path, &partner_token, None).await;
        assert_fault(resp, 403, 900150).await;
    }

    // A reviewer (of a tenant that may hold pcq's roles) may decide reviews but has no
    // relationship with partners' customers (403, 20002, as for any other partner) and lists
    // none.
    let mut reviewer = entra_claims(reviewers);
    reviewer["roles"] = json!(["Pcq.Reviewer"]);
    let reviewer = keys().entra.sign(&reviewer);
    let (status, body) = status_json(app.fetch("/_pcq/review/queue", &reviewer).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_fault(
        app.fetch(&format!("/v1/customers/{customer}"), &reviewer)
            .await,
        403,
        20002,
    )
    .await;
    assert_eq!(app.customer_count_with(&reviewer).await, 0);
}

/// A key rotation: the provider publishes a new key; the first token naming it is answered from
/// the keys pcq has (401) and makes pcq fetch the keys again in the background, after which the
/// new key is accepted. A flood of unknown key ids within the minimum interval causes no fetch.
async fn key_rotation_refetches_within_the_rate_limit() {
    // A minimum interval of 0: every unknown kid may refetch.
    let (jwks, app) = entra_node(0).await;
    let tenant = Uuid::new_v4();
    *jwks.document.lock().unwrap() = json!({"keys": [keys().entra.jwk, keys().rotated.jwk]});
    let rotated = keys().rotated.sign(&entra_claims(tenant));
    // The request naming the new kid does not wait for the fetch it causes.
    let fault = assert_fault(app.fetch("/v1/customers", &rotated).await, 401, 400).await;
    assert!(fault.description.contains("does not publish"), "{fault:?}");
    // Once the background fetch landed, the new key is accepted.
    until(async || app.fetch("/v1/customers", &rotated).await.status() == StatusCode::OK).await;
    // Both keys are cached now.
    let hits = jwks.hits();
    assert_eq!(
        app.customer_count_with(&keys().entra.sign(&entra_claims(tenant)))
            .await,
        0
    );
    assert_eq!(app.customer_count_with(&rotated).await, 0);
    assert_eq!(jwks.hits(), hits);

    // With a minimum interval, a flood of made-up key ids costs no fetch at all.
    let limited = spawn_with_providers(&jwks, 3600, |_| {}).await;
    let before = jwks.hits();
    let mut claims = entra_claims(tenant);
    for n in 0..50 {
        claims["jti"] = json!(n);
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(format!("made-up-{n}"));
        let token = jsonwebtoken::encode(&header, &claims, &keys().entra.encoding).unwrap();
        let resp = limited.fetch("/v1/customers", &token).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(jwks.hits(), before, "no fetch inside the minimum interval");
    let issuer = &limited.state.auth.external_issuers()[0];
    assert_eq!(issuer.fetch_count(), 1, "only the fetch at start");
}

/// A refresh that is due, or under way, never holds up a request: while the provider holds its
/// answer, a token with a known key is served from the keys in hand, a token naming an unknown
/// key is refused from them, and the node still stops.
async fn requests_never_wait_for_a_key_refresh() {
    let jwks = JwksServer::start(json!({"keys": [keys().entra.jwk]})).await;
    let mut app = spawn_with_providers(&jwks, 0, |c| {
        // Every copy of the keys is due for a refresh at once.
        c.auth.jwks_max_age_seconds = 0;
        // A request that waited for the held fetch would end here, with 408.
        c.limits.request_timeout_seconds = 5.0;
    })
    .await;
    assert_eq!(jwks.hits(), 1, "keys fetched once at start");
    jwks.hold();
    // A token naming an unknown key asks for a refresh, which the provider now holds.
    let unknown = {
        let app_url = app.url("/v1/customers");
        let client = app.client.clone();
        let token = keys().rotated.sign(&entra_claims(Uuid::new_v4()));
        tokio::spawn(async move {
            client
                .get(app_url)
                .header("Authorization", bearer(&token))
                .send()
                .await
                .unwrap()
        })
    };
    jwks.until_holding().await;

    // A token pcq has not seen, signed with a known key: answered while the fetch is held.
    let known = keys().entra.sign(&entra_claims(Uuid::new_v4()));
    let (status, body) = status_json(app.fetch("/v1/customers", &known).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(jwks.holding() > 0, "the provider still holds its answer");
    let refused = within_deadline(unknown).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(jwks.holding() > 0, "the provider still holds its answer");

    // The refresh stops with the node, even in the middle of a fetch.
    within_deadline(app.stop()).await;
    jwks.release();
}

/// The provider is down at start: pcq starts, refuses its tokens, and takes its keys once a
/// later fetch succeeds. A refresh that fails keeps the keys pcq had and is retried. A JWKS file
/// that is missing or not a JWKS stops the start.
async fn unreachable_or_invalid_key_sources() {
    let jwks = JwksServer::start(json!({"keys": "not a list"})).await;
    let app = spawn_with_providers(&jwks, 0, |_| {}).await;
    let token = keys().entra.sign(&entra_claims(Uuid::new_v4()));
    assert_fault(app.fetch("/v1/customers", &token).await, 401, 400).await;
    *jwks.document.lock().unwrap() = json!({"keys": [keys().entra.jwk]});
    until(async || app.fetch("/v1/customers", &token).await.status() == StatusCode::OK).await;

    // The provider breaks: a token naming a new key asks for a refresh, which fails and is
    // retried; meanwhile the keys pcq had still serve.
    *jwks.document.lock().unwrap() = json!({"keys": "not a list"});
    let before = jwks.hits();
    let rotated = keys().rotated.sign(&entra_claims(Uuid::new_v4()));
    assert_fault(app.fetch("/v1/customers", &rotated).await, 401, 400).await;
    until(async || jwks.hits() >= before + 2).await;
    let known = keys().entra.sign(&entra_claims(Uuid::new_v4()));
    assert_eq!(app.customer_count_with(&known).await, 0);
    // Repaired, with the new key: a later fetch takes it.
    *jwks.document.lock().unwrap() = json!({"keys": [keys().entra.jwk, keys().rotated.jwk]});
    until(async || app.fetch("/v1/customers", &rotated).await.status() == StatusCode::OK).await;

    for (contents, words) in [
        (None, "reading the JWKS file"),
        (Some("{\"keys\": []}"), "holds no RSA or P-256 signing key"),
        (Some("<html>"), "is not valid"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        if let Some(contents) = contents {
            std::fs::write(&path, contents).unwrap();
        }
        let mut config = Config::defaults();
        config.in_memory = true;
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.auth.issuers = vec![IssuerConfig {
            issuer: FILE_ISSUER.into(),
            jwks: path.display().to_string(),
            audiences: vec![],
            leeway_seconds: 60,
            role_tenants: vec![],
        }];
        let err = match pcq_server::Application::build(config).await {
            Ok(_) => panic!("{contents:?}: pcq started"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains(words), "{err}");
        assert!(err.contains("auth.issuers[0]"), "{err}");
    }
}

/// `Pcq.Reviewer` and `Pcq.Admin` from an external issuer count only for the tenants configured
/// for that issuer: anyone else's token is a partner's, with the role ignored.
async fn roles_of_external_issuers_count_only_for_configured_tenants() {
    let operators = Uuid::new_v4();
    let jwks = JwksServer::start(json!({"keys": [keys().entra.jwk]})).await;
    let app = spawn_with_providers(&jwks, 60, |c| {
        c.auth.issuers[0].role_tenants = vec![
            Uuid::new_v4().to_string(),
            operators.to_string().to_uppercase(),
        ];
    })
    .await;
    let stranger = Uuid::new_v4();
    let with_roles = |tenant: Uuid, roles: &[&str]| {
        let mut claims = entra_claims(tenant);
        claims["roles"] = json!(roles);
        keys().entra.sign(&claims)
    };
    let reviewer = with_roles(stranger, &["Pcq.Reviewer"]);
    let admin = with_roles(stranger, &["pcq.admin"]);
    for token in [&reviewer, &admin] {
        for (method, path) in [
            (Method::GET, "/_pcq/review/queue"),
            (Method::GET, "/_pcq/admin/clock"),
            (Method::POST, "/_pcq/admin/worker/drain"),
        ] {
            let fault = assert_fault(
                app.send(method.clone(), path, token, None).await,
                403,
                900150,
            )
            .await;
            assert!(fault.description.contains("Pcq."), "{path}: {fault:?}");
        }
        // Still a partner of its own.
        assert_eq!(app.customer_count_with(token).await, 0);
    }

    // The same roles for a tenant configured for the issuer are honoured.
    let reviewer = with_roles(operators, &["Pcq.Reviewer"]);
    let admin = with_roles(operators, &["Pcq.Admin", "Directory Readers"]);
    for token in [&reviewer, &admin] {
        let (status, body) = status_json(app.fetch("/_pcq/review/queue", token).await).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_fault(app.fetch("/_pcq/admin/clock", &reviewer).await, 403, 900150).await;
    let (status, body) = status_json(app.fetch("/_pcq/admin/clock", &admin).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Another issuer's token for that tenant: role_tenants belong to one issuer.
    let mut claims = file_claims(operators);
    claims["roles"] = json!(["Pcq.Admin"]);
    let file_admin = keys().ec.sign(&claims);
    assert_fault(
        app.fetch("/_pcq/admin/clock", &file_admin).await,
        403,
        900150,
    )
    .await;
    assert_eq!(app.customer_count_with(&file_admin).await, 0);

    // The development issuer grants the roles as before, to any tenant.
    let (status, body) =
        status_json(app.fetch("/_pcq/admin/clock", &app.admin_token()).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let dev_reviewer = app.token(pcq_server::auth::TokenSpec {
        roles: vec!["Pcq.Reviewer".into()],
        ..TestApp::spec(Uuid::new_v4())
    });
    let (status, body) = status_json(app.fetch("/_pcq/review/queue", &dev_reviewer).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// GovernmentCommunityCloud on the current endpoint needs a GDAP directory role.
async fn gcc_needs_a_gdap_role() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let code = app.issue_code(&partner, 10).await;
    let without = app.token(pcq_server::auth::TokenSpec {
        wids: vec![],
        ..TestApp::spec(partner.tenant)
    });
    let by_name = app.token(pcq_server::auth::TokenSpec {
        wids: vec![],
        roles: vec!["license administrator".into()],
        ..TestApp::spec(partner.tenant)
    });
    let other_wid = app.token(pcq_server::auth::TokenSpec {
        wids: vec!["62e90394-69f5-4237-9190-012177145e10".into()],
        ..TestApp::spec(partner.tenant)
    });
    let request = gcc(&code);
    let mut customers = Vec::new();
    for n in 0..4 {
        customers.push(
            app.create_customer(&partner, &format!("gdap{n}.example.gov"))
                .await,
        );
    }
    for token in [&without, &other_wid] {
        let fault = assert_fault(
            app.send_post(
                &format!("/v1/customers/{}/qualifications", customers[0]),
                token,
                &request,
            )
            .await,
            403,
            900150,
        )
        .await;
        assert_eq!(fault.error_name, "GdapRoleRequired");
        assert!(fault.description.contains("Directory Readers"));
    }
    // Nothing was taken from the code, nothing was set.
    let (_, qualifications) = status_json(
        app.fetch(
            &format!("/v1/customers/{}/qualifications", customers[0]),
            &partner.user,
        )
        .await,
    )
    .await;
    assert!(
        !qualifications
            .to_string()
            .contains("GovernmentCommunityCloud"),
        "{qualifications}"
    );
    // Education needs no directory role.
    let (status, body) = status_json(
        app.send_post(
            &format!("/v1/customers/{}/qualifications", customers[0]),
            &without,
            &json!({"qualification": "Education"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // A role name, or the template id (the default token has Directory Readers).
    for (token, customer) in [(&by_name, customers[1]), (&partner.user, customers[2])] {
        let (status, body) = status_json(
            app.send_post(
                &format!("/v1/customers/{customer}/qualifications"),
                token,
                &request,
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // The legacy endpoint asks for no GDAP role, as in Partner Center.
    let (status, body) = status_json(
        app.send(
            Method::PUT,
            &format!("/v1/customers/{}/qualification?code={code}", customers[3]),
            &without,
            Some(&json!("GovernmentCommunityCloud")),
        )
        .await,
    )
    .await;
    assert!(status.is_success(), "{status} {body}");

    // Switched off, any App+User token may.
    let open = TestApp::spawn_with(|c| c.auth.gcc_requires_gdap_role = false).await;
    let partner = open.partner();
    let code = open.issue_code(&partner, 1).await;
    let customer = open.create_customer(&partner, "open.example.gov").await;
    let without = open.token(pcq_server::auth::TokenSpec {
        wids: vec![],
        ..TestApp::spec(partner.tenant)
    });
    let (status, body) = status_json(
        open.send_post(
            &format!("/v1/customers/{customer}/qualifications"),
            &without,
            &gcc(&code),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// `auth.dev_issuer = "auto"` trusts development tokens on loopback only; explicit values win.
async fn the_development_issuer_follows_the_listen_address() {
    for (listen, setting, trusted) in [
        (
            "127.0.0.1:0",
            AutoBool::Auto(pcq_server::config::AutoWord::Auto),
            true,
        ),
        (
            "0.0.0.0:0",
            AutoBool::Auto(pcq_server::config::AutoWord::Auto),
            false,
        ),
        ("0.0.0.0:0", AutoBool::Set(true), true),
        ("127.0.0.1:0", AutoBool::Set(false), false),
    ] {
        let app = TestApp::spawn_with(|c| {
            c.listen = listen.parse().unwrap();
            c.auth.dev_issuer = setting;
        })
        .await;
        assert_eq!(
            app.state.dev_issuer.is_some(),
            trusted,
            "{listen} {setting:?}"
        );
        if !trusted {
            // The key in the data directory would sign it; the node does not trust it.
            let key = pcq_server::auth::DevIssuer::load_or_create(&app.data_dir).unwrap();
            let token = key.mint(&TestApp::spec(Uuid::new_v4())).unwrap();
            let fault = assert_fault(app.fetch("/v1/customers", &token).await, 401, 400).await;
            assert!(fault.description.contains("issuer"), "{fault:?}");
        }
    }
}

crate::common::backend_tests!(
    tokens_of_configured_providers_are_accepted,
    forged_and_invalid_tokens_never_reach_a_handler,
    external_tokens_get_the_routes_their_claims_allow,
    key_rotation_refetches_within_the_rate_limit,
    requests_never_wait_for_a_key_refresh,
    roles_of_external_issuers_count_only_for_configured_tenants,
    unreachable_or_invalid_key_sources,
    gcc_needs_a_gdap_role,
    the_development_issuer_follows_the_listen_address,
);
