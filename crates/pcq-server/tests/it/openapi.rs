//! The OpenAPI document is generated from the handlers; this snapshot shows every change to the
//! published contract in review. Update it with
//! `INSTA_UPDATE=always cargo test -p pcq-server --test it -- openapi::` (or `cargo insta review`)
//! when a change is intended. The snapshot is `tests/snapshots/openapi__openapi.snap`.

use pcq_server::http::{openapi, openapi::document_json};

#[test]
fn openapi_document_snapshot() {
    // The snapshot predates the one test binary: it keeps its file name and directory.
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("openapi__openapi", document_json(&openapi()));
    });
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
