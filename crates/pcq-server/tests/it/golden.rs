//! Golden request/response pairs from the Partner Center documentation (the seed pages and
//! reference §3–§5): each documented request succeeds unchanged and answers in the documented
//! shape. `vettingCreateDate` values are checked for form, then redacted.

use crate::common::{Partner, TestApp, assert_fault, redact_dates, status_json};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SEED_CORRELATION_ID: &str = "7d2456fd-2d79-46d0-9f8e-5d7ecd5f8745";
const SEED_REQUEST_ID: &str = "037db222-6d8e-4d7f-ba78-df3dca33fb68";

/// The request of the seed documents (Polish, Swedish, Turkish and Portuguese pages), byte for
/// byte, with the placeholders filled in: `?code=<validation-code>` is sent percent-encoded,
/// as an HTTP client sends it.
async fn seed_document_request_creates_education_in_review() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customer = app.create_customer(&partner, "school.example.edu").await;
    let body = "{\n    \"Qualification\": \"Education\"\n}";
    let resp = app
        .req(
            Method::POST,
            &format!("/v1/customers/{customer}/qualifications?code=%3Cvalidation-code%3E"),
            &partner.user,
        )
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .header("MS-CorrelationId", SEED_CORRELATION_ID)
        .header("MS-RequestId", SEED_REQUEST_ID)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()["ms-correlationid"], SEED_CORRELATION_ID);
    assert_eq!(resp.headers()["ms-requestid"], SEED_REQUEST_ID);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let (_, body) = status_json(resp).await;
    assert_eq!(
        redact_dates(body),
        json!({"qualification": "Education", "vettingStatus": "InReview", "vettingCreateDate": "<date>"})
    );
    assert_eq!(
        redact_dates(app.qualifications_json(&partner, customer).await),
        json!([{"qualification": "Education", "vettingStatus": "InReview", "vettingCreateDate": "<date>"}])
    );
}

/// The Czech page describes the body as the integer enum value; its example shows no body at
/// all. The integer forms are accepted; an empty body gets a 400 that says what to send.
async fn czech_page_integer_bodies() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    for (i, body) in ["{\"qualification\": 1}", "\"Education\"", "1"]
        .into_iter()
        .enumerate()
    {
        let customer = app
            .create_customer(&partner, &format!("cz{i}.example.cz"))
            .await;
        let path = format!("/v1/customers/{customer}/qualifications");
        let resp = app.send_raw(&path, &partner.user, body).await;
        let (status, json) = status_json(resp).await;
        assert_eq!(status, StatusCode::CREATED, "{body}: {json}");
        assert_eq!(json["qualification"], "Education");
        assert_eq!(json["vettingStatus"], "InReview");
    }
    let customer = app.create_customer(&partner, "empty.example.cz").await;
    let path = format!("/v1/customers/{customer}/qualifications?code=1");
    let fault = assert_fault(app.send_raw(&path, &partner.user, "").await, 400, 800002).await;
    assert!(fault.description.contains("qualification"));
    assert_eq!(app.qualifications_json(&partner, customer).await, json!([]));
}

/// Reference §3.1: the current contract's three request examples and the documented responses.
async fn current_contract_examples() {
    let app = TestApp::spawn_with(|c| c.contract = pcq_core::Contract::V2023).await;
    let partner = app.partner();
    let code = app
        .send_post(
            &format!("/_pcq/admin/partners/{}/validation-codes", partner.tenant),
            &app.admin_token(),
            &json!({"organizationName": "Contoso, Inc.", "maxCreates": 5, "validationId": "123456"}),
        ).await;
    assert_eq!(code.status(), StatusCode::CREATED);

    let soe = app.create_customer(&partner, "soe.example.com").await;
    let resp = app
        .post_qualification(
            &partner,
            soe,
            &json!({ "qualification": "StateOwnedEntity" }),
        )
        .await;
    let (status, body) = status_json(resp).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::CREATED,
            json!({"qualification": "StateOwnedEntity"})
        )
    );

    let edu = app.create_customer(&partner, "contoso.edu").await;
    let resp = app
        .post_qualification(
            &partner,
            edu,
            &json!({ "qualification": "Education", "educationSegment": "HigherEducation", "website": "contoso.edu" }),
        )
        .await;
    let (status, body) = status_json(resp).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        redact_dates(body),
        json!({"qualification": "Education", "vettingStatus": "InReview", "vettingCreateDate": "<date>"})
    );

    let gcc = app.create_customer(&partner, "agency.example.gov").await;
    let resp = app
        .post_qualification(
            &partner,
            gcc,
            &json!({ "qualification": "GovernmentCommunityCloud", "validationCode": "123456" }),
        )
        .await;
    let (status, body) = status_json(resp).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        redact_dates(body),
        json!({"qualification": "GovernmentCommunityCloud", "vettingStatus": "Approved", "vettingCreateDate": "<date>"})
    );
    let codes = app.codes_json(&partner).await;
    assert_eq!(codes[0]["validationId"], "123456");
    assert_eq!(codes[0]["remainingCreates"], 4);
}

