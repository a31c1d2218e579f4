//! How pcq's statements are written once for both backends.
//!
//! A statement is written with [`sql!`], as a list of parts: SQL text, and the values bound at
//! the places they stand (`{value}`), so the order of the parameters and the order of their
//! values are one list and cannot disagree. Its text is built once, on first use, in both
//! backends' forms (`?` for SQLite, `$1, $2, …` for PostgreSQL), and every statement is
//! registered so that a test can prepare all of them against both schemas.
//!
//! A stored row type declares its table with [`table!`]: its columns are its fields, in one
//! list from which the select list, the insert list, the values bound to an insert
//! (`[Row: value]` in a statement) and the decoding of a result row are all made. Values are
//! converted by [`Column`]: ids as lower-case text, times as microseconds since the epoch,
//! enums by their wire names, JSON as text.

use pcq_core::time::Timestamp;
use pcq_core::{EducationSegment, Qualification, VettingStatus};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{StoreError, StoreResult};

/// A value bound to a statement parameter. Nulls are typed, because PostgreSQL infers the
/// type of a parameter from what is bound to it.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg<'a> {
    /// An integer (BIGINT on PostgreSQL).
    Int(Option<i64>),
    /// Borrowed text.
    Text(Option<&'a str>),
    /// Owned text.
    String(Option<String>),
    /// An id, stored as lower-case hyphenated text.
    Uuid(Option<Uuid>),
    /// Bytes (BYTEA on PostgreSQL).
    Blob(Option<&'a [u8]>),
    /// Owned bytes.
    Bytes(Option<Vec<u8>>),
}

impl Arg<'_> {
    /// The same value, owning what it borrowed (for a statement kept past its caller).
    pub fn into_owned(self) -> Arg<'static> {
        match self {
            Arg::Int(v) => Arg::Int(v),
            Arg::Text(v) => Arg::String(v.map(str::to_owned)),
            Arg::String(v) => Arg::String(v),
            Arg::Uuid(v) => Arg::Uuid(v),
            Arg::Blob(v) => Arg::Bytes(v.map(<[u8]>::to_vec)),
            Arg::Bytes(v) => Arg::Bytes(v),
        }
    }
}

/// Values that convert to an [`Arg`] by value or by reference.
macro_rules! arg_from {
    ($($ty:ty => |$v:ident| $arg:expr),* $(,)?) => {
        $(impl<'a> From<$ty> for Arg<'a> {
            fn from($v: $ty) -> Self {
                $arg
            }
        })*
    };
}

arg_from! {
    i64 => |v| Arg::Int(Some(v)),
    Option<i64> => |v| Arg::Int(v),
    bool => |v| Arg::Int(Some(i64::from(v))),
    &'a str => |v| Arg::Text(Some(v)),
    Option<&'a str> => |v| Arg::Text(v),
    &'a String => |v| Arg::Text(Some(v)),
    &'a Option<String> => |v| Arg::Text(v.as_deref()),
    String => |v| Arg::String(Some(v)),
    Option<String> => |v| Arg::String(v),
    Uuid => |v| Arg::Uuid(Some(v)),
    Option<Uuid> => |v| Arg::Uuid(v),
    &'a [u8] => |v| Arg::Blob(Some(v)),
    &'a Vec<u8> => |v| Arg::Blob(Some(v)),
    Timestamp => |v| Arg::Int(Some(v.as_micros())),
    Option<Timestamp> => |v| Arg::Int(v.map(Timestamp::as_micros)),
}

/// A result row, its columns read by position. Text and bytes are borrowed from the row.
pub trait Row {
    /// The name of a column, for error messages.
    fn column_name(&self, index: usize) -> &str;
    /// An integer column.
    fn int(&self, index: usize) -> StoreResult<Option<i64>>;
    /// A text column.
    fn text(&self, index: usize) -> StoreResult<Option<&str>>;
    /// A bytes column.
    fn bytes(&self, index: usize) -> StoreResult<Option<&[u8]>>;
}

