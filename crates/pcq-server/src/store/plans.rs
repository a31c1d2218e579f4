//! The lists read by position go along an index from where their page starts, filtered or not:
//! on SQLite, the query plan of each reads no table whole and sorts nothing, so a page costs the
//! same however many rows the store holds.

use super::sql::{Text, registered};

/// The registered statement whose SQLite text holds every one of `parts` and none of `not`.
fn statement(parts: &[&str], not: &[&str]) -> &'static Text {
    let found: Vec<&Text> = registered()
        .filter(|t| parts.iter().all(|p| t.sqlite.contains(p)))
        .filter(|t| !not.iter().any(|p| t.sqlite.contains(p)))
        .collect();
    assert_eq!(found.len(), 1, "one statement with {parts:?}: {found:#?}");
    found[0]
}

/// SQLite's plan of `text` on a migrated, empty database, one step a line.
fn plan(text: &Text) -> Vec<String> {
    let db = super::sqlite::migrated_memory();
    let mut explain = db
        .prepare(&format!("EXPLAIN QUERY PLAN {}", text.sqlite))
        .unwrap();
    // Unbound: the plan is the one made for any values.
    let mut rows = explain.raw_query();
    let mut plan = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        plan.push(row.get::<_, String>(3).unwrap());
    }
    plan
}

/// Asserts that SQLite reads `text` along `index`, from the page's position (a lower bound the
/// index seeks to, not a walk of all the rows of its equality prefix), and needs no sort.
fn reads_along(text: &Text, table: &str, index: &str) {
    let plan = plan(text);
    let joined = plan.join("\n");
    assert!(
        plan.iter().any(|step| step.starts_with("SEARCH ")
            && step.contains(&format!("INDEX {index} "))
            && (step.contains(">?") || step.contains(">(?"))),
        "{table} is not searched along {index} from its position:\n{joined}\n{}",
        text.sqlite
    );
    assert!(
        !plan.iter().any(|step| step.starts_with("SCAN ")),
        "a table is read whole:\n{joined}"
    );
    assert!(
        !plan.iter().any(|step| step.contains("TEMP B-TREE")),
        "the page is sorted:\n{joined}"
    );
}

#[test]
fn the_review_queue_seeks_its_position_on_its_index() {
    let text = statement(
        &["INDEXED BY customer_qualifications_in_review ", "ORDER BY"],
        &[],
    );
    reads_along(
        text,
        "customer_qualifications",
        "customer_qualifications_in_review",
    );
}

#[test]
fn one_partners_review_queue_seeks_its_position_on_the_partner_index() {
    reads_along(
        statement(
            &[
                "INDEXED BY customer_qualifications_in_review_by_partner ",
                "q.partner_tenant_id = ?",
            ],
            &[],
        ),
        "customer_qualifications",
        "customer_qualifications_in_review_by_partner",
    );
}

#[test]
fn one_qualifications_review_queue_seeks_its_position_on_the_qualification_index() {
    reads_along(
        statement(
            &[
                "INDEXED BY customer_qualifications_in_review_by_qualification ",
                "q.qualification = ?",
            ],
            &[],
        ),
        "customer_qualifications",
        "customer_qualifications_in_review_by_qualification",
    );
}

#[test]
fn audit_record_pages_seek_their_position_on_the_partner_index() {
    reads_along(
        statement(&["INDEXED BY audit_records_by_partner ", "ORDER BY"], &[]),
        "audit_records",
        "audit_records_by_partner",
    );
}

#[test]
fn customer_pages_seek_their_position_on_the_partner_index() {
    reads_along(
        statement(
            &["FROM customers WHERE partner_tenant_id", "ORDER BY seq"],
            &[],
        ),
        "customers",
        "customers_by_partner",
    );
}

#[test]
fn one_customers_audit_record_pages_seek_their_position_on_the_customer_index() {
    reads_along(
        statement(
            &["INDEXED BY audit_records_by_customer ", "customer_id = ?"],
            &[],
        ),
        "audit_records",
        "audit_records_by_customer",
    );
}

#[test]
fn audit_record_pages_of_one_name_operation_or_resource_seek_their_position_on_its_index() {
    for (index, filter) in [
        ("audit_records_by_name", "customer_name_lower = ? AND"),
        ("audit_records_by_operation", "operation_type = ? AND"),
        ("audit_records_by_resource", "resource_type = ? AND"),
    ] {
        reads_along(
            statement(&[&format!("INDEXED BY {index} "), filter], &[]),
            "audit_records",
            index,
        );
    }
}