/// Reference §3.2: the old .NET SDK sends the V2 object with PascalCase keys and explicit nulls,
/// and the GCC code as `?code=`.
async fn old_dotnet_sdk_shapes() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let code = app.issue_code(&partner, 2).await;

    let edu = app.create_customer(&partner, "old-sdk.example.edu").await;
    let resp = app
        .post_qualification(
            &partner,
            edu,
            &json!({"Qualification": "Education", "VettingStatus": null, "VettingReason": null, "VettingCreateDate": null}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    let gcc = app.create_customer(&partner, "old-sdk.example.gov").await;
    let resp = app
        .send_post(
            &format!("/v1/customers/{gcc}/qualifications?code={code}"),
            &partner.user,
            &json!({"Qualification": "GovernmentCommunityCloud", "VettingStatus": null, "VettingReason": null, "VettingCreateDate": null}),
        ).await;
    let (status, body) = status_json(resp).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["vettingStatus"], "Approved");
    assert_eq!(app.codes_json(&partner).await[0]["remainingCreates"], 1);
}

/// Every spelling real clients use for the enum values (reference §5.4, §5.7).
async fn enum_spellings_of_every_client() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let spellings = [
        ("education", "Education"),
        ("Education", "Education"),
        ("EDUCATION", "Education"),
        ("state_owned_entity", "StateOwnedEntity"),
        ("StateOwnedEntity", "StateOwnedEntity"),
        ("stateOwnedEntity", "StateOwnedEntity"),
    ];
    for (i, (sent, want)) in spellings.into_iter().enumerate() {
        let customer = app
            .create_customer(&partner, &format!("spell{i}.example.org"))
            .await;
        let resp = app
            .post_qualification(&partner, customer, &json!({"qualification": sent}))
            .await;
        let (status, body) = status_json(resp).await;
        assert_eq!(status, StatusCode::CREATED, "{sent}: {body}");
        assert_eq!(body["qualification"], want, "{sent}");
    }
    let code = app.issue_code(&partner, 10).await;
    for (i, sent) in [
        "government_community_cloud",
        "GovernmentCommunityCloud",
        "governmentcommunitycloud",
        "governmentCommunityCloud",
    ]
    .into_iter()
    .enumerate()
    {
        let customer = app
            .create_customer(&partner, &format!("gcc{i}.example.gov"))
            .await;
        let resp = app
            .post_qualification(
                &partner,
                customer,
                &json!({"qualification": sent, "validationCode": code}),
            )
            .await;
        let (status, body) = status_json(resp).await;
        assert_eq!(status, StatusCode::CREATED, "{sent}: {body}");
        assert_eq!(body["qualification"], "GovernmentCommunityCloud");
    }
    let customer = app.create_customer(&partner, "segment.example.edu").await;
    let resp = app
        .post_qualification(
            &partner,
            customer,
            &json!({"QUALIFICATION": "education", "EducationSegment": "higher_education"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
}

/// Reference §4: the documented GET responses for each state. pcq always names the date
/// `vettingCreateDate` (the SDKs' property), never `vettingCreatedDate`.
async fn get_examples_for_each_state() {
    let app = TestApp::spawn().await;
    let partner = app.dev_partner();
    app.seed(
        r#"{"partners": [{"tenantId": "dev", "customers": [
            {"id": "11111111-1111-4111-8111-111111111111", "companyProfile": {"domain": "approved.example.edu"},
             "qualifications": [{"qualification": "Education", "educationSegment": "K12", "vettingStatus": "Approved"}]},
            {"id": "22222222-2222-4222-8222-222222222222", "companyProfile": {"domain": "review.example.edu"},
             "qualifications": [{"qualification": "Education"}]},
            {"id": "33333333-3333-4333-8333-333333333333", "companyProfile": {"domain": "denied.example.com"},
             "qualifications": [{"qualification": "Education", "vettingStatus": "Denied", "vettingReason": "Not an Education Customer"}]},
            {"id": "44444444-4444-4444-8444-444444444444", "companyProfile": {"domain": "soe.example.com"},
             "qualifications": [{"qualification": "StateOwnedEntity"}]},
            {"id": "55555555-5555-4555-8555-555555555555", "companyProfile": {"domain": "edu-soe.example.edu"},
             "qualifications": [{"qualification": "StateOwnedEntity"}, {"qualification": "Education", "vettingStatus": "Approved"}]},
            {"id": "66666666-6666-4666-8666-666666666666", "companyProfile": {"domain": "gcc-soe.example.gov"},
             "qualifications": [{"qualification": "GovernmentCommunityCloud"}, {"qualification": "StateOwnedEntity"}]}
        ]}]}"#,
    )
    .await;
    let get = |id: &'static str| {
        let app = &app;
        let partner = &partner;
        async move { redact_dates(app.qualifications_json(partner, id.parse().unwrap()).await) }
    };
    assert_eq!(
        get("11111111-1111-4111-8111-111111111111").await,
        json!([{"qualification": "Education", "vettingStatus": "Approved", "vettingCreateDate": "<date>"}])
    );
    assert_eq!(
        get("22222222-2222-4222-8222-222222222222").await,
        json!([{"qualification": "Education", "vettingStatus": "InReview", "vettingCreateDate": "<date>"}])
    );
    assert_eq!(
        get("33333333-3333-4333-8333-333333333333").await,
        json!([{"qualification": "Education", "vettingStatus": "Denied", "vettingReason": "Not an Education Customer", "vettingCreateDate": "<date>"}])
    );
    assert_eq!(
        get("44444444-4444-4444-8444-444444444444").await,
        json!([{"qualification": "StateOwnedEntity"}])
    );
    assert_eq!(
        get("55555555-5555-4555-8555-555555555555").await,
        json!([{"qualification": "Education", "vettingStatus": "Approved", "vettingCreateDate": "<date>"}, {"qualification": "StateOwnedEntity"}])
    );
    assert_eq!(
        get("66666666-6666-4666-8666-666666666666").await,
        json!([{"qualification": "GovernmentCommunityCloud", "vettingStatus": "Approved", "vettingCreateDate": "<date>"}, {"qualification": "StateOwnedEntity"}])
    );
}

