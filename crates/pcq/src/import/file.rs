//! An import file: its header, its rows (each with its line number), what each row asks for,
//! and the request ids derived from the file's content.

use anyhow::bail;
use pcq_core::enums::{EducationSegment, Qualification};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The columns an import file may have, named as the API names the properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Domain,
    CompanyName,
    Email,
    Culture,
    Country,
    Qualification,
    EducationSegment,
    Website,
    ValidationCode,
}

impl Column {
    /// Every column, in the order the help and the errors list them.
    pub const ALL: [Column; 9] = [
        Column::Domain,
        Column::CompanyName,
        Column::Email,
        Column::Culture,
        Column::Country,
        Column::Qualification,
        Column::EducationSegment,
        Column::Website,
        Column::ValidationCode,
    ];

    /// The column's name in a header (matched case-insensitively).
    pub fn name(self) -> &'static str {
        match self {
            Column::Domain => "domain",
            Column::CompanyName => "companyName",
            Column::Email => "email",
            Column::Culture => "culture",
            Column::Country => "country",
            Column::Qualification => "qualification",
            Column::EducationSegment => "educationSegment",
            Column::Website => "website",
            Column::ValidationCode => "validationCode",
        }
    }

    fn from_header(raw: &str) -> Option<Column> {
        let raw = raw.trim();
        Column::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(raw))
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One data row: its line in the file and its values by column (trimmed; empty is absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The line the row starts on (the header is line 1).
    pub line: u64,
    values: [Option<String>; 9],
}

impl Row {
    /// The row's value in `column`, if it has one.
    pub fn get(&self, column: Column) -> Option<&str> {
        self.values[column.index()].as_deref()
    }
}

/// A row the file itself gets wrong (its field count, its encoding): nothing is sent for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// The line the row starts on.
    pub line: u64,
    /// What is wrong with it.
    pub error: String,
}

/// A read import file.
#[derive(Debug)]
pub struct ImportFile {
    /// The rows, in file order, each read or wrong.
    pub rows: Vec<Result<Row, BadRow>>,
    /// The request ids of this file's content.
    pub request_ids: RequestIds,
}

/// A UTF-8 byte-order mark, which spreadsheet programs put at the start of a CSV file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

impl ImportFile {
    /// Reads a CSV file's content. A header that names an unknown column (or none, or one
    /// twice, or lacks `domain`) is an error of the whole file; a row with the wrong number of
    /// fields or bytes that are not UTF-8 is a [`BadRow`].
    pub fn parse(bytes: &[u8]) -> anyhow::Result<ImportFile> {
        let request_ids = RequestIds::of_content(bytes);
        let body = bytes.strip_prefix(BOM).unwrap_or(bytes);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(body);
        let mut records = reader.byte_records();
        let header = match records.next() {
            None => bail!("the file is empty: its first line must name the columns"),
            Some(Err(e)) => bail!("reading the header line: {e}"),
            Some(Ok(header)) => header,
        };
        let columns = columns(&header)?;
        let mut lines = Lines::new(body);
        let mut rows = Vec::new();
        for record in records {
            rows.push(match record {
                Ok(record) => {
                    let line = lines.of(record.position());
                    row(line, &record, &columns)
                }
                Err(e) => {
                    let line = lines.of(e.position());
                    let error = match e.kind() {
                        csv::ErrorKind::Utf8 { err, .. } => {
                            format!("field {} is not UTF-8 text", err.field() + 1)
                        }
                        _ => e.to_string(),
                    };
                    Err(BadRow { line, error })
                }
            });
        }
        Ok(ImportFile { rows, request_ids })
    }
}

/// The line numbers of records, from their byte offsets (the csv crate's own line count
/// leaves out the blank lines it skips).
struct Lines<'a> {
    body: &'a [u8],
    /// A byte offset and the line it is on.
    at: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    fn new(body: &'a [u8]) -> Self {
        Lines {
            body,
            at: 0,
            line: 1,
        }
    }

    /// The line a record starting at `position` is on (records come in file order); a record's
    /// position may be that of the blank lines before it.
    fn of(&mut self, position: Option<&csv::Position>) -> u64 {
        let Some(position) = position else {
            return 0;
        };
        let mut start = usize::try_from(position.byte())
            .unwrap_or(usize::MAX)
            .min(self.body.len());
        while start < self.body.len() && matches!(self.body[start], b'\r' | b'\n') {
            start += 1;
        }
        if start >= self.at {
            let newlines = self.body[self.at..start]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            self.line += newlines as u64;
            self.at = start;
        }
        self.line
    }
}

