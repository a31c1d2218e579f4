//! The lists read by position go along an index from where their page starts, filtered or not:
//! on SQLite and on PostgreSQL, the query plan of each reads no table whole and sorts nothing,
//! so a page costs the same however many rows the store holds.

use sqlx::{Connection, Row as _};

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

/// A list read by position on PostgreSQL: the statement, the table it pages through, the index
/// it should be read along, and the values of its parameters (SQL literals, in order) for a
/// first page of one partner's list.
struct PgRead {
    text: &'static Text,
    table: &'static str,
    index: &'static str,
    values: Vec<String>,
}

/// Every list read by position, each found by the index SQLite is told (or by its text), with
/// the values a first page of 100 of one partner's list binds.
fn pg_reads() -> Vec<PgRead> {
    let (partner, end, start) = ("'partner-1'", i64::MAX.to_string(), i64::MIN.to_string());
    let along = |index: &str| statement(&[&format!("INDEXED BY {index} "), "ORDER BY"], &[]);
    // The filter's value, the qualification (twice), the age bound, the position before the
    // first key, the limit.
    let queue = |index: &'static str, filter: Option<&str>, qualification: &str| {
        let mut values: Vec<String> = filter.into_iter().map(str::to_owned).collect();
        values.extend(
            [
                qualification,
                qualification,
                &end,
                &start,
                "''",
                "''",
                "101",
            ]
            .map(str::to_owned),
        );
        PgRead {
            text: along(index),
            table: "customer_qualifications",
            index,
            values,
        }
    };
    // The partner, the filter's value, the end of the date range, the position before the first
    // record, the operation type, resource type, substring and name checks (each twice), the
    // limit.
    let audit = |index: &'static str, filter: Option<&str>, checks: [&str; 4]| {
        let mut values = vec![partner.to_owned()];
        values.extend(filter.map(str::to_owned));
        values.extend([end.clone(), "0".to_owned(), "0".to_owned()]);
        for check in checks {
            values.extend([check.to_owned(), check.to_owned()]);
        }
        values.push("101".to_owned());
        PgRead {
            text: along(index),
            table: "audit_records",
            index,
            values,
        }
    };
    const NONE: [&str; 4] = ["NULL"; 4];
    let (gcc, name) = ("'GovernmentCommunityCloud'", "'company 1'");
    let (operation, resource) = ("'add_customer'", "'webhook'");
    vec![
        queue("customer_qualifications_in_review", None, "NULL"),
        queue(
            "customer_qualifications_in_review_by_partner",
            Some(partner),
            "NULL",
        ),
        queue(
            "customer_qualifications_in_review_by_qualification",
            Some(gcc),
            gcc,
        ),
        audit("audit_records_by_partner", None, NONE),
        audit(
            "audit_records_by_customer",
            Some("'no-such-customer'"),
            NONE,
        ),
        audit(
            "audit_records_by_name",
            Some(name),
            ["NULL", "NULL", "NULL", name],
        ),
        audit(
            "audit_records_by_operation",
            Some(operation),
            [operation, "NULL", "NULL", "NULL"],
        ),
        audit(
            "audit_records_by_resource",
            Some(resource),
            ["NULL", resource, "NULL", "NULL"],
        ),
        PgRead {
            text: statement(
                &["FROM customers WHERE partner_tenant_id", "ORDER BY seq"],
                &[],
            ),
            table: "customers",
            index: "customers_by_partner",
            values: [partner, "0", "101"].map(str::to_owned).to_vec(),
        },
    ]
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

/// Each node of a PostgreSQL plan (`EXPLAIN (FORMAT JSON)`'s "Plan" and its "Plans"): its
/// type, with the relation and index it reads.
fn pg_nodes(node: &serde_json::Value, out: &mut Vec<String>) {
    let field = |name: &str| node[name].as_str().unwrap_or("").to_owned();
    out.push(format!(
        "{} on {} using {}",
        field("Node Type"),
        field("Relation Name"),
        field("Index Name")
    ));
    for child in node["Plans"].as_array().into_iter().flatten() {
        pg_nodes(child, out);
    }
}