fn corrupt(row: &dyn Row, index: usize, what: &str) -> StoreError {
    StoreError::Corrupt(format!("column {} {what}", row.column_name(index)))
}

/// How a value of a stored row is kept in one column: what is bound when it is written and
/// how it is read back.
pub trait Column: Sized {
    /// The value bound when the row is written.
    fn arg(&self) -> Arg<'_>;
    /// The null of this column's type (for optional values).
    fn null() -> Arg<'static>;
    /// Reads the column at `index`; `None` when it is NULL.
    fn read_optional(row: &dyn Row, index: usize) -> StoreResult<Option<Self>>;
    /// Reads the column at `index`, which must not be NULL.
    fn read(row: &dyn Row, index: usize) -> StoreResult<Self> {
        Self::read_optional(row, index)?.ok_or_else(|| corrupt(row, index, "is unexpectedly NULL"))
    }
}

impl<T: Column> Column for Option<T> {
    fn arg(&self) -> Arg<'_> {
        match self {
            Some(v) => v.arg(),
            None => T::null(),
        }
    }
    fn null() -> Arg<'static> {
        T::null()
    }
    fn read_optional(row: &dyn Row, index: usize) -> StoreResult<Option<Self>> {
        T::read_optional(row, index).map(Some)
    }
}

impl Column for i64 {
    fn arg(&self) -> Arg<'_> {
        Arg::Int(Some(*self))
    }
    fn null() -> Arg<'static> {
        Arg::Int(None)
    }
    fn read_optional(row: &dyn Row, index: usize) -> StoreResult<Option<Self>> {
        row.int(index)
    }
}

impl Column for bool {
    fn arg(&self) -> Arg<'_> {
        Arg::Int(Some(i64::from(*self)))
    }
    fn null() -> Arg<'static> {
        Arg::Int(None)
    }
    fn read_optional(row: &dyn Row, index: usize) -> StoreResult<Option<Self>> {
        Ok(row.int(index)?.map(|v| v != 0))
    }
}

impl Column for Timestamp {
    fn arg(&self) -> Arg<'_> {
        Arg::Int(Some(self.as_micros()))
    }
    fn null() -> Arg<'static> {
        Arg::Int(None)
    }
    fn read_optional(row: &dyn Row, index: usize) -> StoreResult<Option<Self>> {
        Ok(row.int(index)?.map(Timestamp::from_micros))
    }
}

impl Column for String {
    fn arg(&self) -> Arg<'_> {
        Arg::Text(Some(self))
    }
    fn null() -> Arg<'static> {
        Arg::Text(None)
    }
    fn read_optional(row: &dyn Row, index: usize) -> StoreResult<Option<Self>> {
        Ok(row.text(index)?.map(str::to_owned))
    }
}

impl Column for Uuid {
    fn arg(&self) -> Arg<'_> {
        Arg::Uuid(Some(*self))
    }
    fn null() -> Arg<'static> {
        Arg::Uuid(None)
    }
    fn read_optional(row: &dyn Row, index: usize) -> StoreResult<Option<Self>> {
        row.text(index)?
            .map(|raw| Uuid::parse_str(raw).map_err(|_| corrupt(row, index, "holds no uuid")))
            .transpose()
    }
}

impl Column for Vec<u8> {
    fn arg(&self) -> Arg<'_> {
        Arg::Blob(Some(self))
    }
    fn null() -> Arg<'static> {
        Arg::Blob(None)
    }
    fn read_optional(row: &dyn Row, index: usize) -> StoreResult<Option<Self>> {
        Ok(row.bytes(index)?.map(<[u8]>::to_vec))
    }
}