/// The columns a header names, in its order.
fn columns(header: &csv::ByteRecord) -> anyhow::Result<Vec<Column>> {
    let mut columns: Vec<Column> = Vec::with_capacity(header.len());
    for (n, raw) in header.iter().enumerate() {
        let Ok(name) = std::str::from_utf8(raw) else {
            bail!(
                "column {} of the header is not UTF-8 text; the columns are {}",
                n + 1,
                known_columns()
            );
        };
        let Some(column) = Column::from_header(name) else {
            bail!(
                "the header names an unknown column {:?} (column {}); the columns are {} (only \
                 domain is required)",
                name.trim(),
                n + 1,
                known_columns()
            );
        };
        if columns.contains(&column) {
            bail!("the header names the column {} twice", column.name());
        }
        columns.push(column);
    }
    if !columns.contains(&Column::Domain) {
        bail!("the header has no domain column, which every row needs");
    }
    Ok(columns)
}

fn known_columns() -> String {
    Column::ALL.map(Column::name).join(", ")
}

/// A data record as a [`Row`] of `columns`.
fn row(line: u64, record: &csv::ByteRecord, columns: &[Column]) -> Result<Row, BadRow> {
    if record.len() != columns.len() {
        return Err(BadRow {
            line,
            error: format!(
                "the row has {} fields, the header {}",
                record.len(),
                columns.len()
            ),
        });
    }
    let mut values: [Option<String>; 9] = Default::default();
    for (n, (raw, column)) in record.iter().zip(columns).enumerate() {
        let text = std::str::from_utf8(raw).map_err(|_| BadRow {
            line,
            error: format!("field {} ({}) is not UTF-8 text", n + 1, column.name()),
        })?;
        let text = text.trim();
        if !text.is_empty() {
            values[column.index()] = Some(text.to_owned());
        }
    }
    Ok(Row { line, values })
}

/// What a row asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The line the row starts on.
    pub line: u64,
    /// The domain as written.
    pub domain: String,
    /// The domain as pcq keeps it (lower-cased), when it is a valid one: the key by which a
    /// customer that is already there is found.
    pub domain_key: Option<String>,
    pub company_name: Option<String>,
    pub email: Option<String>,
    pub culture: Option<String>,
    pub country: Option<String>,
    /// The qualification to request once the customer is there.
    pub qualification: Option<Wanted>,
}

/// A qualification a row asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    Education {
        segment: Option<EducationSegment>,
        website: Option<String>,
    },
    Gcc {
        code: String,
    },
    StateOwnedEntity,
}