/// The same reads on PostgreSQL, which is told no index: the plan it makes for a first page of
/// one partner's list reads it along its index, in order, with no sort and no sequential scan.
///
/// PostgreSQL reads a table of a few rows whole whatever its indexes, so the tables are filled
/// first, with one INSERT … SELECT generate_series each, then ANALYZEd: 5,000 customers of ten
/// partners, three in four of their qualifications in review, one in five a GCC; 20,000 audit
/// records; company names shared by 1,250 customers each. Each filtered list holds more than a
/// page and less than the whole table, where an index of its own beats both a walk of another
/// index and a sort of the matching rows. Filling rather than `SET enable_seqscan = off`: the planner then weighs
/// the indexes by real statistics, as on a live store, and a sort after a bitmap scan (which
/// `enable_seqscan` does not forbid) is still caught as the sort it is.
///
/// The plans checked are the custom plans made for these values (`plan_cache_mode =
/// force_custom_plan`), the only ones these reads get: pcq runs a statement with a `LIMIT` as
/// an unnamed statement, planned anew for its values every time (see `postgres::query`). The
/// generic plan PostgreSQL may switch a cached statement to after five runs, made with default
/// estimates for the parameters (a range of two bounds on operation_date is taken for half a
/// percent of the table), would walk audit_records_by_date for the audit pages.
#[tokio::test]
async fn postgres_reads_every_list_along_its_index() {
    let Some(server) =
        pcq_test_support::pg::database_or_skip("postgres_reads_every_list_along_its_index")
    else {
        return;
    };
    let schema = pcq_test_support::pg::PgSchema::create(&server, "pcq_plans").await;
    let mut db = sqlx::PgConnection::connect(&schema.url).await.unwrap();
    super::postgres::migrate_connection(&mut db).await;
    for fill in [
        "INSERT INTO customers (id, partner_tenant_id, commerce_id, domain, company_name, \
         company_profile, billing_profile_id, created_at) \
         SELECT 'customer-' || g, \
                'partner-' || (g % 50), 'commerce-' || g, 'd' || g || '.example.edu', \
                'Company ' || (g % 3), '{}', \
                'billing-' || g, g \
         FROM generate_series(1, 20000) g",
        // The trigger fills in each qualification's partner.
        "INSERT INTO customer_qualifications (customer_id, qualification, vetting_status, \
         vetting_create_date, round, created_at, updated_at) \
         SELECT id, CASE WHEN seq % 5 = 3 THEN 'GovernmentCommunityCloud' ELSE 'Education' END, \
                CASE WHEN seq % 4 = 0 THEN 'Approved' ELSE 'InReview' END, created_at, 1, \
                created_at, created_at \
         FROM customers ORDER BY seq",
        "INSERT INTO audit_records (id, partner_tenant_id, customer_id, customer_name, \
         resource_type, operation_type, operation_date, operation_status, customized_data, \
         customer_name_lower) \
         SELECT 'record-' || g, c.partner_tenant_id, c.id, c.company_name, \
                (ARRAY['customer', 'customer_qualification', 'webhook'])[1 + g % 3], \
                (ARRAY['add_customer', 'update_customer_qualification', 'register_webhook', \
                       'update_customer'])[1 + g % 4], \
                g, 'succeeded', '[]', lower(c.company_name) \
         FROM generate_series(1, 80000) g JOIN customers c ON c.seq = 1 + g % 20000 \
         ORDER BY g",
        "ANALYZE",
        "SET plan_cache_mode = force_custom_plan",
    ] {
        sqlx::query(fill).execute(&mut db).await.unwrap();
    }
    let unfilled: i64 = sqlx::query(
        "SELECT count(*) FROM customer_qualifications q JOIN customers c ON c.id = q.customer_id \
         WHERE q.partner_tenant_id IS DISTINCT FROM c.partner_tenant_id",
    )
    .fetch_one(&mut db)
    .await
    .unwrap()
    .get(0);
    assert_eq!(
        unfilled, 0,
        "every qualification has its customer's partner"
    );

    let mut failures = Vec::new();
    for read in pg_reads() {
        let text = read.text;
        let types = super::schema_check::prepare_postgres(&mut db, text)
            .await
            .unwrap();
        assert_eq!(types.len(), read.values.len(), "{}", text.postgres);
        let prepare = format!("PREPARE page ({}) AS {}", types.join(", "), text.postgres);
        sqlx::query(sqlx::AssertSqlSafe(prepare))
            .execute(&mut db)
            .await
            .unwrap();
        let explain: serde_json::Value = sqlx::query(sqlx::AssertSqlSafe(format!(
            "EXPLAIN (FORMAT JSON) EXECUTE page ({})",
            read.values.join(", ")
        )))
        .fetch_one(&mut db)
        .await
        .unwrap()
        .get(0);
        sqlx::query("DEALLOCATE page")
            .execute(&mut db)
            .await
            .unwrap();
        let mut nodes = Vec::new();
        pg_nodes(&explain[0]["Plan"], &mut nodes);
        let (table, index) = (read.table, read.index);
        let along = nodes.iter().any(|n| {
            (n.starts_with("Index Scan on ") || n.starts_with("Index Only Scan on "))
                && n.ends_with(&format!(" on {table} using {index}"))
        });
        let whole = nodes.iter().any(|n| n.starts_with("Seq Scan "));
        let sorted = nodes
            .iter()
            .any(|n| n.starts_with("Sort ") || n.starts_with("Incremental Sort "));
        if !along || whole || sorted {
            failures.push(format!(
                "{table} along {index}: index scan {along}, sequential scan {whole}, sort \
                 {sorted}\n  {}\n  {}",
                nodes.join("\n  "),
                text.postgres
            ));
        }
    }
    let _ = db.close().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
