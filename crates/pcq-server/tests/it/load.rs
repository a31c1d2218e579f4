//! Bulk loading (`pcq admin load`): generated customers are stored as if created through the
//! API, with their qualification and one history step, on both backends.

use crate::common::{TestApp, status_json};
use pcq_core::{Qualification, VettingStatus};
use pcq_server::service::load::{BulkLoad, LOAD_ACTOR, LoadedQualification};
use pcq_test_support::list_customers;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn loaded_customers_are_like_created_ones() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let other = app.partner();
    let now = app.state.pipeline.now();
    // More rows than one statement takes, in two transactions.
    for (first, count) in [(0, 700), (700, 600)] {
        let load = BulkLoad::generate(
            partner.tenant,
            "t1",
            first,
            count,
            LoadedQualification::Education,
            now,
        );
        assert_eq!(load.rows(), 3 * count as usize);
        app.state.pipeline.write(load).await.unwrap();
    }
    let sov = BulkLoad::generate(
        other.tenant,
        "t2",
        0,
        3,
        LoadedQualification::StateOwnedEntity,
        now,
    );
    app.state.pipeline.write(sov).await.unwrap();

    let customers = list_customers(&app.client, &app.base, &partner.user).await;
    assert_eq!(customers.len(), 1300);
    assert_eq!(
        list_customers(&app.client, &app.base, &other.user)
            .await
            .len(),
        3
    );
    let some = &customers[777];
    let id: uuid::Uuid = some["id"].as_str().unwrap().parse().unwrap();
    let domain = some["companyProfile"]["domain"].as_str().unwrap();
    assert!(domain.ends_with("-t1.load.example.edu"), "{some}");
    assert!(
        some["companyProfile"]["companyName"]
            .as_str()
            .unwrap()
            .starts_with("Loaded Customer ")
    );

    // The customer reads like any other, with its approved Education qualification and one
    // history step.
    let raw = app
        .fetch(&format!("/v1/customers/{id}"), &partner.user)
        .await;
    assert_eq!(raw.status(), StatusCode::OK);
    let text = raw.text().await.unwrap();
    assert_eq!(text.matches("\"companyName\"").count(), 1, "{text}");
    let customer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(customer["companyProfile"]["domain"], domain);
    let qualifications = app.qualifications(&partner, id).await;
    assert_eq!(qualifications.len(), 1, "{qualifications:?}");
    assert_eq!(qualifications[0].qualification, Qualification::Education);
    assert_eq!(
        qualifications[0].vetting_status,
        Some(VettingStatus::Approved)
    );
    let (status, history) = status_json(
        app.fetch(
            &format!("/_pcq/customers/{id}/qualifications/history"),
            &partner.user,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert!(history.to_string().contains(LOAD_ACTOR), "{history}");

    // The domains are taken like created ones: creating one again is refused.
    let (status, body) = status_json(
        app.send_post(
            "/v1/customers",
            &partner.user,
            &json!({"companyProfile": {"domain": domain}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // A load that collides with existing rows fails whole.
    let again = BulkLoad::generate(
        partner.tenant,
        "t1",
        1299,
        2,
        LoadedQualification::None,
        now,
    );
    assert!(app.state.pipeline.write(again).await.is_err());
    assert_eq!(
        list_customers(&app.client, &app.base, &partner.user)
            .await
            .len(),
        1300
    );
}

crate::common::backend_tests!(loaded_customers_are_like_created_ones);