impl Row {
    /// What the row asks for, or what is wrong with it (a mistake pcq would refuse, or that
    /// would lose a value: a segment, website or code without the qualification it belongs
    /// to). The domain's own rules are left to pcq, whose answer names them.
    pub fn plan(&self) -> Result<Plan, String> {
        let Some(domain) = self.get(Column::Domain) else {
            return Err("the domain is empty".to_owned());
        };
        let text = |c: Column| self.get(c).map(str::to_owned);
        let segment = self
            .get(Column::EducationSegment)
            .map(|raw| {
                EducationSegment::parse_str(raw).ok_or_else(|| {
                    format!(
                        "educationSegment {raw:?} is not one of {}",
                        EducationSegment::NAMES.join(", ")
                    )
                })
            })
            .transpose()?;
        let website = text(Column::Website);
        let code = text(Column::ValidationCode);
        let settable = || {
            Qualification::SETTABLE
                .map(Qualification::as_str)
                .join(", ")
        };
        let qualification = match self.get(Column::Qualification) {
            None => {
                let stray = [
                    (Column::EducationSegment, segment.is_some()),
                    (Column::Website, website.is_some()),
                    (Column::ValidationCode, code.is_some()),
                ];
                if let Some((column, _)) = stray.into_iter().find(|(_, given)| *given) {
                    return Err(format!(
                        "{} is given but qualification is empty",
                        column.name()
                    ));
                }
                None
            }
            Some(raw) => {
                let q = Qualification::from_name(raw)
                    .filter(|q| Qualification::SETTABLE.contains(q))
                    .ok_or_else(|| format!("qualification {raw:?} is not one of {}", settable()))?;
                let only_for = |column: Column, given: bool, what: &str| {
                    if given {
                        Err(format!(
                            "{} is for {what} only, not {}",
                            column.name(),
                            q.as_str()
                        ))
                    } else {
                        Ok(())
                    }
                };
                match q {
                    Qualification::Education => {
                        only_for(
                            Column::ValidationCode,
                            code.is_some(),
                            "GovernmentCommunityCloud",
                        )?;
                        Some(Wanted::Education { segment, website })
                    }
                    Qualification::GovernmentCommunityCloud => {
                        only_for(Column::EducationSegment, segment.is_some(), "Education")?;
                        only_for(Column::Website, website.is_some(), "Education")?;
                        let code = code.ok_or_else(|| {
                            "GovernmentCommunityCloud needs a validationCode".to_owned()
                        })?;
                        Some(Wanted::Gcc { code })
                    }
                    _ => {
                        only_for(Column::EducationSegment, segment.is_some(), "Education")?;
                        only_for(Column::Website, website.is_some(), "Education")?;
                        only_for(
                            Column::ValidationCode,
                            code.is_some(),
                            "GovernmentCommunityCloud",
                        )?;
                        Some(Wanted::StateOwnedEntity)
                    }
                }
            }
        };
        Ok(Plan {
            line: self.line,
            domain: domain.to_owned(),
            domain_key: pcq_core::input::parse_domain(domain).ok(),
            company_name: text(Column::CompanyName),
            email: text(Column::Email),
            culture: text(Column::Culture),
            country: text(Column::Country),
            qualification,
        })
    }
}

/// The two requests a row may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Customer,
    Qualification,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Customer => "customer",
            Step::Qualification => "qualification",
        }
    }
}

/// The namespace of the import's request ids (a UUID of pcq's own).
const NAMESPACE: Uuid = Uuid::from_u128(0xafe6c4bd_c377_473d_af8e_637f8be9e503);

/// The `MS-RequestId` of each request of an import, derived from the file's bytes, the row's
/// line and the step: running the same file again sends the same ids, so pcq answers a request
/// it already carried out with its stored answer instead of carrying it out twice. A changed
/// file gets new ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestIds {
    file: Uuid,
}

impl RequestIds {
    /// The ids of a file with this content.
    pub fn of_content(bytes: &[u8]) -> RequestIds {
        let digest = Sha256::digest(bytes);
        RequestIds {
            file: Uuid::new_v5(&NAMESPACE, &digest),
        }
    }

    /// The id of `step` of the row on `line`.
    pub fn request_id(&self, line: u64, step: Step) -> Uuid {
        Uuid::new_v5(&self.file, format!("{line}/{}", step.name()).as_bytes())
    }

