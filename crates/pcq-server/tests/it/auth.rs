//! Authentication and the credential matrix (SPEC §2) with the development issuer.

use crate::common::{AUDIENCE, TestApp, assert_fault, status_json};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pcq_server::auth::TokenSpec;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn missing_or_bad_tokens_are_401_with_www_authenticate() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let expired = app.token(TokenSpec {
        ttl_seconds: -60,
        ..TestApp::spec(partner.tenant)
    });
    let other_issuer = {
        let stranger = pcq_server::auth::DevIssuer::ephemeral().unwrap();
        stranger.mint(&TestApp::spec(partner.tenant)).unwrap()
    };
    let tampered = {
        let mut parts: Vec<String> = partner.user.split('.').map(str::to_owned).collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        claims["tid"] = json!(uuid::Uuid::new_v4().to_string());
        parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
        parts.join(".")
    };
    let issuer = app.state.dev_issuer.as_ref().unwrap();
    let claims = json!({"aud": AUDIENCE, "iss": "urn:pcq:dev-issuer", "tid": partner.tenant.to_string(),
        "exp": time::OffsetDateTime::now_utc().unix_timestamp() + 600, "scp": "user_impersonation"});
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD
            .encode(json!({"alg": "none", "typ": "JWT", "kid": issuer.kid()}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let hmac_with_public_key = {
        let public = URL_SAFE_NO_PAD
            .decode(issuer.jwk()["x"].as_str().unwrap())
            .unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(issuer.kid().to_owned());
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&public),
        )
        .unwrap()
    };
    let cases: Vec<(Option<String>, u64, &str)> = vec![
        (Some(format!("Bearer {alg_none}")), 400, "alg none"),
        (
            Some(format!("Bearer {hmac_with_public_key}")),
            400,
            "HMAC with the public key",
        ),
        (None, 800001, "no header"),
        (Some("Basic dXNlcjpwYXNz".into()), 400, "wrong scheme"),
        (Some("Bearer".into()), 800001, "empty bearer"),
        (Some("Bearer not-a-jwt".into()), 400, "malformed"),
        (Some(format!("Bearer {expired}")), 400, "expired"),
        (Some(format!("Bearer {other_issuer}")), 400, "unknown key"),
        (Some(format!("Bearer {tampered}")), 400, "tampered payload"),
    ];
    for (header, code, what) in cases {
        let mut req = app.anon(Method::GET, "/v1/customers");
        if let Some(h) = &header {
            req = req.header("Authorization", h);
        }
        let resp = req.send().await.unwrap();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let fault = assert_fault(resp, 401, code).await;
        let challenge = challenge.unwrap_or_else(|| panic!("{what}: no WWW-Authenticate"));
        assert!(
            challenge.starts_with("Bearer realm=\"pcq\""),
            "{what}: {challenge}"
        );
        let expected_error = match what {
            "no header" | "empty bearer" => None,
            "wrong scheme" => Some("error=\"invalid_request\""),
            _ => Some("error=\"invalid_token\""),
        };
        match expected_error {
            None => assert!(!challenge.contains("error="), "{what}: {challenge}"),
            Some(e) => assert!(challenge.contains(e), "{what}: {challenge}"),
        }
        if what == "expired" {
            assert!(fault.description.contains("expired"), "{fault:?}");
        }
    }
}

async fn wrong_audience_is_401_900420() {
    let app = TestApp::spawn().await;
    let tenant = uuid::Uuid::new_v4();
    let token = app.token(TokenSpec {
        audience: "https://graph.windows.net".into(),
        ..TestApp::spec(tenant)
    });
    let resp = app.fetch("/v1/customers", &token).await;
    let fault = assert_fault(resp, 401, 900420).await;
    assert!(fault.description.contains("https://graph.windows.net"));
    // A trailing slash is the same audience.
    let token = app.token(TokenSpec {
        audience: format!("{AUDIENCE}/"),
        ..TestApp::spec(tenant)
    });
    assert_eq!(
        app.fetch("/v1/customers", &token).await.status(),
        StatusCode::OK
    );
}

