//! Customer fields are bounded: each text property of the company and billing profiles has a
//! most number of characters, and the properties pcq keeps as sent a most number of bytes.

use crate::common::{TestApp, assert_fault};
use reqwest::StatusCode;
use serde_json::{Map, Value, json};

/// Where a limited property sits, and its most characters (docs/errors.md lists them).
pub(crate) const LIMITS: &[(&[&str], usize)] = &[
    (&["companyProfile", "companyName"], 256),
    (&["companyProfile", "organizationRegistrationNumber"], 64),
    (&["billingProfile", "firstName"], 50),
    (&["billingProfile", "lastName"], 50),
    (&["billingProfile", "email"], 254),
    (&["billingProfile", "culture"], 35),
    (&["billingProfile", "language"], 35),
    (&["billingProfile", "companyName"], 256),
    (&["billingProfile", "defaultAddress", "firstName"], 50),
    (&["billingProfile", "defaultAddress", "lastName"], 50),
    (&["billingProfile", "defaultAddress", "addressLine1"], 200),
    (&["billingProfile", "defaultAddress", "addressLine2"], 200),
    (&["billingProfile", "defaultAddress", "addressLine3"], 200),
    (&["billingProfile", "defaultAddress", "city"], 128),
    (&["billingProfile", "defaultAddress", "state"], 2),
    (&["billingProfile", "defaultAddress", "postalCode"], 32),
    (&["billingProfile", "defaultAddress", "country"], 2),
    (&["billingProfile", "defaultAddress", "region"], 64),
    (&["billingProfile", "defaultAddress", "phoneNumber"], 40),
];

/// Bytes of JSON (keys and values) the other properties of a profile, its own and its address's,
/// may take together.
pub(crate) const MAX_OTHER_BYTES: usize = 4096;

/// Puts `value` at `path` of `body`.
fn set(body: &mut Value, path: &[&str], value: Value) {
    let (last, parents) = path.split_last().unwrap();
    let mut at = body;
    for key in parents {
        at = at
            .as_object_mut()
            .unwrap()
            .entry(*key)
            .or_insert_with(|| Value::Object(Map::new()));
    }
    at.as_object_mut()
        .unwrap()
        .insert((*last).to_owned(), value);
}

/// The largest customer pcq accepts, as near as it gets: every limited property at its limit in
/// four-byte characters, and other properties just under their bound.
pub(crate) fn largest_customer(domain: &str) -> Value {
    let mut body = json!({"companyProfile": {"domain": domain}});
    for (path, max) in LIMITS {
        set(&mut body, path, json!("😀".repeat(*max)));
    }
    // Counted as its key and value in JSON: `"note"` and the text's quotes are 8 bytes.
    set(
        &mut body,
        &["billingProfile", "note"],
        json!("n".repeat(MAX_OTHER_BYTES - 8)),
    );
    body
}

async fn customers_with_every_field_at_its_limit_are_created() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let resp = app
        .send_post(
            "/v1/customers",
            &partner.user,
            &largest_customer("largest.example.com"),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(
        created["billingProfile"]["defaultAddress"]["city"],
        "😀".repeat(128)
    );
}

async fn an_over_long_field_is_400_naming_it_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    for (path, max) in LIMITS {
        let field = path.join(".");
        for long in [
            "x".repeat(max + 1),
            "é".repeat(max + 1),
            " ".repeat(max + 1),
        ] {
            let mut body = json!({"companyProfile": {"domain": "long.example.com"}});
            set(&mut body, path, json!(long));
            let resp = app.send_post("/v1/customers", &partner.user, &body).await;
            let fault = assert_fault(resp, 400, 800002).await;
            assert_eq!(fault.error_name, "InvalidRequestInput", "{field}");
            assert_eq!(fault.parameters["field"], field, "{fault:?}");
            assert!(
                fault.description.contains(&field) && fault.description.contains(&max.to_string()),
                "{fault:?}"
            );
        }
    }
    // The same through a PascalCase body, as the .NET SDK sends it.
    let resp = app
        .send_post(
            "/v1/customers",
            &partner.user,
            &json!({"CompanyProfile": {"Domain": "long.example.com"},
                    "BillingProfile": {"DefaultAddress": {"City": "c".repeat(129)}}}),
        )
        .await;
    let fault = assert_fault(resp, 400, 800002).await;
    assert_eq!(
        fault.parameters["field"],
        "billingProfile.defaultAddress.city"
    );
    // A 1 MB company name, as a body within the size limit.
    let resp = app
        .send_post(
            "/v1/customers",
            &partner.user,
            &json!({"companyProfile": {"domain": "huge.example.com", "companyName": "x".repeat(1_000_000)}}),
        )
        .await;
    let fault = assert_fault(resp, 400, 800002).await;
    assert_eq!(fault.parameters["field"], "companyProfile.companyName");
    // Properties pcq keeps as sent are bounded together, nested ones included.
    for (profile, other) in [
        (
            "companyProfile",
            json!({"note": "n".repeat(MAX_OTHER_BYTES)}),
        ),
        (
            "billingProfile",
            json!({"note": "n".repeat(MAX_OTHER_BYTES)}),
        ),
        (
            "billingProfile",
            json!({"defaultAddress": {"note": "n".repeat(MAX_OTHER_BYTES)}}),
        ),
        ("billingProfile", json!({"tags": vec!["n".repeat(100); 50]})),
    ] {
        let mut body = json!({"companyProfile": {"domain": "other.example.com"}});
        for (key, value) in other.as_object().unwrap() {
            set(&mut body, &[profile, key], value.clone());
        }
        let resp = app.send_post("/v1/customers", &partner.user, &body).await;
        let fault = assert_fault(resp, 400, 800002).await;
        assert_eq!(fault.parameters["field"], profile, "{fault:?}");
        assert!(
            fault.description.contains(&MAX_OTHER_BYTES.to_string()),
            "{fault:?}"
        );
    }
    // A limited property must be text.
    let resp = app
        .send_post(
            "/v1/customers",
            &partner.user,
            &json!({"companyProfile": {"domain": "typed.example.com"},
                    "billingProfile": {"email": {"big": "x".repeat(10_000)}}}),
        )
        .await;
    let fault = assert_fault(resp, 400, 800002).await;
    assert_eq!(fault.parameters["field"], "billingProfile.email");

    // None of them was stored, nor audited.
    assert_eq!(app.customer_count(&partner).await, 0);
    assert!(app.audit(&partner, "").await.is_empty());
}

crate::common::backend_tests!(
    customers_with_every_field_at_its_limit_are_created,
    an_over_long_field_is_400_naming_it_and_nothing_is_stored,
);