/// Enums stored by their wire names.
macro_rules! name_columns {
    ($($ty:ty),* $(,)?) => {
        $(impl Column for $ty {
            fn arg(&self) -> Arg<'_> {
                Arg::Text(Some(self.as_str()))
            }
            fn null() -> Arg<'static> {
                Arg::Text(None)
            }
            fn read_optional(row: &dyn Row, index: usize) -> StoreResult<Option<Self>> {
                row.text(index)?
                    .map(|raw| {
                        <$ty>::parse_str(raw).ok_or_else(|| {
                            corrupt(row, index, &format!("holds an unknown value {raw:?}"))
                        })
                    })
                    .transpose()
            }
        }
        impl<'a> From<$ty> for Arg<'a> {
            fn from(v: $ty) -> Self {
                Arg::Text(Some(v.as_str()))
            }
        }
        impl<'a> From<Option<$ty>> for Arg<'a> {
            fn from(v: Option<$ty>) -> Self {
                Arg::Text(v.map(<$ty>::as_str))
            }
        })*
    };
}

name_columns!(
    Qualification,
    VettingStatus,
    EducationSegment,
    super::webhooks::DeliveryStatus
);

/// Values stored as JSON text.
macro_rules! json_columns {
    ($($ty:ty),* $(,)?) => {
        $(impl Column for $ty {
            fn arg(&self) -> Arg<'_> {
                // These are maps with string keys and lists of strings: their serialisation
                // cannot fail.
                Arg::String(Some(serde_json::to_string(self).expect("JSON with string keys")))
            }
            fn null() -> Arg<'static> {
                Arg::Text(None)
            }
            fn read_optional(row: &dyn Row, index: usize) -> StoreResult<Option<Self>> {
                row.text(index)?
                    .map(|raw| {
                        serde_json::from_str(raw)
                            .map_err(|_| corrupt(row, index, "holds unreadable JSON"))
                    })
                    .transpose()
            }
        })*
    };
}

json_columns!(Map<String, Value>, Vec<String>, Vec<(String, String)>);

/// A type read from a result row.
pub trait FromRow: Sized {
    /// Reads the row, starting at its first column.
    fn from_row(row: &dyn Row) -> StoreResult<Self>;
}

/// Single values read from the first column.
macro_rules! scalar_rows {
    ($($ty:ty),*) => {
        $(impl FromRow for $ty {
            fn from_row(row: &dyn Row) -> StoreResult<Self> {
                Column::read(row, 0)
            }
        })*
    };
}

scalar_rows!(i64, String, Uuid);

/// A stored row type: its table and its columns in order. Declared with [`table!`].
pub trait Table: Sized {
    /// The table's name.
    const TABLE: &'static str;
    /// Every column, in order: the select list.
    const COLUMNS: &'static str;
    /// The columns an insert writes (those the database does not fill in), in order.
    const INSERT_COLUMNS: &'static str;
    /// How many columns an insert writes.
    const INSERT_ARITY: usize;
    /// Binds the values of the insert columns, in their order.
    fn bind<'a>(&'a self, args: &mut Vec<Arg<'a>>);
    /// Reads a row whose columns, from `first` on, are [`Table::COLUMNS`].
    fn read(row: &dyn Row, first: usize) -> StoreResult<Self>;
}

