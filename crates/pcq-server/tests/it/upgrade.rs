//! Upgrading a database written by an earlier pcq: what the migrations carry over.

use std::borrow::Cow;

use crate::common::{Partner, TestApp, test_config};
use pcq_core::VettingStatus;
use serde_json::json;
use sqlx::Connection;
use uuid::Uuid;

/// A database as pcq left it at schema version 2, holding an Education request that is
/// InReview without a pending decision (as every request made before version 2 was) and an
/// audit record of a customer whose name is not ASCII.
async fn version_2_database(path: &std::path::Path, partner: Uuid, customer: Uuid) {
    let mut migrator = sqlx::migrate!("./migrations/sqlite");
    migrator.migrations = Cow::Owned(migrator.migrations[..2].to_vec());
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    migrator.run(&mut conn).await.unwrap();
    let now = pcq_core::time::Timestamp::from_datetime(time::OffsetDateTime::now_utc()).as_micros();
    sqlx::query(
        "INSERT INTO customers (id, partner_tenant_id, commerce_id, domain, company_name, \
         company_profile, billing_profile, billing_profile_id, created_at) \
         VALUES ($1, $2, $3, 'ecole.example.fr', 'École Été', '{}', NULL, $4, $5)",
    )
    .bind(customer.to_string())
    .bind(partner.to_string())
    .bind(Uuid::new_v4().to_string())
    .bind(Uuid::new_v4().to_string())
    .bind(now)
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO customer_qualifications (customer_id, qualification, vetting_status, \
         vetting_reason, vetting_create_date, education_segment, website, validation_id, round, \
         created_at, updated_at) \
         VALUES ($1, 'Education', 'InReview', NULL, $2, NULL, NULL, NULL, 1, $2, $2)",
    )
    .bind(customer.to_string())
    .bind(now)
    .execute(&mut conn)
    .await
    .unwrap();
    for (id, name) in [("a1", "École Été"), ("a2", "Contoso")] {
        sqlx::query(
            "INSERT INTO audit_records (id, partner_tenant_id, customer_id, customer_name, \
             resource_type, operation_type, operation_date, operation_status, customized_data) \
             VALUES ($1, $2, $3, $4, 'customer', 'add_customer', $5, 'succeeded', '[]')",
        )
        .bind(id)
        .bind(partner.to_string())
        .bind(customer.to_string())
        .bind(name)
        .bind(now)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn.close().await.unwrap();
}

#[tokio::test]
async fn requests_and_audit_records_from_version_2_carry_over() {
    let dir = tempfile::tempdir().unwrap();
    let partner_id = Uuid::new_v4();
    let customer = Uuid::new_v4();
    version_2_database(
        &dir.path().join(pcq_server::DATABASE_FILE),
        partner_id,
        customer,
    )
    .await;

    let app = TestApp::start(test_config(dir.path())).await;
    let partner = Partner {
        tenant: partner_id,
        user: app.user_token(partner_id),
        app: app.app_token(partner_id),
    };
    // The old request got a pending decision: the policy in force now decides it.
    app.set_policy(json!({"policy": "immediate"})).await;
    assert_eq!(app.drain().await["vettingDecisions"], 1);
    let quals = app.qualifications(&partner, customer).await;
    assert_eq!(
        quals[0].vetting_status,
        Some(VettingStatus::Approved),
        "{quals:?}"
    );

    // Names are matched case-insensitively, also outside ASCII.
    for (operator, value, expected) in [
        ("equals", "école été", 1),
        ("substring", "ÉCOLE", 1),
        ("equals", "contoso", 1),
        ("substring", "o", 2),
    ] {
        let filter =
            json!({"Field": "CompanyName", "Value": value, "Operator": operator}).to_string();
        let mut url = reqwest::Url::parse("http://x/?startDate=2000-01-01").unwrap();
        url.query_pairs_mut().append_pair("filter", &filter);
        let records = app.audit(&partner, url.query().unwrap()).await;
        let old: Vec<_> = records
            .iter()
            .filter(|r| r["id"] == "a1" || r["id"] == "a2")
            .collect();
        assert_eq!(old.len(), expected, "{operator} {value}: {records:?}");
    }
}