async fn configured_audience_is_enforced() {
    let app = TestApp::spawn_with(|c| c.auth.audience = "api://pcq-sandbox".into()).await;
    let tenant = uuid::Uuid::new_v4();
    let default_aud = app.token(TestApp::spec(tenant));
    assert_fault(app.fetch("/v1/customers", &default_aud).await, 401, 900420).await;
    let token = app.token(TokenSpec {
        audience: "api://pcq-sandbox".into(),
        ..TestApp::spec(tenant)
    });
    assert_eq!(
        app.fetch("/v1/customers", &token).await.status(),
        StatusCode::OK
    );
}

async fn app_only_credentials_read_but_cannot_set_qualifications() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customer = app.create_customer(&partner, "apponly.example.edu").await;

    // App-only may create and read customers and read qualifications and codes.
    let resp = app
        .send_post(
            "/v1/customers",
            &partner.app,
            &json!({"companyProfile": {"domain": "byapp.example.com"}}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    for path in [
        "/v1/customers".to_owned(),
        format!("/v1/customers/{customer}"),
        format!("/v1/customers/{customer}/qualifications"),
        format!("/v1/customers/{customer}/qualification"),
        "/v1/customers/all/validations".to_owned(),
    ] {
        assert_eq!(
            app.fetch(&path, &partner.app).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }

    // It may not set qualifications, on either contract; nothing is stored.
    let resp = app
        .send_post(
            &format!("/v1/customers/{customer}/qualifications"),
            &partner.app,
            &json!({"qualification": "Education"}),
        )
        .await;
    let fault = assert_fault(resp, 403, 900150).await;
    assert_eq!(
        fault.description,
        "This resource can't be accessed by application credentials."
    );
    let resp = app
        .send(
            Method::PUT,
            &format!("/v1/customers/{customer}/qualification"),
            &partner.app,
            Some(&json!("Education")),
        )
        .await;
    assert_fault(resp, 403, 900150).await;
    assert_eq!(app.qualifications(&partner, customer).await, []);
}

async fn app_only_is_rejected_before_the_body_is_read() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customer = app.create_customer(&partner, "order.example.com").await;
    let resp = app
        .req(
            Method::POST,
            &format!("/v1/customers/{customer}/qualifications"),
            &partner.app,
        )
        .header("Content-Type", "text/plain")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_fault(resp, 403, 900150).await;
    let resp = app
        .anon(
            Method::POST,
            &format!("/v1/customers/{customer}/qualifications"),
        )
        .header("Content-Type", "text/plain")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_fault(resp, 401, 800001).await;
}

/// Claims checks on tokens correctly signed by a trusted key.
async fn signed_tokens_with_bad_claims_are_rejected() {
    let app = TestApp::spawn().await;
    let issuer = app.state.dev_issuer.as_ref().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let tenant = uuid::Uuid::new_v4().to_string();
    let good = json!({"aud": AUDIENCE, "iss": "urn:pcq:dev-issuer", "tid": tenant, "exp": now + 600,
                      "nbf": now - 10, "scp": "user_impersonation", "upn": "a@b.c"});
    let sign = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut claims = good.clone();
        change(&mut claims);
        issuer.sign(&claims).unwrap()
    };
    assert_eq!(
        app.fetch("/v1/customers", &sign(&|_| {})).await.status(),
        StatusCode::OK
    );
    type Change = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Change, u64)> = vec![
        (
            "no tid",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("tid");
            }),
            400,
        ),
        (
            "tid not a GUID",
            Box::new(|c| c["tid"] = json!("contoso")),
            400,
        ),
        (
            "no aud",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
            400,
        ),
        (
            "no exp",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            400,
        ),
        (
            "nbf in the future",
            Box::new(move |c| c["nbf"] = json!(now + 600)),
            400,
        ),
        (
            "other issuer",
            Box::new(|c| c["iss"] = json!("https://sts.windows.net/x/")),
            400,
        ),
        (
            "audience list without ours",
            Box::new(|c| c["aud"] = json!(["api://a", "api://b"])),
            900420,
        ),
    ];
    for (what, change, code) in cases {
        let resp = app.fetch("/v1/customers", &sign(&*change)).await;
        let fault = assert_fault(resp, 401, code).await;
        if what.starts_with("no tid") || what.starts_with("tid") {
            assert!(fault.description.contains("tid"), "{what}: {fault:?}");
        }
    }
    // An audience list that includes ours is fine.
    let listed = sign(&|c| c["aud"] = json!(["api://other", AUDIENCE]));
    assert_eq!(
        app.fetch("/v1/customers", &listed).await.status(),
        StatusCode::OK
    );
}