/// Declares how a row type is stored: `table!(Row in "table" { generated: [seq], columns:
/// [a, b, c] })`. The names are the struct's fields and the table's columns; `generated` ones
/// are filled in by the database (insertion sequences), the others are written by an insert.
/// Every field must be listed, and only fields: the decoder builds the struct from this list.
macro_rules! table {
    ($row:ident in $table:literal {
        generated: [$($generated:ident),* $(,)?],
        columns: [$first:ident $(, $column:ident)* $(,)?] $(,)?
    }) => {
        impl $crate::store::sql::Table for $row {
            const TABLE: &'static str = $table;
            const COLUMNS: &'static str = concat!(
                $(stringify!($generated), ", ",)* stringify!($first) $(, ", ", stringify!($column))*
            );
            const INSERT_COLUMNS: &'static str =
                concat!(stringify!($first) $(, ", ", stringify!($column))*);
            const INSERT_ARITY: usize = [stringify!($first) $(, stringify!($column))*].len();

            fn bind<'a>(&'a self, args: &mut Vec<$crate::store::sql::Arg<'a>>) {
                use $crate::store::sql::Column as _;
                args.push(self.$first.arg());
                $(args.push(self.$column.arg());)*
            }

            #[allow(unused_assignments)]
            fn read(
                row: &dyn $crate::store::sql::Row,
                first: usize,
            ) -> $crate::store::StoreResult<Self> {
                use $crate::store::sql::Column;
                let mut at = first;
                let mut next = || {
                    at += 1;
                    at - 1
                };
                Ok($row {
                    $($generated: Column::read(row, next())?,)*
                    $first: Column::read(row, next())?,
                    $($column: Column::read(row, next())?,)*
                })
            }
        }

        impl $crate::store::sql::FromRow for $row {
            fn from_row(row: &dyn $crate::store::sql::Row) -> $crate::store::StoreResult<Self> {
                <$row as $crate::store::sql::Table>::read(row, 0)
            }
        }

        ::inventory::submit! {
            $crate::store::sql::RegisteredTable($crate::store::sql::table_texts::<$row>)
        }
    };
}
pub(crate) use table;

/// A statement's text in both backends' forms.
#[derive(Debug, Clone)]
pub struct Text {
    /// With `?` placeholders.
    pub sqlite: String,
    /// With `$1, $2, …` placeholders, and the parts only PostgreSQL runs (row locks).
    pub postgres: String,
    /// How many values it takes.
    pub params: usize,
    /// Whether it changes rows (an insert, update or delete).
    pub writes: bool,
    /// Whether it reads a page (it has a `LIMIT`): PostgreSQL plans it for its values each time.
    pub paged: bool,
}

/// Builds a [`Text`], part by part.
#[derive(Debug, Default)]
pub struct TextBuilder {
    sqlite: String,
    postgres: String,
    params: usize,
}

impl TextBuilder {
    /// SQL text both backends run.
    pub fn push(&mut self, sql: &str) {
        self.sqlite.push_str(sql);
        self.postgres.push_str(sql);
    }

    /// SQL text only PostgreSQL runs: the row locks of statements whose rows decide a write,
    /// needed where writers run concurrently (SQLite's one writer runs ops one after another,
    /// and has no such clauses).
    pub fn push_postgres(&mut self, sql: &str) {
        self.postgres.push_str(sql);
    }

    /// Appends SQL only SQLite runs (such as `INDEXED BY`, which PostgreSQL does not know).
    pub fn push_sqlite(&mut self, sql: &str) {
        self.sqlite.push_str(sql);
    }

    /// A parameter.
    pub fn bind(&mut self) {
        use std::fmt::Write;
        self.params += 1;
        self.sqlite.push('?');
        let _ = write!(self.postgres, "${}", self.params);
    }

    /// `n` parameters, separated by commas.
    pub fn binds(&mut self, n: usize) {
        for i in 0..n {
            if i > 0 {
                self.push(", ");
            }
            self.bind();
        }
    }

    /// The finished text.
    pub fn finish(self) -> Text {
        let first = self
            .sqlite
            .trim_start()
            .split(|c: char| !c.is_ascii_alphabetic())
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        // A statement that starts with common table expressions writes when its main part does.
        let main_writes = first == "WITH"
            && [") INSERT ", ") UPDATE ", ") DELETE "]
                .iter()
                .any(|w| self.sqlite.contains(w));
        Text {
            writes: matches!(first.as_str(), "INSERT" | "UPDATE" | "DELETE") || main_writes,
            paged: self.postgres.contains(" LIMIT "),
            sqlite: self.sqlite,
            postgres: self.postgres,
            params: self.params,
        }
    }
}

