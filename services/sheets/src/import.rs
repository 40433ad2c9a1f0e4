//! School import: bytes → grid of text cells (CSV or XLSX) → header mapping →
//! per-row validation. Either every row is valid and all schools come back,
//! or every problem comes back and no school does.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};

use crate::error::{ImportError, RowError};
use crate::school::{Format, Level, OLE_MAGIC, SchoolRecord, ZIP_MAGIC};

/// Import the bureau's school list.
///
/// Headers may be the Chinese ones the bureau uses (学校代码, 学校名称, 学段, 所属镇街,
/// 校长, 联系人, 电子邮箱, 手机号) or the English field names, in any order; unknown
/// columns (e.g. 备注) are ignored. A title row above the header is tolerated: the
/// header is the first of the first few non-blank rows that names a known column.
/// Blank rows are skipped.
pub fn import_schools(bytes: &[u8], format: Format) -> Result<Vec<SchoolRecord>, ImportError> {
    let (grid, transcoded) = match format {
        Format::Csv => csv_grid(bytes)?,
        Format::Xlsx => (xlsx_grid(bytes)?, false),
    };
    let (header_at, columns) = map_header(&grid, transcoded)?;
    validate_rows(&grid[header_at + 1..], &columns)
}

/// One spreadsheet row: its 1-based row number as Excel shows it, and its cells as text.
struct GridRow {
    row: usize,
    cells: Vec<String>,
}

impl GridRow {
    fn is_blank(&self) -> bool {
        self.cells.iter().all(|c| c.trim().is_empty())
    }
}

// ---------------------------------------------------------------- decoding

/// Returns the text and whether it had to be transcoded from GB18030.
fn decode_text(bytes: &[u8]) -> Result<(Cow<'_, str>, bool), ImportError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok((Cow::Borrowed(text), false));
    }
    // GBK is a subset of GB18030, so one decoder covers what Excel writes in a
    // Chinese locale ("CSV (逗号分隔)").
    let text = encoding_rs::GB18030
        .decode_without_bom_handling_and_without_replacement(bytes)
        .ok_or(ImportError::Encoding)?;
    // Many single-byte encodings (Latin-1, CP1252) also happen to decode as
    // GB18030; mojibake often lands in the private use area or on control codes.
    if text.chars().any(implausible_char) {
        return Err(ImportError::Encoding);
    }
    Ok((text, true))
}

