//! The OpenAPI document is generated from the handlers; this snapshot shows every change to the
//! published contract in review. Update it with `INSTA_UPDATE=always cargo test --test openapi`
//! (or `cargo insta review`) when a change is intended.

use pcq_server::http::{openapi, openapi::document_json};

#[test]
fn openapi_document_snapshot() {
    insta::assert_snapshot!("openapi", document_json(&openapi()));
}

#[test]
fn every_route_is_documented_with_errors_and_security() {
    let doc: serde_json::Value = serde_json::from_str(&document_json(&openapi())).unwrap();
    let expected = [
        ("/v1/customers", "get"),
        ("/v1/customers", "post"),
        ("/v1/customers/{customer_tenant_id}", "get"),
        ("/v1/customers/{customer_tenant_id}/qualifications", "get"),
        ("/v1/customers/{customer_tenant_id}/qualifications", "post"),
        ("/v1/customers/{customer_tenant_id}/qualification", "get"),
        ("/v1/customers/{customer_tenant_id}/qualification", "put"),
        ("/v1/customers/all/validations", "get"),
        (
            "/_pcq/admin/partners/{partner_tenant_id}/validation-codes",
            "post",
        ),
        ("/_pcq/health", "get"),
        ("/_pcq/ready", "get"),
    ];
    for (path, method) in expected {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} missing");
        assert!(
            op["responses"]["400"].is_object(),
            "{method} {path} has no 400"
        );
        if path.starts_with("/v1") {
            assert_eq!(
                op["security"][0]["bearer"],
                serde_json::json!([]),
                "{method} {path}"
            );
            assert!(op["responses"]["401"].is_object());
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["ApiFault"].is_object());
}
