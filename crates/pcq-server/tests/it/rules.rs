//! The business rules of SPEC §1, each through HTTP, with the stored state checked after every
//! rejected request.

use crate::common::{TestApp, assert_fault, gcc, status_json};
use pcq_core::Qualification;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn none_nonprofit_and_unknown_values_are_400_900126_naming_the_value() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customer = app.create_customer(&partner, "values.example.org").await;
    for value in [
        json!("None"),
        json!("Nonprofit"),
        json!("nonprofit"),
        json!(0),
        json!(2),
        json!("Bogus"),
        json!(7),
    ] {
        let resp = app
            .post_qualification(&partner, customer, &json!({"qualification": value}))
            .await;
        let fault = assert_fault(resp, 400, 900126).await;
        let shown = match &value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let description = fault.description.to_ascii_lowercase();
        assert!(
            description.contains(&shown.to_ascii_lowercase())
                || (shown == "0" && description.contains("none"))
                || (shown == "2" && description.contains("nonprofit")),
            "{value}: {description}"
        );
    }
    let resp = app
        .post_qualification(
            &partner,
            customer,
            &json!({"qualification": "Education", "educationSegment": "University"}),
        )
        .await;
    let fault = assert_fault(resp, 400, 900126).await;
    assert!(fault.description.contains("University"));
    assert_eq!(app.qualifications(&partner, customer).await, []);
}

async fn contract_2021_accepts_education_alone_2023_requires_segment() {
    let old = TestApp::spawn().await;
    let partner = old.partner();
    let customer = old.create_customer(&partner, "c2021.example.edu").await;
    let resp = old
        .post_qualification(&partner, customer, &json!({"qualification": "Education"}))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    let new = TestApp::spawn_with(|c| c.contract = pcq_core::Contract::V2023).await;
    let partner = new.partner();
    let customer = new.create_customer(&partner, "c2023.example.edu").await;
    let resp = new
        .post_qualification(&partner, customer, &json!({"qualification": "Education"}))
        .await;
    let fault = assert_fault(resp, 400, 800002).await;
    assert_eq!(fault.error_name, "EducationSegmentRequired");
    assert_eq!(new.qualifications(&partner, customer).await, []);
    let resp = new
        .post_qualification(
            &partner,
            customer,
            &json!({"qualification": "Education", "educationSegment": "K12"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
}

async fn education_and_gcc_exclude_each_other_soe_stacks() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let code = app.issue_code(&partner, 5).await;

    let edu = app.create_customer(&partner, "edu-first.example.edu").await;
    assert_eq!(
        app.post_qualification(&partner, edu, &json!({"qualification": "Education"}))
            .await
            .status(),
        201
    );
    let resp = app.post_qualification(&partner, edu, &gcc(&code)).await;
    let fault = assert_fault(resp, 409, 950409).await;
    assert_eq!(fault.error_name, "QualificationConflict");
    assert_eq!(
        app.codes(&partner).await[0].remaining_creates,
        5,
        "a rejected GCC uses no create"
    );
    assert_eq!(
        app.post_qualification(&partner, edu, &json!({"qualification": "StateOwnedEntity"}))
            .await
            .status(),
        201
    );

    let gcc_customer = app.create_customer(&partner, "gcc-first.example.gov").await;
    let resp = app
        .post_qualification(&partner, gcc_customer, &gcc(&code))
        .await;
    assert_eq!(resp.status(), 201);
    let resp = app
        .post_qualification(
            &partner,
            gcc_customer,
            &json!({"qualification": "Education"}),
        )
        .await;
    assert_fault(resp, 409, 950409).await;
    assert_eq!(
        app.post_qualification(
            &partner,
            gcc_customer,
            &json!({"qualification": "StateOwnedEntity"})
        )
        .await
        .status(),
        201
    );

    let quals = app.qualifications(&partner, gcc_customer).await;
    let names: Vec<Qualification> = quals.iter().map(|q| q.qualification).collect();
    assert_eq!(
        names,
        [
            Qualification::GovernmentCommunityCloud,
            Qualification::StateOwnedEntity
        ]
    );
}

async fn posting_a_held_qualification_again_is_409() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customer = app.create_customer(&partner, "twice.example.edu").await;
    for q in ["Education", "StateOwnedEntity"] {
        assert_eq!(
            app.post_qualification(&partner, customer, &json!({"qualification": q}))
                .await
                .status(),
            201
        );
        let resp = app
            .post_qualification(&partner, customer, &json!({"qualification": q}))
            .await;
        let fault = assert_fault(resp, 409, 950409).await;
        assert_eq!(fault.error_name, "QualificationAlreadyExists");
    }
    assert_eq!(app.qualifications(&partner, customer).await.len(), 2);
}

async fn denied_education_may_be_requested_again() {
    let app = TestApp::spawn().await;
    let partner = app.dev_partner();
    app.seed(
        r#"{"partners": [{"tenantId": "dev", "customers": [
            {"id": "77777777-7777-4777-8777-777777777777", "companyProfile": {"domain": "again.example.com"},
             "qualifications": [{"qualification": "Education", "vettingStatus": "Denied", "vettingReason": "Not an Academic Domain"}]}]}]}"#,
    )
    .await;
    let customer = "77777777-7777-4777-8777-777777777777".parse().unwrap();
    let resp = app
        .post_qualification(&partner, customer, &json!({"qualification": "Education"}))
        .await;
    let (status, body) = status_json(resp).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["vettingStatus"], "InReview");
    assert!(body.get("vettingReason").is_none());
    let quals = app.qualifications_json(&partner, customer).await;
    assert_eq!(quals[0]["vettingStatus"], "InReview");
    assert!(quals[0].get("vettingReason").is_none());
    // Both rounds are in the history.
    let events = app.state.pipeline.read(History(customer)).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!((events[0].round, events[1].round), (1, 2));
    assert_eq!(events[1].from_status, Some(pcq_core::VettingStatus::Denied));
}