    /// The correlation id of the row on `line` (both its requests).
    pub fn correlation_id(&self, line: u64) -> Uuid {
        Uuid::new_v5(&self.file, format!("{line}").as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<Result<Row, BadRow>> {
        ImportFile::parse(text.as_bytes()).unwrap().rows
    }

    fn error_of(text: &str) -> String {
        ImportFile::parse(text.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn columns_match_in_any_case_and_order() {
        let rows = rows("Qualification, DOMAIN ,companyname\nEducation,a.example.edu,A\n");
        let row = rows[0].as_ref().unwrap();
        assert_eq!(row.line, 2);
        assert_eq!(row.get(Column::Domain), Some("a.example.edu"));
        assert_eq!(row.get(Column::CompanyName), Some("A"));
        assert_eq!(row.get(Column::Qualification), Some("Education"));
        assert_eq!(row.get(Column::Email), None);
    }

    #[test]
    fn header_mistakes_name_the_column() {
        let e = error_of("domain,phone\nx.example.com,1\n");
        assert!(e.contains("\"phone\"") && e.contains("column 2"), "{e}");
        let e = error_of("companyName\nA\n");
        assert!(e.contains("no domain column"), "{e}");
        let e = error_of("domain,Domain\n");
        assert!(e.contains("domain twice"), "{e}");
        let e = error_of("");
        assert!(e.contains("empty"), "{e}");
    }

    #[test]
    fn a_bom_is_skipped_and_quoted_fields_keep_commas() {
        let rows = rows("\u{feff}domain,companyName\r\na.example.com,\"Contoso, Ltd\"\r\n");
        let row = rows[0].as_ref().unwrap();
        assert_eq!(row.get(Column::CompanyName), Some("Contoso, Ltd"));
    }

    #[test]
    fn bad_rows_carry_their_line() {
        let rows = ImportFile::parse(
            b"domain,email\na.example.com,a@x\nb.example.com\n\nc.example.com,\"multi\nline\"\nd.example.com,\xff\n\r\n\r\ne.example.com,e@x\r\n",
        )
        .unwrap()
        .rows;
        assert_eq!(rows[0].as_ref().unwrap().line, 2);
        let bad = rows[1].as_ref().unwrap_err();
        assert_eq!(bad.line, 3);
        assert!(
            bad.error.contains("1 fields, the header 2"),
            "{}",
            bad.error
        );
        // Blank lines are skipped; a quoted field may span lines.
        let c = rows[2].as_ref().unwrap();
        assert_eq!((c.line, c.get(Column::Email)), (5, Some("multi\nline")));
        let d = rows[3].as_ref().unwrap_err();
        assert_eq!(d.line, 7);
        assert!(d.error.contains("UTF-8"), "{}", d.error);
        assert_eq!(rows[4].as_ref().unwrap().line, 10);
    }

    fn plan(header: &str, line: &str) -> Result<Plan, String> {
        let rows = rows(&format!("{header}\n{line}\n"));
        rows[0].as_ref().unwrap().plan()
    }

    #[test]
    fn plans_follow_the_qualification_rules() {
        let p = plan(
            "domain,qualification,educationSegment,website",
            "A.Example.EDU,education,higher_education,https://a.example.edu",
        )
        .unwrap();
        assert_eq!(p.domain_key.as_deref(), Some("a.example.edu"));
        assert_eq!(
            p.qualification,
            Some(Wanted::Education {
                segment: Some(EducationSegment::HigherEducation),
                website: Some("https://a.example.edu".to_owned())
            })
        );
        let p = plan("domain,qualification,validationCode", "g.example.gov,GCC,x").unwrap_err();
        assert!(p.contains("not one of"), "{p}");
        let p = plan(
            "domain,qualification,validationCode",
            "g.example.gov,government_community_cloud,abc",
        )
        .unwrap();
        assert_eq!(
            p.qualification,
            Some(Wanted::Gcc {
                code: "abc".to_owned()
            })
        );
        let e = plan(
            "domain,qualification",
            "g.example.gov,GovernmentCommunityCloud",
        )
        .unwrap_err();
        assert!(e.contains("needs a validationCode"), "{e}");
        let e = plan("domain,qualification", "n.example.org,Nonprofit").unwrap_err();
        assert!(e.contains("\"Nonprofit\" is not one of"), "{e}");
        let e = plan("domain,website", "n.example.org,https://x").unwrap_err();
        assert!(
            e.contains("website is given but qualification is empty"),
            "{e}"
        );
        let e = plan(
            "domain,qualification,website",
            "s.example.org,StateOwnedEntity,x",
        )
        .unwrap_err();
        assert!(e.contains("website is for Education only"), "{e}");
        let e = plan(
            "domain,qualification,educationSegment",
            "s.example.org,Education,k13",
        )
        .unwrap_err();
        assert!(e.contains("educationSegment \"k13\""), "{e}");
        let e = plan("domain,email", ",a@x").unwrap_err();
        assert!(e.contains("domain is empty"), "{e}");
        // A domain pcq will refuse is sent all the same: pcq's answer says why.
        let p = plan("domain", "not a domain").unwrap();
        assert_eq!(p.domain_key, None);
    }

    #[test]
    fn request_ids_follow_the_content_the_line_and_the_step() {
        let a = RequestIds::of_content(b"domain\na.example.com\n");
        let again = RequestIds::of_content(b"domain\na.example.com\n");
        let b = RequestIds::of_content(b"domain\nb.example.com\n");
        assert_eq!(
            a.request_id(2, Step::Customer),
            again.request_id(2, Step::Customer)
        );
        assert_ne!(
            a.request_id(2, Step::Customer),
            b.request_id(2, Step::Customer)
        );
        assert_ne!(
            a.request_id(2, Step::Customer),
            a.request_id(3, Step::Customer)
        );
        assert_ne!(
            a.request_id(2, Step::Customer),
            a.request_id(2, Step::Qualification)
        );
    }
}
