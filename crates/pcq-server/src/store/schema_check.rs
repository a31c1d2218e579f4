//! The two schemas agree, and every statement pcq runs prepares against each of them.
//!
//! Statements are the ones written with `sql!` (registered when compiled) and the select and
//! insert every `table!` implies, so a column renamed in one migration folder only, or a column
//! list that disagrees with the table, fails here rather than on a user's first request.

use std::collections::BTreeSet;

use sqlx::{Connection, Row as _};

use super::sql::{Text, registered, registered_tables};

/// Indexes only one backend has, and why.
const ONE_BACKEND_ONLY: &[(&str, &str)] = &[(
    "audit_records_unlowered",
    "SQLite only: finds the audit records of an older database whose company names pcq still \
     has to lower-case on opening; PostgreSQL databases always stored them lower-cased",
)];

/// What a schema holds: tables, their columns (with whether each is in the primary key) and
/// their indexes (with table, columns and uniqueness), each as one comparable line.
#[derive(Debug, Default, PartialEq)]
struct Schema {
    tables: BTreeSet<String>,
    columns: BTreeSet<String>,
    indexes: BTreeSet<String>,
}

fn statements() -> Vec<Text> {
    let mut texts: Vec<Text> = registered_tables().flatten().collect();
    let before = texts.len();
    texts.extend(registered().cloned());
    assert!(before >= 7, "every table! registers its statements");
    assert!(texts.len() >= before + 30, "every sql! registers its text");
    texts
}