#[derive(Clone)]
struct History(uuid::Uuid);
impl pcq_server::store::Op for History {
    type Output = Vec<pcq_server::store::QualificationEvent>;
    async fn run(
        self,
        tx: &mut pcq_server::store::Tx<'_>,
    ) -> Result<Self::Output, pcq_server::Error> {
        Ok(tx.qualification_events(self.0).await?)
    }
}

async fn gcc_validation_code_rules() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let other = app.partner();
    let customer = app.create_customer(&partner, "gcc-rules.example.gov").await;

    // Missing.
    let resp = app
        .post_qualification(
            &partner,
            customer,
            &json!({"qualification": "GovernmentCommunityCloud"}),
        )
        .await;
    assert_eq!(
        assert_fault(resp, 400, 800002).await.error_name,
        "ValidationCodeRequired"
    );
    // Unknown.
    let resp = app
        .post_qualification(&partner, customer, &gcc("999999999"))
        .await;
    assert_eq!(
        assert_fault(resp, 400, 800002).await.error_name,
        "ValidationCodeNotFound"
    );
    // Another partner's code: the same answer as an unknown one.
    let foreign = app.issue_code(&other, 3).await;
    let resp = app
        .post_qualification(&partner, customer, &gcc(&foreign))
        .await;
    assert_eq!(
        assert_fault(resp, 400, 800002).await.error_name,
        "ValidationCodeNotFound"
    );
    assert_eq!(app.codes(&other).await[0].remaining_creates, 3);
    // Body and query disagree.
    let own = app.issue_code(&partner, 1).await;
    let resp = app
        .send_post(
            &format!("/v1/customers/{customer}/qualifications?code=123"),
            &partner.user,
            &gcc(&own),
        )
        .await;
    assert_eq!(
        assert_fault(resp, 400, 800002).await.error_name,
        "ValidationCodeMismatch"
    );
    assert_eq!(app.qualifications(&partner, customer).await, []);

    // Success decrements remainingCreates and changes the eTag, atomically with the qualification.
    let before = app.codes_json(&partner).await[0].clone();
    let resp = app.post_qualification(&partner, customer, &gcc(&own)).await;
    assert_eq!(resp.status(), 201);
    let after = app.codes_json(&partner).await[0].clone();
    assert_eq!(after["remainingCreates"], 0);
    assert_ne!(after["eTag"], before["eTag"]);
    assert_eq!(after["maxCreates"], 1);

    // Exhausted.
    let second = app
        .create_customer(&partner, "gcc-rules-2.example.gov")
        .await;
    let resp = app.post_qualification(&partner, second, &gcc(&own)).await;
    assert_eq!(
        assert_fault(resp, 400, 800002).await.error_name,
        "ValidationCodeExhausted"
    );
    assert_eq!(app.qualifications(&partner, second).await, []);
    assert_eq!(app.codes_json(&partner).await[0], after, "nothing changed");
}