/// App+User versus App-only, as Entra ID tokens tell them apart.
async fn credential_kind_follows_the_claims() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customer = app.create_customer(&partner, "kinds.example.com").await;
    let issuer = app.state.dev_issuer.as_ref().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let base = json!({"aud": AUDIENCE, "iss": "urn:pcq:dev-issuer", "tid": partner.tenant.to_string(), "exp": now + 600});
    let with = |extra: serde_json::Value| {
        let mut claims = base.clone();
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        issuer.sign(&claims).unwrap()
    };
    let cases = [
        (
            json!({"scp": "user_impersonation", "upn": "u@p.com"}),
            StatusCode::CREATED,
        ),
        (json!({"roles": ["Partner.Read"]}), StatusCode::FORBIDDEN),
        (
            json!({"idtyp": "app", "scp": "user_impersonation"}),
            StatusCode::FORBIDDEN,
        ),
        (json!({}), StatusCode::FORBIDDEN),
        (json!({"scp": " "}), StatusCode::FORBIDDEN),
    ];
    for (extra, want) in cases {
        let body = json!({"qualification": "StateOwnedEntity"});
        let resp = app
            .send_post(
                &format!("/v1/customers/{customer}/qualifications"),
                &with(extra.clone()),
                &body,
            )
            .await;
        assert_eq!(resp.status(), want, "{extra}");
    }
}

async fn admin_routes_need_the_admin_role() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let path = format!("/_pcq/admin/partners/{}/validation-codes", partner.tenant);
    let body = json!({"organizationName": "Contoso", "maxCreates": 2});
    for token in [
        partner.user.clone(),
        partner.app.clone(),
        app.token(TokenSpec {
            roles: vec!["Pcq.Reviewer".into()],
            ..TestApp::spec(partner.tenant)
        }),
    ] {
        let resp = app.send_post(&path, &token, &body).await;
        let fault = assert_fault(resp, 403, 900150).await;
        assert!(fault.description.contains("Pcq.Admin"));
    }
    assert_eq!(app.codes(&partner).await, []);
    let admin_app_only = app.token(TokenSpec {
        user: None,
        roles: vec!["Pcq.Admin".into()],
        ..TestApp::spec(uuid::Uuid::new_v4())
    });
    let (status, code) = status_json(app.send_post(&path, &admin_app_only, &body).await).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(code["partnerId"], partner.tenant.to_string());
    assert_eq!(app.codes_json(&partner).await, json!([code]));

    let resp = app
        .send_post(
            "/_pcq/admin/partners/not-a-guid/validation-codes",
            &admin_app_only,
            &body,
        )
        .await;
    assert_fault(resp, 400, 800002).await;
}

async fn the_development_issuer_can_be_switched_off() {
    let app =
        TestApp::spawn_with(|c| c.auth.dev_issuer = pcq_server::config::AutoBool::Set(false)).await;
    // The key this node would sign with if the issuer were on.
    let config = app.state.config.clone();
    let issuer = pcq_server::tool_dev_issuer(&config).await.unwrap();
    let token = issuer.mint(&TestApp::spec(uuid::Uuid::new_v4())).unwrap();
    assert_fault(app.fetch("/v1/customers", &token).await, 401, 400).await;
}

crate::common::backend_tests!(
    missing_or_bad_tokens_are_401_with_www_authenticate,
    wrong_audience_is_401_900420,
    configured_audience_is_enforced,
    app_only_credentials_read_but_cannot_set_qualifications,
    app_only_is_rejected_before_the_body_is_read,
    signed_tokens_with_bad_claims_are_rejected,
    credential_kind_follows_the_claims,
    admin_routes_need_the_admin_role,
    the_development_issuer_can_be_switched_off,
);
