//! The one table shape every exported document is built as, and its two
//! renderings. Documents differ only in how they fill a [`Table`].

use rust_xlsxwriter::{Format as CellFormat, FormatAlign, FormatBorder, Workbook, Worksheet};

/// One cell of an exported table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// Written as a number in XLSX so it can be summed and sorted.
    Int(i64),
    /// Written as a number in XLSX; in CSV with Rust's shortest round-trip form.
    Number(f64),
    Empty,
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    /// The cell as CSV writes it (and as a person reads it).
    pub fn display(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(i) => i.to_string(),
            Cell::Number(f) => f.to_string(),
            Cell::Empty => String::new(),
        }
    }
}

impl Cell {
    /// The cell as CSV writes it: text that a spreadsheet would run as a formula (starting
    /// with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`, so opening an
    /// export never executes what a school or objector typed. Numbers are written as numbers.
    pub fn csv_text(&self) -> String {
        match self {
            Cell::Text(s) if s.starts_with(['=', '+', '-', '@', '\t', '\r']) => format!("'{s}"),
            other => other.display(),
        }
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Text(s.to_owned())
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Text(s)
    }
}

/// A titled table: the shape of every document the bureau posts or files.
///
/// XLSX layout: row 1 the title (merged, bold, large), then one row per note
/// (e.g. the notice period), then the bold header row, frozen with everything
/// above it, then the data, then — after one empty row — one row per footer
/// line (e.g. how to object and the 落款). CSV holds only the header row and
/// the data, so that it stays rectangular and machine-readable; title, notes
/// and footer are for people and live in the XLSX.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub title: String,
    pub notes: Vec<String>,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    pub footer: Vec<String>,
}

/// Excel refuses longer cell text.
const XLSX_MAX_CELL_CHARS: usize = 32_767;
/// Column widths in Excel character units.
const MIN_WIDTH: usize = 6;
const MAX_WIDTH: usize = 50;

impl Table {
    pub fn new(title: impl Into<String>, headers: &[&str]) -> Table {
        Table {
            title: title.into(),
            notes: Vec::new(),
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
            footer: Vec::new(),
        }
    }

    fn columns(&self) -> usize {
        self.rows
            .iter()
            .map(Vec::len)
            .chain([self.headers.len()])
            .max()
            .unwrap_or(0)
    }

    /// UTF-8 with a byte-order mark (without it Excel in a Chinese locale reads
    /// the file as GBK and shows mojibake), CRLF line ends, header row first.
    pub fn to_csv(&self) -> Vec<u8> {
        let mut out = b"\xEF\xBB\xBF".to_vec();
        {
            let mut writer = csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .flexible(true)
                .from_writer(&mut out);
            // Writing into a Vec cannot fail.
            let write = |w: &mut csv::Writer<&mut Vec<u8>>, fields: Vec<String>| {
                w.write_record(&fields).expect("writing CSV into memory");
            };
            write(&mut writer, self.headers.clone());
            for row in &self.rows {
                write(&mut writer, row.iter().map(Cell::csv_text).collect());
            }
            writer.flush().expect("writing CSV into memory");
        }
        out
    }

    /// An `.xlsx` workbook with one sheet. Cell text longer than Excel's limit
    /// (32,767 characters) is cut at the limit.
    pub fn to_xlsx(&self) -> Vec<u8> {
        let mut workbook = Workbook::new();
        let sheet = workbook.add_worksheet();
        // Every call below is given in-range rows/columns, valid strings and a
        // valid sheet name, which is all rust_xlsxwriter checks; an error here
        // would be a bug in this function, not bad input.
        self.fill(sheet).expect("building the worksheet");
        workbook
            .save_to_buffer()
            .expect("zipping the workbook in memory")
    }