async fn concurrent_gcc_creates_never_overdraw_a_code() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let code = app.issue_code(&partner, 5).await;
    let mut customers = Vec::new();
    for i in 0..12 {
        customers.push(
            app.create_customer(&partner, &format!("race{i}.example.gov"))
                .await,
        );
    }
    let body = gcc(&code);
    let tasks = customers
        .iter()
        .map(|c| app.post_qualification(&partner, *c, &body));
    let results = futures_util::future::join_all(tasks).await;
    let created = results
        .iter()
        .filter(|r| r.status() == StatusCode::CREATED)
        .count();
    assert_eq!(created, 5);
    assert!(
        results
            .iter()
            .all(|r| r.status() == StatusCode::CREATED || r.status() == StatusCode::BAD_REQUEST)
    );
    assert_eq!(app.codes(&partner).await[0].remaining_creates, 0);
    let mut qualified = 0;
    for c in customers {
        qualified += app.qualifications(&partner, c).await.len();
    }
    assert_eq!(qualified, 5);
}

/// Education and GCC requested for one customer at the same time, many times over: exactly one
/// of each pair is created, and the customer never holds both. StateOwnedEntity, which stacks,
/// always succeeds alongside.
async fn concurrent_exclusive_requests_for_one_customer_leave_one() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let code = app.issue_code(&partner, 100).await;
    let education = json!({"qualification": "Education", "educationSegment": "K12"});
    let gcc = gcc(&code);
    let soe = json!({"qualification": "StateOwnedEntity"});
    let mut gcc_created = 0;
    for i in 0..8 {
        let customer = app
            .create_customer(&partner, &format!("both{i}.example.edu"))
            .await;
        let (a, b, c) = tokio::join!(
            app.post_qualification(&partner, customer, &education),
            app.post_qualification(&partner, customer, &gcc),
            app.post_qualification(&partner, customer, &soe),
        );
        let statuses = [a.status(), b.status()];
        assert!(
            statuses.contains(&StatusCode::CREATED) && statuses.contains(&StatusCode::CONFLICT),
            "customer {i}: {statuses:?}"
        );
        assert_eq!(c.status(), StatusCode::CREATED, "customer {i}");
        if b.status() == StatusCode::CREATED {
            gcc_created += 1;
        }
        let held = app.qualifications(&partner, customer).await;
        let names: Vec<Qualification> = held.iter().map(|q| q.qualification).collect();
        assert_eq!(names.len(), 2, "customer {i}: {held:?}");
        assert!(
            names.contains(&Qualification::StateOwnedEntity),
            "customer {i}: {held:?}"
        );
    }
    // Only the GCC requests that won used a create.
    let used = 100 - app.codes(&partner).await[0].remaining_creates;
    assert_eq!(used, gcc_created);
}

async fn customers_of_other_partners_are_403_20002_unknown_ones_404() {
    let app = TestApp::spawn().await;
    let owner = app.partner();
    let stranger = app.partner();
    let customer = app.create_customer(&owner, "owned.example.com").await;
    let paths = [
        (Method::GET, format!("/v1/customers/{customer}")),
        (
            Method::GET,
            format!("/v1/customers/{customer}/qualifications"),
        ),
        (
            Method::GET,
            format!("/v1/customers/{customer}/qualification"),
        ),
        (
            Method::POST,
            format!("/v1/customers/{customer}/qualifications"),
        ),
        (
            Method::PUT,
            format!("/v1/customers/{customer}/qualification"),
        ),
    ];
    for (method, path) in &paths {
        let resp = app
            .send(
                method.clone(),
                path,
                &stranger.user,
                Some(&json!({"qualification": "StateOwnedEntity"})),
            )
            .await;
        let fault = assert_fault(resp, 403, 20002).await;
        assert!(
            fault.description.contains(&customer.to_string()),
            "{method} {path}"
        );
    }
    assert_eq!(app.qualifications(&owner, customer).await, []);

    let unknown = uuid::Uuid::new_v4();
    for (method, path) in &paths {
        let path = path.replace(&customer.to_string(), &unknown.to_string());
        let resp = app
            .send(
                method.clone(),
                &path,
                &owner.user,
                Some(&json!({"qualification": "StateOwnedEntity"})),
            )
            .await;
        assert_fault(resp, 404, 60003).await;
    }
}

