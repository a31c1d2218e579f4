//! Audit records: one per change, in the Partner Center shape, only the caller's own.

use crate::common::{TestApp, assert_fault, status_json, urlencode};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn operations(records: &[Value]) -> Vec<(String, String)> {
    records
        .iter()
        .map(|r| {
            (
                r["operationType"].as_str().unwrap().to_owned(),
                r["operationStatus"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn every_step_leaves_an_audit_record() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customer = app.create_customer(&partner, "audited.example.edu").await;
    app.post_qualification(
        &partner,
        customer,
        &json!({"qualification": "Education", "educationSegment": "K12"}),
    )
    .await;
    let resp = app
        .send_post(
            &format!("/_pcq/review/customers/{customer}/qualifications/Education/decision"),
            &app.reviewer_token(),
            &json!({"decision": "Denied", "reason": "Not an Academic Domain"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    app.post_qualification(&partner, customer, &json!({"qualification": "Education"}))
        .await;
    app.set_policy(json!({"policy": "immediate"})).await;
    app.drain().await;

    let records = app.audit(&partner, "").await;
    assert_eq!(
        operations(&records),
        [
            ("add_customer".to_owned(), "succeeded".to_owned()),
            (
                "update_customer_qualification".to_owned(),
                "progress".to_owned()
            ),
            (
                "update_customer_qualification".to_owned(),
                "succeeded".to_owned()
            ),
            (
                "update_customer_qualification".to_owned(),
                "progress".to_owned()
            ),
            (
                "update_customer_qualification".to_owned(),
                "succeeded".to_owned()
            ),
        ]
    );
    let created = &records[0];
    assert_eq!(created["partnerId"], partner.tenant.to_string());
    assert_eq!(created["customerId"], customer.to_string());
    assert_eq!(created["customerName"], "Test Co");
    assert_eq!(created["resourceType"], "customer");
    assert_eq!(
        created["userPrincipalName"],
        "agent@partner.onmicrosoft.com"
    );
    assert_eq!(
        created["applicationId"],
        pcq_server::auth::dev_issuer::DEV_APP_ID
    );
    assert_eq!(created["attributes"], json!({"objectType": "AuditRecord"}));
    let new_customer: Value =
        serde_json::from_str(created["resourceNewValue"].as_str().unwrap()).unwrap();
    assert_eq!(
        new_customer["companyProfile"]["domain"],
        "audited.example.edu"
    );
    assert!(
        created["id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}_{}_addcustomer_", partner.tenant, customer))
    );

    let denial = &records[2];
    let old: Value = serde_json::from_str(denial["resourceOldValue"].as_str().unwrap()).unwrap();
    let new: Value = serde_json::from_str(denial["resourceNewValue"].as_str().unwrap()).unwrap();
    assert_eq!(old["vettingStatus"], "InReview");
    assert_eq!(
        (new["vettingStatus"].as_str(), new["vettingReason"].as_str()),
        (Some("Denied"), Some("Not an Academic Domain"))
    );
    assert!(
        denial["customizedData"]
            .as_array()
            .unwrap()
            .contains(&json!({"key": "VettingReason", "value": "Not an Academic Domain"}))
    );
    assert_eq!(
        records[4]["applicationId"], "pcq-vetting",
        "the policy's decision"
    );
    assert!(records[4].get("userPrincipalName").is_none());
    let date = records[0]["operationDate"].as_str().unwrap();
    assert!(pcq_core::time::Timestamp::parse_rfc3339(date).is_some() && date.ends_with('Z'));

    // Each record can be fetched by its id; nobody else's can.
    let id = records[2]["id"].as_str().unwrap();
    let resp = app
        .fetch(&format!("/v1/auditrecords/{id}"), &partner.user)
        .await;
    assert_eq!(
        status_json(resp).await,
        (StatusCode::OK, records[2].clone())
    );
    let other = app.partner();
    let resp = app
        .fetch(&format!("/v1/auditrecords/{id}"), &other.user)
        .await;
    assert_fault(resp, 404, 1000).await;
    assert_eq!(app.audit(&other, "").await, Vec::<Value>::new());
}

async fn filters_dates_and_pages() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let first = app.create_customer(&partner, "one.example.edu").await;
    let second = app.create_customer(&partner, "fabrikam.example.com").await;
    app.post_qualification(&partner, first, &json!({"qualification": "Education"}))
        .await;
    app.post_qualification(
        &partner,
        second,
        &json!({"qualification": "StateOwnedEntity"}),
    )
    .await;
    let filter = |field: &str, value: &str, operator: &str| {
        let filter = json!({"Field": field, "Value": value, "Operator": operator});
        format!("filter={}", urlencode(&filter.to_string()))
    };
    let today = app.state.pipeline.now().to_rfc3339()[..10].to_owned();
    let (y, m, d) = (&today[..4], &today[5..7], &today[8..10]);
    let us = format!(
        "{}/{}/{y}",
        m.trim_start_matches('0'),
        d.trim_start_matches('0')
    );
    for (query, expected) in [
        (String::new(), 4),
        (format!("customerId={first}"), 2),
        ("operationType=add_customer".to_owned(), 2),
        (filter("CustomerId", &second.to_string(), "equals"), 2),
        (filter("CompanyName", "test", "substring"), 4),
        (filter("CompanyName", "TEST CO", "equals"), 4),
        (filter("CompanyName", "test", "equals"), 0),
        // LIKE wildcards in the value are taken literally.
        (filter("CompanyName", "%", "substring"), 0),
        // Dates: today is in, yesterday is not; documented forms are accepted.
        (format!("startDate={today}&endDate={today}"), 4),
        ("startDate=2020-01-01&endDate=2020-01-02".to_owned(), 0),
        (
            format!("startDate={}", urlencode(&format!("{us} 12:00:00 AM"))),
            4,
        ),
    ] {
        let records = app.audit(&partner, &query).await;
        assert_eq!(records.len(), expected, "{query}");
        if query.contains("CustomerId") {
            assert!(
                records
                    .iter()
                    .all(|r| r["customerId"] == second.to_string())
            );
        }
    }
    // Records older than the default window of 30 days are left out unless asked for.
    app.advance("31d").await;
    assert_eq!(app.audit(&partner, "").await.len(), 0);
    assert_eq!(app.audit(&partner, "startDate=2000-01-01").await.len(), 4);

    // Pages of three.
    let resp = app
        .fetch("/v1/auditrecords?startDate=2000-01-01&size=3", &partner.app)
        .await;
    let (_, page) = status_json(resp).await;
    assert_eq!(page["totalCount"], 3);
    let token = page["links"]["next"]["headers"][0]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    // The next link is followed as given (it carries seekOperation=Next).
    let next = page["links"]["next"]["uri"].as_str().unwrap().to_owned();
    assert_eq!(next.matches("seekOperation=Next").count(), 1, "{next}");
    let resp = app
        .get(&next, &partner.app)
        .header("MS-ContinuationToken", token)
        .send()
        .await
        .unwrap();
    let (_, rest) = status_json(resp).await;
    assert_eq!(rest["totalCount"], 1);
    assert!(rest.get("continuationToken").is_none());
    let own = rest["links"]["self"]["uri"].as_str().unwrap();
    assert!(!own.contains("seekOperation"), "{own}");

    for bad in [
        "startDate=yesterday",
        "endDate=2020-13-01",
        "customerId=x",
        "filter=%7B",
        "filter=%7B%22Field%22%3A%22Colour%22%2C%22Value%22%3A%22x%22%7D",
        "size=0",
        "startDate=2026-03-02&endDate=2026-03-01",
    ] {
        let resp = app
            .fetch(&format!("/v1/auditrecords?{bad}"), &partner.app)
            .await;
        assert!(
            resp.status() == StatusCode::BAD_REQUEST,
            "{bad}: {}",
            resp.status()
        );
    }
}

crate::common::backend_tests!(every_step_leaves_an_audit_record, filters_dates_and_pages,);