fn implausible_char(c: char) -> bool {
    matches!(c, '\u{E000}'..='\u{F8FF}' | '\u{80}'..='\u{9F}')
        || (c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
}

fn csv_grid(bytes: &[u8]) -> Result<(Vec<GridRow>, bool), ImportError> {
    if bytes.starts_with(ZIP_MAGIC) {
        return Err(ImportError::UnsupportedFormat(
            "this is an XLSX workbook, not CSV; import it as XLSX",
        ));
    }
    if bytes.starts_with(OLE_MAGIC) {
        return Err(ImportError::UnsupportedFormat(
            "legacy .xls workbook; save it as .xlsx or 'CSV UTF-8'",
        ));
    }
    let (text, transcoded) = decode_text(bytes)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    // Excel shows a quoted multi-line cell as one row, while text has physical
    // lines; subtract the line breaks inside earlier records. Blank lines, which
    // the reader skips, still count: Excel shows them as empty rows. Lines are
    // counted here rather than taken from the reader, which neither counts a
    // lone CR (old Mac Excel) nor reports where a record after blank lines starts.
    let mut embedded_before = 0usize;
    let mut lines = LineCounter::default();
    let mut grid = Vec::new();
    let mut cell_count = 0usize;
    let mut record = csv::StringRecord::new();
    loop {
        let more = reader
            .read_record(&mut record)
            .map_err(|e| ImportError::Csv {
                row: e.position().map_or(0, |p| {
                    (lines.breaks_before(text.as_ref(), p.byte() as usize) + 1)
                        .saturating_sub(embedded_before)
                }),
                reason: e.to_string(),
            })?;
        if !more {
            break;
        }
        cell_count += record.len();
        if grid.len() >= MAX_ROWS {
            return Err(too_large("rows", MAX_ROWS, grid.len() + 1));
        }
        if record.len() > MAX_COLUMNS {
            return Err(too_large("columns", MAX_COLUMNS, record.len()));
        }
        if cell_count > MAX_CELLS {
            return Err(too_large("cells", MAX_CELLS, cell_count));
        }
        let end = reader.position().byte() as usize;
        let content_end = text
            .get(..end)
            .unwrap_or(&text)
            .trim_end_matches(['\r', '\n'])
            .len();
        let breaks: usize = record.iter().map(count_breaks).sum();
        let start_line = lines
            .breaks_before(text.as_ref(), content_end)
            .saturating_sub(breaks)
            + 1;
        grid.push(GridRow {
            row: start_line.saturating_sub(embedded_before),
            cells: record.iter().map(str::to_owned).collect(),
        });
        embedded_before += breaks;
    }
    Ok((grid, transcoded))
}

/// Counts line breaks (`\r\n`, `\n` or a lone `\r`) in a text prefix,
/// incrementally: offsets must not decrease between calls.
#[derive(Default)]
struct LineCounter {
    offset: usize,
    breaks: usize,
}

impl LineCounter {
    fn breaks_before(&mut self, text: &str, offset: usize) -> usize {
        let offset = offset.clamp(self.offset, text.len());
        self.breaks += text.get(self.offset..offset).map_or(0, count_breaks);
        self.offset = offset;
        self.breaks
    }
}

fn count_breaks(s: &str) -> usize {
    let bytes = s.as_bytes();
    (0..bytes.len())
        .filter(|&i| match bytes[i] {
            b'\n' => true,
            b'\r' => bytes.get(i + 1) != Some(&b'\n'),
            _ => false,
        })
        .count()
}

/// Most rows a sheet may span (counting the header and any title rows).
pub const MAX_ROWS: usize = 20_000;
/// Most columns a sheet may span.
pub const MAX_COLUMNS: usize = 100;
/// Most cells (filled or not) a sheet may hold.
pub const MAX_CELLS: usize = 500_000;

fn too_large(what: &'static str, limit: usize, found: usize) -> ImportError {
    ImportError::TooLarge { what, limit, found }
}

fn check_extent(rows: usize, columns: usize) -> Result<(), ImportError> {
    if rows > MAX_ROWS {
        return Err(too_large("rows", MAX_ROWS, rows));
    }
    if columns > MAX_COLUMNS {
        return Err(too_large("columns", MAX_COLUMNS, columns));
    }
    Ok(())
}

/// Reads the first sheet cell by cell: the declared dimension is checked before anything is
/// read, and every cell's position and the cell count while reading, so a tiny file that
/// declares (or holds) cells at A1 and XFD1048576 is refused without building its grid.
fn xlsx_grid(bytes: &[u8]) -> Result<Vec<GridRow>, ImportError> {
    let mut workbook: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes))
        .map_err(|e: calamine::XlsxError| ImportError::Workbook(e.to_string()))?;
    let first = workbook
        .sheet_names()
        .first()
        .cloned()
        .ok_or_else(|| ImportError::Workbook("the workbook has no sheets".into()))?;
    let mut reader = workbook
        .worksheet_cells_reader(&first)
        .map_err(|e: calamine::XlsxError| ImportError::Workbook(e.to_string()))?;
    let declared = reader.dimensions();
    if declared.end >= declared.start && declared.len() > 1 {
        check_extent(
            (declared.end.0 - declared.start.0) as usize + 1,
            (declared.end.1 - declared.start.1) as usize + 1,
        )?;
    }
    let mut cells: Vec<((usize, usize), String)> = Vec::new();
    let mut count = 0usize;
    let (mut min_row, mut max_row, mut max_col) = (usize::MAX, 0usize, 0usize);
    while let Some(cell) = reader
        .next_cell()
        .map_err(|e: calamine::XlsxError| ImportError::Workbook(e.to_string()))?
    {
        count += 1;
        if count > MAX_CELLS {
            return Err(too_large("cells", MAX_CELLS, count));
        }
        let (r, c) = cell.get_position();
        let value = Data::from(cell.get_value().clone());
        if matches!(value, Data::Empty) {
            continue;
        }
        let (r, c) = (r as usize, c as usize);
        min_row = min_row.min(r);
        max_row = max_row.max(r);
        max_col = max_col.max(c);
        check_extent(max_row - min_row + 1, max_col + 1)?;
        cells.push(((r, c), cell_text(&value)));
    }
    if cells.is_empty() {
        return Ok(Vec::new());
    }
    // A grid from the first used row (as calamine's ranges do), each row as wide as its last
    // filled cell; the extent was checked above, so this allocates at most MAX_ROWS rows.
    let mut grid: Vec<GridRow> = (min_row..=max_row)
        .map(|r| GridRow {
            row: r + 1,
            cells: Vec::new(),
        })
        .collect();
    for ((r, c), text) in cells {
        let row = &mut grid[r - min_row].cells;
        if row.len() <= c {
            row.resize(c + 1, String::new());
        }
        row[c] = text;
    }
    Ok(grid)
}