async fn partners_only_ever_list_their_own_customers_and_codes() {
    let app = TestApp::spawn().await;
    let a = app.partner();
    let b = app.partner();
    let a1 = app.create_customer(&a, "a1.example.com").await;
    app.create_customer(&a, "a2.example.com").await;
    app.create_customer(&b, "b1.example.com").await;
    // The same domain may exist under two partners.
    app.create_customer(&b, "a1.example.com").await;
    app.issue_code(&a, 2).await;

    let (_, la) = status_json(app.fetch("/v1/customers", &a.app).await).await;
    let (_, lb) = status_json(app.fetch("/v1/customers", &b.app).await).await;
    assert_eq!(la["totalCount"], 2);
    assert_eq!(lb["totalCount"], 2);
    assert!(
        lb["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["id"] != a1.to_string())
    );
    assert_eq!(app.codes(&b).await, []);
    assert_eq!(app.codes(&a).await.len(), 1);
}

async fn customer_domains_are_unique_per_partner_and_validated() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    app.create_customer(&partner, "unique.example.com").await;
    let resp = app
        .send_post(
            "/v1/customers",
            &partner.user,
            &json!({"companyProfile": {"domain": "UNIQUE.example.com"}}),
        )
        .await;
    assert_eq!(
        assert_fault(resp, 409, 950409).await.error_name,
        "DomainAlreadyExists"
    );
    for body in [
        json!({}),
        json!({"companyProfile": {"domain": "no spaces.com"}}),
        json!({"companyProfile": {}}),
    ] {
        let resp = app.send_post("/v1/customers", &partner.user, &body).await;
        assert_fault(resp, 400, 800002).await;
    }
    assert_eq!(app.customer_count(&partner).await, 1);
}

async fn customer_list_pages_with_continuation_tokens() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(
            app.create_customer(&partner, &format!("page{i}.example.com"))
                .await
                .to_string(),
        );
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut req = app.get("/v1/customers?size=3", &partner.app);
        if let Some(t) = &token {
            req = req.header("MS-ContinuationToken", t);
        }
        let (status, page) = status_json(req.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        pages += 1;
        let items = page["items"].as_array().unwrap();
        assert_eq!(page["totalCount"], items.len());
        seen.extend(items.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        match page["links"].get("next") {
            Some(next) => {
                assert_eq!(next["uri"], "/v1/customers?size=3&seekOperation=Next");
                assert_eq!(next["headers"][0]["key"], "MS-ContinuationToken");
                assert_eq!(next["headers"][0]["value"], page["continuationToken"]);
                token = Some(page["continuationToken"].as_str().unwrap().to_owned());
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created);

    for size in ["0", "-1", "abc", "100000"] {
        let resp = app
            .fetch(&format!("/v1/customers?size={size}"), &partner.app)
            .await;
        assert_fault(resp, 400, 800002).await;
    }
    let resp = app
        .get("/v1/customers", &partner.app)
        .header("MS-ContinuationToken", "garbage!")
        .send()
        .await
        .unwrap();
    assert_fault(resp, 400, 800002).await;
}

async fn customer_ids_accept_braces_and_reject_malformed_ids_with_900118() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customer = app.create_customer(&partner, "braces.example.com").await;
    let braced = format!("%7B{}%7D", customer.to_string().to_uppercase());
    let resp = app
        .fetch(
            &format!("/v1/customers/{braced}/qualifications"),
            &partner.user,
        )
        .await;
    assert_eq!(status_json(resp).await, (StatusCode::OK, json!([])));
    let resp = app
        .post_qualification(
            &partner,
            customer,
            &json!({"qualification": "StateOwnedEntity"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let resp = app
        .fetch(&format!("/v1/customers/{braced}"), &partner.user)
        .await;
    assert_eq!(resp.status(), 200);
    for bad in [
        "not-a-guid",
        "123",
        "0c39a7b42b494b0e9b6c7b5e0d3f8a11",
        "%7B%7D",
        "%FF",
        "%C3%28",
    ] {
        for path in [
            format!("/v1/customers/{bad}"),
            format!("/v1/customers/{bad}/qualifications"),
        ] {
            let resp = app.fetch(&path, &partner.user).await;
            assert_fault(resp, 400, 900118).await;
        }
    }
}

crate::common::backend_tests!(
    none_nonprofit_and_unknown_values_are_400_900126_naming_the_value,
    contract_2021_accepts_education_alone_2023_requires_segment,
    education_and_gcc_exclude_each_other_soe_stacks,
    posting_a_held_qualification_again_is_409,
    denied_education_may_be_requested_again,
    gcc_validation_code_rules,
    concurrent_gcc_creates_never_overdraw_a_code,
    concurrent_exclusive_requests_for_one_customer_leave_one,
    customers_of_other_partners_are_403_20002_unknown_ones_404,
    partners_only_ever_list_their_own_customers_and_codes,
    customer_domains_are_unique_per_partner_and_validated,
    customer_list_pages_with_continuation_tokens,
    customer_ids_accept_braces_and_reject_malformed_ids_with_900118,
);