/// A new customer has no qualifications: `[]`, and the legacy GET says `"None"`.
async fn new_customer_has_none() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let customer = app.create_customer(&partner, "fresh.example.com").await;
    assert_eq!(app.qualifications_json(&partner, customer).await, json!([]));
    let resp = app
        .fetch(
            &format!("/v1/customers/{customer}/qualification"),
            &partner.app,
        )
        .await;
    assert_eq!(status_json(resp).await, (StatusCode::OK, json!("None")));
}

/// Reference §5.4: the legacy PUT takes the enum as a string in any client's spelling or as an
/// integer, GCC with `?code=`; it answers a bare JSON string, as does the legacy GET.
async fn legacy_put_and_get() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let code = app.issue_code(&partner, 5).await;
    let cases: [(&str, Value, &str); 7] = [
        ("", json!("education"), "Education"),
        ("", json!("Education"), "Education"),
        ("", json!(1), "Education"),
        ("", json!(4), "StateOwnedEntity"),
        (
            "?code=",
            json!("government_community_cloud"),
            "GovernmentCommunityCloud",
        ),
        (
            "?code=",
            json!("GovernmentCommunityCloud"),
            "GovernmentCommunityCloud",
        ),
        ("?code=", json!(3), "GovernmentCommunityCloud"),
    ];
    for (i, (query, body, want)) in cases.into_iter().enumerate() {
        let customer = app
            .create_customer(&partner, &format!("legacy{i}.example.org"))
            .await;
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("{query}{code}")
        };
        let path = format!("/v1/customers/{customer}/qualification{query}");
        let resp = app
            .send(Method::PUT, &path, &partner.user, Some(&body))
            .await;
        assert_eq!(
            status_json(resp).await,
            (StatusCode::OK, json!(want)),
            "{body}"
        );
        let resp = app
            .fetch(
                &format!("/v1/customers/{customer}/qualification"),
                &partner.user,
            )
            .await;
        assert_eq!(status_json(resp).await, (StatusCode::OK, json!(want)));
        // The same PUT again succeeds and changes nothing.
        let resp = app
            .send(Method::PUT, &path, &partner.user, Some(&body))
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            app.qualifications_json(&partner, customer)
                .await
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
    // Three GCC PUTs used three creates; the repeats used none.
    assert_eq!(app.codes_json(&partner).await[0]["remainingCreates"], 2);
}