/// Excel stores a school code or mobile number typed without a leading
/// apostrophe as a number; give back the digits, without `.0`.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------- header

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Field {
    Code,
    Name,
    Level,
    Town,
    Principal,
    ContactName,
    Email,
    Mobile,
}

impl Field {
    const ALL: [Field; 8] = [
        Field::Code,
        Field::Name,
        Field::Level,
        Field::Town,
        Field::Principal,
        Field::ContactName,
        Field::Email,
        Field::Mobile,
    ];

    fn zh(self) -> &'static str {
        match self {
            Field::Code => "学校代码",
            Field::Name => "学校名称",
            Field::Level => "学段",
            Field::Town => "所属镇街",
            Field::Principal => "校长",
            Field::ContactName => "联系人",
            Field::Email => "电子邮箱",
            Field::Mobile => "手机号",
        }
    }

    fn en(self) -> &'static str {
        match self {
            Field::Code => "code",
            Field::Name => "name",
            Field::Level => "level",
            Field::Town => "town",
            Field::Principal => "principal",
            Field::ContactName => "contact_name",
            Field::Email => "email",
            Field::Mobile => "mobile",
        }
    }

    fn required(self) -> bool {
        matches!(
            self,
            Field::Code | Field::Name | Field::Level | Field::Town | Field::Principal
        )
    }

    fn from_header(header: &str) -> Option<Field> {
        let header = header.trim();
        let english = header.to_ascii_lowercase().replace([' ', '-'], "_");
        Field::ALL
            .into_iter()
            .find(|f| header == f.zh() || english == f.en())
    }
}

/// Where each field sits in a row, and the header text the user wrote for it.
struct Columns {
    at: HashMap<Field, (usize, String)>,
}

/// How many non-blank rows may precede the header (title, notes).
const HEADER_SEARCH_ROWS: usize = 5;

fn map_header(grid: &[GridRow], transcoded: bool) -> Result<(usize, Columns), ImportError> {
    let candidates: Vec<usize> = grid
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.is_blank())
        .map(|(i, _)| i)
        .take(HEADER_SEARCH_ROWS)
        .collect();
    if candidates.is_empty() {
        return Err(ImportError::Empty);
    }
    let header_at = candidates.iter().copied().find(|&i| {
        grid[i]
            .cells
            .iter()
            .any(|c| Field::from_header(c).is_some())
    });
    let Some(header_at) = header_at else {
        // Text that only decodes as GB18030 and yields no known header at all is
        // far more likely a third encoding than a GBK file with a wrong header.
        if transcoded {
            return Err(ImportError::Encoding);
        }
        return Err(missing(&HashMap::new()));
    };

    let mut at: HashMap<Field, (usize, String)> = HashMap::new();
    for (i, cell) in grid[header_at].cells.iter().enumerate() {
        let Some(field) = Field::from_header(cell) else {
            continue;
        };
        let written = cell.trim().to_owned();
        if let Some((_, first)) = at.get(&field) {
            return Err(ImportError::DuplicateColumn {
                first: first.clone(),
                second: written,
            });
        }
        at.insert(field, (i, written));
    }
    if Field::ALL
        .iter()
        .any(|f| f.required() && !at.contains_key(f))
    {
        return Err(missing(&at));
    }
    Ok((header_at, Columns { at }))
}

fn missing(at: &HashMap<Field, (usize, String)>) -> ImportError {
    ImportError::MissingColumns(
        Field::ALL
            .into_iter()
            .filter(|f| f.required() && !at.contains_key(f))
            .map(|f| format!("{} ({})", f.zh(), f.en()))
            .collect(),
    )
}

// ---------------------------------------------------------------- rows