    fn fill(&self, sheet: &mut Worksheet) -> Result<(), rust_xlsxwriter::XlsxError> {
        let columns = self.columns();
        let last_col = u16::try_from(columns.saturating_sub(1)).unwrap_or(u16::MAX);
        let title_format = CellFormat::new()
            .set_bold()
            .set_font_size(16)
            .set_align(FormatAlign::Center)
            .set_align(FormatAlign::VerticalCenter);
        let note_format = CellFormat::new().set_align(FormatAlign::Left);
        let header_format = CellFormat::new()
            .set_bold()
            .set_align(FormatAlign::Center)
            .set_background_color(0xD9E1F2)
            .set_border(FormatBorder::Thin);
        let body_format = CellFormat::new().set_border(FormatBorder::Thin);
        let wrap_format = CellFormat::new()
            .set_border(FormatBorder::Thin)
            .set_text_wrap()
            .set_align(FormatAlign::Top);

        if let Some(name) = sheet_name(&self.title) {
            sheet.set_name(name)?;
        }

        let mut row: u32 = 0;
        banner(sheet, row, last_col, &self.title, &title_format)?;
        sheet.set_row_height(row, 30)?;
        row += 1;
        for note in &self.notes {
            banner(sheet, row, last_col, note, &note_format)?;
            row += 1;
        }

        let header_row = row;
        for (col, header) in self.headers.iter().enumerate() {
            sheet.write_string_with_format(
                header_row,
                col_num(col),
                clip(header),
                &header_format,
            )?;
        }
        row += 1;

        let widths = self.natural_widths(columns);
        for cells in &self.rows {
            for (col, cell) in cells.iter().enumerate() {
                let format = if widths[col] > MAX_WIDTH {
                    &wrap_format
                } else {
                    &body_format
                };
                let c = col_num(col);
                match cell {
                    Cell::Text(s) => sheet.write_string_with_format(row, c, clip(s), format)?,
                    Cell::Int(i) => sheet.write_number_with_format(row, c, *i as f64, format)?,
                    Cell::Number(f) => sheet.write_number_with_format(row, c, *f, format)?,
                    Cell::Empty => sheet.write_blank(row, c, format)?,
                };
            }
            row += 1;
        }
        if !self.footer.is_empty() {
            row += 1;
            for line in &self.footer {
                banner(sheet, row, last_col, line, &note_format)?;
                row += 1;
            }
        }

        for (col, width) in widths.iter().enumerate() {
            sheet.set_column_width(
                col_num(col),
                width.clamp(&MIN_WIDTH, &MAX_WIDTH).to_owned() as f64,
            )?;
        }
        sheet.set_freeze_panes(header_row + 1, 0)?;
        sheet.set_repeat_rows(header_row, header_row)?;
        if columns > 6 {
            sheet.set_landscape();
        }
        Ok(())
    }

    /// Widest line in each column, counting CJK characters as two.
    fn natural_widths(&self, columns: usize) -> Vec<usize> {
        let mut widths = vec![0; columns];
        let lines = |s: &str| s.lines().map(display_width).max().unwrap_or(0);
        for (col, header) in self.headers.iter().enumerate() {
            widths[col] = widths[col].max(lines(header) + 2);
        }
        for cells in &self.rows {
            for (col, cell) in cells.iter().enumerate() {
                widths[col] = widths[col].max(lines(&cell.display()) + 2);
            }
        }
        widths
    }
}

/// A full-width merged row (a plain cell when there is only one column).
fn banner(
    sheet: &mut Worksheet,
    row: u32,
    last_col: u16,
    text: &str,
    format: &CellFormat,
) -> Result<(), rust_xlsxwriter::XlsxError> {
    if last_col == 0 {
        sheet.write_string_with_format(row, 0, clip(text), format)?;
    } else {
        sheet.merge_range(row, 0, row, last_col, clip(text), format)?;
    }
    Ok(())
}

fn col_num(col: usize) -> u16 {
    // Excel has 16,384 columns; documents here have at most a few dozen.
    u16::try_from(col).unwrap_or(u16::MAX)
}

fn clip(s: &str) -> &str {
    match s.char_indices().nth(XLSX_MAX_CELL_CHARS) {
        Some((cut, _)) => &s[..cut],
        None => s,
    }
}

fn display_width(s: &str) -> usize {
    s.chars().map(|c| if is_wide(c) { 2 } else { 1 }).sum()
}

fn is_wide(c: char) -> bool {
    matches!(c,
        '\u{1100}'..='\u{115F}'
        | '\u{2E80}'..='\u{A4CF}'
        | '\u{AC00}'..='\u{D7A3}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{FE30}'..='\u{FE4F}'
        | '\u{FF00}'..='\u{FF60}'
        | '\u{FFE0}'..='\u{FFE6}'
        | '\u{20000}'..='\u{3FFFD}')
}

/// Excel sheet names: at most 31 characters, none of `[]:*?/\`, not starting
/// or ending with an apostrophe, not blank.
fn sheet_name(title: &str) -> Option<String> {
    let cleaned: String = title
        .chars()
        .filter(|c| !matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\') && !c.is_control())
        .take(31)
        .collect();
    let cleaned = cleaned.trim().trim_matches('\'').trim();
    (!cleaned.is_empty() && !cleaned.eq_ignore_ascii_case("history")).then(|| cleaned.to_owned())
}