fn sqlite_schema(db: &rusqlite::Connection) -> Schema {
    let mut schema = Schema::default();
    let names = |sql: &str, arg: &str| -> Vec<Vec<String>> {
        let mut statement = db.prepare(sql).unwrap();
        let rows = statement
            .query_map([arg], |row| {
                (0..row.as_ref().column_count())
                    .map(|i| {
                        row.get::<_, rusqlite::types::Value>(i).map(|v| match v {
                            rusqlite::types::Value::Text(t) => t,
                            rusqlite::types::Value::Integer(n) => n.to_string(),
                            other => format!("{other:?}"),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap();
        rows.map(Result::unwrap).collect()
    };
    for table in names(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> ?1",
        "_sqlx_migrations",
    ) {
        let table = &table[0];
        schema.tables.insert(table.clone());
        for column in names("SELECT name, pk > 0 FROM pragma_table_info(?1)", table) {
            let key = if column[1] == "1" { " (key)" } else { "" };
            schema.columns.insert(format!("{table}.{}{key}", column[0]));
        }
        for index in names(
            "SELECT name, \"unique\" FROM pragma_index_list(?1) WHERE origin = 'c'",
            table,
        ) {
            let columns: Vec<String> = names(
                "SELECT name FROM pragma_index_info(?1) ORDER BY seqno",
                &index[0],
            )
            .into_iter()
            .map(|c| c[0].clone())
            .collect();
            let unique = if index[1] == "1" { "unique " } else { "" };
            schema.indexes.insert(format!(
                "{}: {unique}{table} ({})",
                index[0],
                columns.join(", ")
            ));
        }
    }
    schema
}

async fn postgres_schema(db: &mut sqlx::PgConnection) -> Schema {
    let mut schema = Schema::default();
    let rows = sqlx::query(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut *db)
    .await
    .unwrap();
    schema.tables = rows.iter().map(|r| r.get::<String, _>(0)).collect();
    let rows = sqlx::query(
        "SELECT c.table_name::text, c.column_name::text, EXISTS ( \
             SELECT 1 FROM information_schema.table_constraints t \
             JOIN information_schema.key_column_usage k \
               ON k.constraint_schema = t.constraint_schema \
              AND k.constraint_name = t.constraint_name \
             WHERE t.constraint_type = 'PRIMARY KEY' AND t.table_schema = c.table_schema \
               AND t.table_name = c.table_name AND k.column_name = c.column_name) \
         FROM information_schema.columns c \
         WHERE c.table_schema = current_schema() AND c.table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut *db)
    .await
    .unwrap();
    for row in rows {
        let key = if row.get::<bool, _>(2) { " (key)" } else { "" };
        schema.columns.insert(format!(
            "{}.{}{key}",
            row.get::<String, _>(0),
            row.get::<String, _>(1)
        ));
    }
    // Indexes created as such, not those behind a primary key or unique constraint.
    let rows = sqlx::query(
        "SELECT i.relname::text, t.relname::text, x.indisunique, \
                string_agg(a.attname::text, ', ' ORDER BY k.ord) \
         FROM pg_index x \
         JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_class t ON t.oid = x.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
         WHERE n.nspname = current_schema() \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) \
         GROUP BY i.relname, t.relname, x.indisunique",
    )
    .fetch_all(&mut *db)
    .await
    .unwrap();
    for row in rows {
        let unique = if row.get::<bool, _>(2) { "unique " } else { "" };
        schema.indexes.insert(format!(
            "{}: {unique}{} ({})",
            row.get::<String, _>(0),
            row.get::<String, _>(1),
            row.get::<String, _>(3)
        ));
    }
    schema
}

/// Drops the indexes only one backend has, after checking that the other lacks them.
fn without_one_backend_indexes(mut schema: Schema) -> Schema {
    for (name, _why) in ONE_BACKEND_ONLY {
        schema
            .indexes
            .retain(|line| !line.starts_with(&format!("{name}: ")));
    }
    schema
}

/// Prepares a statement on PostgreSQL and returns the names of its parameters' types. At run
/// time every value is sent with its type; here a parameter whose type the statement alone does
/// not tell (`$1 IS NULL OR …` filters) is declared as text, and the others are left for the
/// server to infer from their columns.
pub(super) async fn prepare_postgres(
    db: &mut sqlx::PgConnection,
    text: &Text,
) -> Result<Vec<String>, sqlx::Error> {
    use sqlx::postgres::{PgTypeInfo, types::Oid};
    use sqlx::{Either, Statement as _, TypeInfo as _};
    // Oid 0 leaves a parameter's type to the server; 25 is text.
    let mut types = vec![PgTypeInfo::with_oid(Oid(0)); text.params];
    let mut declared = vec![false; text.params];
    loop {
        let sql = sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(text.postgres.clone()));
        let e = match sqlx::Executor::prepare_with(&mut *db, sql, &types).await {
            Ok(statement) => {
                return Ok(match statement.parameters() {
                    Some(Either::Left(types)) => {
                        types.iter().map(|t| t.name().to_owned()).collect()
                    }
                    _ => Vec::new(),
                });
            }
            Err(e) => e,
        };
        let undetermined: Option<usize> = e
            .as_database_error()
            .filter(|d| d.code().as_deref() == Some("42P18"))
            .and_then(|d| {
                d.message()
                    .rsplit('$')
                    .next()?
                    .split(' ')
                    .next()?
                    .parse()
                    .ok()
            });
        match undetermined {
            Some(n @ 1..) if n <= types.len() && !declared[n - 1] => {
                types[n - 1] = PgTypeInfo::with_oid(Oid(25));
                declared[n - 1] = true;
            }
            _ => return Err(e),
        }
    }
}

#[test]
fn every_statement_prepares_on_sqlite() {
    let db = super::sqlite::migrated_memory();
    let mut failures = Vec::new();
    for text in statements() {
        if let Err(e) = db.prepare(&text.sqlite) {
            failures.push(format!("{e}\n    {}", text.sqlite));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn every_statement_prepares_on_postgres_and_the_schemas_agree() {
    let Some(server) = pcq_test_support::pg::database_or_skip(
        "every_statement_prepares_on_postgres_and_the_schemas_agree on PostgreSQL",
    ) else {
        return;
    };
    let schema = pcq_test_support::pg::PgSchema::create(&server, "pcq_schema_check").await;
    let mut db = sqlx::PgConnection::connect(&schema.url).await.unwrap();
    super::postgres::migrate_connection(&mut db).await;
    let mut failures = Vec::new();
    for text in statements() {
        if let Err(e) = prepare_postgres(&mut db, &text).await {
            failures.push(format!("{e}\n    {}", text.postgres));
        }
    }
    let postgres = postgres_schema(&mut db).await;
    let _ = db.close().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let sqlite = sqlite_schema(&super::sqlite::migrated_memory());
    assert!(sqlite.tables.contains("customers"), "{sqlite:#?}");
    assert!(
        sqlite
            .indexes
            .iter()
            .any(|i| i.starts_with("customers_by_partner: ")),
        "{sqlite:#?}"
    );
    for (name, why) in ONE_BACKEND_ONLY {
        let on = |s: &Schema| {
            s.indexes
                .iter()
                .any(|i| i.starts_with(&format!("{name}: ")))
        };
        assert!(
            on(&sqlite) != on(&postgres),
            "{name} is on both or neither: {why}"
        );
    }
    let (sqlite, postgres) = (
        without_one_backend_indexes(sqlite),
        without_one_backend_indexes(postgres),
    );
    assert_eq!(sqlite.tables, postgres.tables, "tables");
    let only = |a: &BTreeSet<String>, b: &BTreeSet<String>| -> Vec<String> {
        a.difference(b).cloned().collect()
    };
    assert!(
        sqlite.columns == postgres.columns,
        "columns only SQLite has: {:?}; only PostgreSQL has: {:?}",
        only(&sqlite.columns, &postgres.columns),
        only(&postgres.columns, &sqlite.columns)
    );
    assert!(
        sqlite.indexes == postgres.indexes,
        "indexes only SQLite has: {:?}; only PostgreSQL has: {:?}",
        only(&sqlite.indexes, &postgres.indexes),
        only(&postgres.indexes, &sqlite.indexes)
    );
}