fn validate_rows(rows: &[GridRow], columns: &Columns) -> Result<Vec<SchoolRecord>, ImportError> {
    let mut errors = Vec::new();
    let mut records = Vec::new();
    let mut first_seen: HashMap<String, usize> = HashMap::new();

    // A row with nothing in any known column holds no school: the objection notes and the
    // 落款 under an exported 公示's list, or a remark in a spare column.
    let known = |r: &&GridRow| {
        columns
            .at
            .values()
            .any(|(i, _)| r.cells.get(*i).is_some_and(|c| !c.trim().is_empty()))
    };
    for row in rows.iter().filter(known) {
        let mut check = RowCheck {
            row,
            columns,
            errors: &mut errors,
        };
        let code = check.field(Field::Code, parse_code);
        let name = check.field(Field::Name, required_text);
        let level = check.field(Field::Level, parse_level);
        let town = check.field(Field::Town, required_text);
        let principal = check.field(Field::Principal, required_text);
        let contact_name = check.field(Field::ContactName, optional_text);
        let email = check.field(Field::Email, parse_email);
        let mobile = check.field(Field::Mobile, parse_mobile);

        if let Some(code) = &code {
            if let Some(&first) = first_seen.get(code) {
                check.push(
                    Field::Code,
                    format!("duplicate school code {code}: already on row {first}"),
                );
            } else {
                first_seen.insert(code.clone(), row.row);
            }
        }

        if let (
            Some(code),
            Some(name),
            Some(level),
            Some(town),
            Some(principal),
            Some(contact_name),
            Some(email),
            Some(mobile),
        ) = (
            code,
            name,
            level,
            town,
            principal,
            contact_name,
            email,
            mobile,
        ) {
            records.push(SchoolRecord {
                code,
                name,
                level,
                town,
                principal,
                contact_name,
                email,
                mobile,
            });
        }
    }

    if errors.is_empty() {
        Ok(records)
    } else {
        Err(ImportError::Rows(errors))
    }
}

struct RowCheck<'a> {
    row: &'a GridRow,
    columns: &'a Columns,
    errors: &'a mut Vec<RowError>,
}

impl RowCheck<'_> {
    /// Parses one cell; a failure is recorded and yields `None`. An absent
    /// optional column reads as an empty cell.
    fn field<T>(&mut self, field: Field, parse: fn(&str) -> Result<T, String>) -> Option<T> {
        let text = self
            .columns
            .at
            .get(&field)
            .and_then(|(i, _)| self.row.cells.get(*i))
            .map_or("", |s| s.trim());
        match parse(text) {
            Ok(value) => Some(value),
            Err(reason) => {
                self.push(field, reason);
                None
            }
        }
    }

    fn push(&mut self, field: Field, reason: String) {
        let column = self
            .columns
            .at
            .get(&field)
            .map_or_else(|| field.zh().to_owned(), |(_, h)| h.clone());
        self.errors.push(RowError {
            row: self.row.row,
            column,
            reason,
        });
    }
}

fn required_text(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("required; the cell is empty".into())
    } else {
        Ok(s.to_owned())
    }
}

fn optional_text(s: &str) -> Result<Option<String>, String> {
    Ok((!s.is_empty()).then(|| s.to_owned()))
}

fn parse_code(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("required; the cell is empty".into());
    }
    if s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(s.to_owned());
    }
    if s.contains(['E', 'e']) && s.parse::<f64>().is_ok() {
        return Err(format!(
            "'{s}' is Excel scientific notation, the digits are lost; \
             format the column as text, retype the codes and save again"
        ));
    }
    Err(format!("school code must be exactly 10 digits, got '{s}'"))
}

fn parse_level(s: &str) -> Result<Level, String> {
    if s.is_empty() {
        return Err("required; the cell is empty".into());
    }
    Level::parse(s)
        .ok_or_else(|| format!("unknown school level '{s}'; expected 小学, 初中 or 九年一贯制"))
}

fn parse_email(s: &str) -> Result<Option<String>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    let bad = || format!("'{s}' is not an email address");
    let (local, domain) = s.split_once('@').ok_or_else(bad)?;
    let shaped = !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
        && !s.chars().any(char::is_whitespace);
    if shaped {
        Ok(Some(s.to_owned()))
    } else {
        Err(bad())
    }
}

fn parse_mobile(s: &str) -> Result<Option<String>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    let digits: String = s.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if digits.len() == 11 && digits.starts_with('1') && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(Some(digits))
    } else {
        Err(format!(
            "mobile number must be 11 digits starting with 1, got '{s}'"
        ))
    }
}