/// A statement written with [`sql!`], as registered for the statement test.
pub struct Registered(pub fn() -> &'static Text);

inventory::collect!(Registered);

/// Every statement written with [`sql!`] (built on first call).
pub fn registered() -> impl Iterator<Item = &'static Text> {
    inventory::iter::<Registered>.into_iter().map(|r| (r.0)())
}

/// The text of a statement: written once in the code, or built at run time (bulk inserts).
#[derive(Debug)]
pub enum Sql {
    /// A statement of the code.
    Static(&'static Text),
    /// A statement built at run time.
    Built(Text),
}

impl Sql {
    /// The text.
    pub fn text(&self) -> &Text {
        match self {
            Sql::Static(text) => text,
            Sql::Built(text) => text,
        }
    }
}

/// A statement with the values of its parameters.
#[derive(Debug)]
pub struct Statement<'a> {
    /// Its text.
    pub sql: Sql,
    /// The values, in the order of the parameters.
    pub args: Vec<Arg<'a>>,
}

impl<'a> Statement<'a> {
    /// The same statement, owning its values.
    pub fn into_owned(self) -> Statement<'static> {
        Statement {
            sql: self.sql,
            args: self.args.into_iter().map(Arg::into_owned).collect(),
        }
    }

    /// A statement of the code.
    pub fn new(text: &'static Text, args: Vec<Arg<'a>>) -> Self {
        debug_assert_eq!(text.params, args.len(), "{}", text.sqlite);
        Statement {
            sql: Sql::Static(text),
            args,
        }
    }

    /// `INSERT INTO table (columns) VALUES (…), (…) suffix` for every row.
    pub fn insert_rows<T: Table>(rows: &'a [T], suffix: &str) -> Self {
        let mut args = Vec::with_capacity(rows.len() * T::INSERT_ARITY);
        for row in rows {
            row.bind(&mut args);
        }
        Statement {
            sql: Sql::Built(insert_text::<T>(rows.len(), suffix)),
            args,
        }
    }
}

/// The text of an insert of `rows` rows of `T`, followed by `suffix`.
pub fn insert_text<T: Table>(rows: usize, suffix: &str) -> Text {
    let mut text = TextBuilder::default();
    text.push("INSERT INTO ");
    text.push(T::TABLE);
    text.push(" (");
    text.push(T::INSERT_COLUMNS);
    text.push(") VALUES ");
    for i in 0..rows {
        text.push(if i == 0 { "(" } else { ", (" });
        text.binds(T::INSERT_ARITY);
        text.push(")");
    }
    text.push(suffix);
    text.finish()
}

/// The statements every [`table!`] implies: selecting its columns and inserting two rows (a
/// test prepares them against both schemas).
pub struct RegisteredTable(pub fn() -> [Text; 2]);

inventory::collect!(RegisteredTable);

/// The implied statements of every table declared with [`table!`].
pub fn registered_tables() -> impl Iterator<Item = [Text; 2]> {
    inventory::iter::<RegisteredTable>
        .into_iter()
        .map(|r| (r.0)())
}

/// The statements [`table!`] implies for `T`.
pub fn table_texts<T: Table>() -> [Text; 2] {
    let mut select = TextBuilder::default();
    select.push("SELECT ");
    select.push(T::COLUMNS);
    select.push(" FROM ");
    select.push(T::TABLE);
    [select.finish(), insert_text::<T>(2, "")]
}

/// The number of insert columns of `T` (for `[T: row]` parts of [`sql!`]).
pub const fn insert_arity<T: Table>() -> usize {
    T::INSERT_ARITY
}