/// Reference §5.5: the validation-code shape, exactly.
async fn validation_code_shape() {
    let app = TestApp::spawn().await;
    let partner = app.partner();
    let resp = app
        .send_post(
            &format!("/_pcq/admin/partners/{}/validation-codes", partner.tenant),
            &app.admin_token(),
            &json!({"organizationName": "Contoso, Inc.", "maxCreates": 5, "validationId": "12345"}),
        )
        .await;
    let (status, issued) = status_json(resp).await;
    assert_eq!(status, StatusCode::CREATED);
    let codes = app.codes_json(&partner).await;
    assert_eq!(codes, json!([issued.clone()]));
    let code = codes[0].as_object().unwrap();
    let keys: Vec<&str> = code.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 6, "{keys:?}");
    assert_eq!(code["partnerId"], partner.tenant.to_string());
    assert_eq!(code["organizationName"], "Contoso, Inc.");
    assert_eq!(code["validationId"], "12345");
    assert_eq!(code["maxCreates"], 5);
    assert_eq!(code["remainingCreates"], 5);
    let etag = code["eTag"].as_str().unwrap();
    assert!(
        etag.starts_with("W/\"datetime'") && etag.contains("%3A") && etag.ends_with("Z'\""),
        "{etag}"
    );
}

/// The create-customer documentation example, trailing commas included, and the documented
/// Customer and Collection shapes.
async fn create_and_list_customer_examples() {
    let app = TestApp::spawn().await;
    let partner: Partner = app.partner();
    let doc_body = r#"{
    "CompanyProfile": {
        "Domain": "xyz.ccsctp.net",
    },
    "BillingProfile": {
        "Culture": "EN-US",
        "Email": "test@outlook.com",
        "Language": "en",
        "CompanyName": "test company",
        "DefaultAddress": {
            "FirstName": "Test",
            "LastName": "Test",
            "AddressLine1": "One Microsoft Way",
            "City": "Redmond",
            "State": "WA",
            "PostalCode": "98052",
            "Country": "US",
        }
    }
}"#;
    let resp = app
        .req(Method::POST, "/v1/customers", &partner.user)
        .header("Content-Type", "application/json")
        .header("MS-RequestId", "94e4e214-6b06-4fb7-96d1-94d559f9b47f")
        .header("MS-CorrelationId", "ab993325-1605-4cf4-bac4-fb584142a31b")
        .header("X-Locale", "en-US")
        .body(doc_body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["ms-requestid"],
        "94e4e214-6b06-4fb7-96d1-94d559f9b47f"
    );
    let (status, created) = status_json(resp).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["companyProfile"]["tenantId"], id);
    assert_eq!(created["companyProfile"]["domain"], "xyz.ccsctp.net");
    assert_eq!(created["companyProfile"]["companyName"], "test company");
    assert_eq!(
        created["companyProfile"]["attributes"],
        json!({"objectType": "CustomerCompanyProfile"})
    );
    assert_eq!(created["billingProfile"]["email"], "test@outlook.com");
    assert_eq!(
        created["billingProfile"]["defaultAddress"]["addressLine1"],
        "One Microsoft Way"
    );
    assert_eq!(
        created["billingProfile"]["attributes"]["objectType"],
        "CustomerBillingProfile"
    );
    assert_eq!(created["relationshipToPartner"], "reseller");
    assert_eq!(created["allowDelegatedAccess"], true);
    assert_eq!(
        created["links"]["self"],
        json!({"uri": format!("/v1/customers/{id}"), "method": "GET", "headers": []})
    );
    assert_eq!(created["attributes"], json!({"objectType": "Customer"}));

    let resp = app
        .fetch(&format!("/v1/customers/{id}"), &partner.app)
        .await;
    assert_eq!(status_json(resp).await, (StatusCode::OK, created.clone()));

    let resp = app.fetch("/v1/customers?size=40", &partner.app).await;
    let (status, list) = status_json(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["totalCount"], 1);
    assert_eq!(
        list["links"]["self"],
        json!({"uri": "/v1/customers?size=40", "method": "GET", "headers": []})
    );
    assert_eq!(list["attributes"], json!({"objectType": "Collection"}));
    let item = &list["items"][0];
    assert_eq!(item["id"], id);
    assert_eq!(item["relationshipToPartner"], "reseller");
    assert!(
        item.get("allowDelegatedAccess").is_none(),
        "only when getting by id"
    );
    assert!(list.get("continuationToken").is_none());
}

crate::common::backend_tests!(
    seed_document_request_creates_education_in_review,
    czech_page_integer_bodies,
    current_contract_examples,
    old_dotnet_sdk_shapes,
    enum_spellings_of_every_client,
    get_examples_for_each_state,
    new_customer_has_none,
    legacy_put_and_get,
    validation_code_shape,
    create_and_list_customer_examples,
);