/// A statement: its parts separated by commas, each one of
/// - `"text"` or `(CONST)`: SQL text;
/// - `(postgres "text")`: SQL text only PostgreSQL runs (row locks);
/// - `(sqlite "text")`: SQL text only SQLite runs (`INDEXED BY`);
/// - `{value}`: a parameter, bound to `value` (anything [`Arg`] converts from);
/// - `[Row: value]`: the insert columns' parameters of a [`Table`] row, bound to its values.
///
/// The text is built once, on first use; the values are bound on every call.
macro_rules! sql {
    ($($part:tt),+ $(,)?) => {{
        fn text() -> &'static $crate::store::sql::Text {
            static TEXT: ::std::sync::OnceLock<$crate::store::sql::Text> =
                ::std::sync::OnceLock::new();
            TEXT.get_or_init(|| {
                let mut text = $crate::store::sql::TextBuilder::default();
                $($crate::store::sql::sql_text!(text, $part);)+
                text.finish()
            })
        }
        ::inventory::submit! { $crate::store::sql::Registered(text) }
        #[allow(unused_mut)]
        let mut args = ::std::vec::Vec::with_capacity(text().params);
        $($crate::store::sql::sql_arg!(args, $part);)+
        $crate::store::sql::Statement::new(text(), args)
    }};
}
pub(crate) use sql;

/// The text of one part of [`sql!`].
macro_rules! sql_text {
    ($text:ident, {$value:expr}) => {
        $text.bind()
    };
    ($text:ident, [$row:ty: $value:expr]) => {
        $text.binds($crate::store::sql::insert_arity::<$row>())
    };
    ($text:ident, (postgres $sql:expr)) => {
        $text.push_postgres($sql)
    };
    ($text:ident, (sqlite $sql:expr)) => {
        $text.push_sqlite($sql)
    };
    ($text:ident, ($sql:expr)) => {
        $text.push($sql)
    };
    ($text:ident, $sql:literal) => {
        $text.push($sql)
    };
}
pub(crate) use sql_text;

/// The values of one part of [`sql!`].
macro_rules! sql_arg {
    ($args:ident, {$value:expr}) => {
        $args.push($crate::store::sql::Arg::from($value))
    };
    ($args:ident, [$row:ty: $value:expr]) => {
        <$row as $crate::store::sql::Table>::bind($value, &mut $args)
    };
    ($args:ident, ($($sql:tt)*)) => {};
    ($args:ident, $sql:literal) => {};
}
pub(crate) use sql_arg;

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`, lower-casing the rest.
pub fn like_escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Rows per statement of a bulk insert (at most 11 columns: well under SQLite's 32,766 and
/// PostgreSQL's 65,535 bind parameters).
pub const BULK_ROWS: usize = 500;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_values_in_both_forms() {
        let id = Uuid::nil();
        let statement = sql!(
            "SELECT company_name FROM customers WHERE id = ",
            {id},
            " AND (",
            {Some(3i64)},
            " IS NULL OR seq = ",
            {Some(3i64)},
            ")",
            (postgres " FOR UPDATE"),
        );
        let text = statement.sql.text();
        assert_eq!(
            text.sqlite,
            "SELECT company_name FROM customers WHERE id = ? AND (? IS NULL OR seq = ?)"
        );
        assert_eq!(
            text.postgres,
            "SELECT company_name FROM customers WHERE id = $1 AND ($2 IS NULL OR seq = $3) FOR UPDATE"
        );
        assert_eq!(statement.args.len(), 3);
        assert_eq!(statement.args[0], Arg::Uuid(Some(id)));
        assert!(!text.writes);
    }

    #[test]
    fn writes_are_told_apart_from_reads() {
        let statement = sql!("  update meta SET value = ", { "v" });
        assert!(statement.sql.text().writes);
        let statement = sql!("WITH picked AS (SELECT 1) UPDATE meta SET value = ", {
            "v"
        },);
        assert!(statement.sql.text().writes);
        let statement = sql!("WITH RECURSIVE walk (n) AS (SELECT 1) SELECT n FROM walk");
        assert!(!statement.sql.text().writes);
    }

    #[test]
    fn like_patterns_escape_their_wildcards() {
        assert_eq!(like_escape("50%_Ab\\"), "50\\%\\_ab\\\\");
    }
}
