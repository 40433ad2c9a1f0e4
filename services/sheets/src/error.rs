//! The crate's one error type. Only import can fail: exports are built from
//! values the caller already holds and are infallible by construction.

use std::fmt;

/// One problem in one cell of an imported file, located the way a user
/// finds it in Excel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based spreadsheet row, counting the header row (and any title rows
    /// above it), i.e. the row number Excel shows at the left edge.
    pub row: usize,
    /// The column header exactly as written in the file (e.g. `学校代码`).
    pub column: String,
    /// What is wrong, for a person to read.
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "row {}, column {}: {}",
            self.row, self.column, self.reason
        )
    }
}

/// Why an import was refused. Whenever this is returned, no school from the
/// file is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The bytes are neither UTF-8 nor GBK/GB18030 text.
    #[error("file is neither UTF-8 nor GBK; save as 'CSV UTF-8'")]
    Encoding,
    /// The file is a spreadsheet format this crate does not read.
    #[error("unsupported file: {0}")]
    UnsupportedFormat(&'static str),
    /// The XLSX container or its first sheet could not be read.
    #[error("not a readable XLSX workbook: {0}")]
    Workbook(String),
    /// The CSV text could not be split into records.
    #[error("malformed CSV near row {row}: {reason}")]
    Csv { row: usize, reason: String },
    /// Nothing but blank rows.
    #[error("the file is empty: no header row found")]
    Empty,
    /// Required columns are absent from the header row; each is named as
    /// `中文名 (english_name)`.
    #[error("missing required column(s): {}", .0.join(", "))]
    MissingColumns(Vec<String>),
    /// Two header cells map to the same field (e.g. `学校代码` and `code`).
    #[error("columns '{first}' and '{second}' both mean the same field; keep one")]
    DuplicateColumn { first: String, second: String },
    /// The sheet or file is larger than an import may be (`what`: rows, columns, cells or
    /// bytes), checked before the grid is built.
    #[error("the file has {found} {what} or more; an import takes at most {limit} {what}")]
    TooLarge {
        what: &'static str,
        limit: usize,
        found: usize,
    },
    /// Every invalid cell in the file, in row order.
    #[error("{} invalid cell(s); first: {}", .0.len(), .0.first().map(ToString::to_string).unwrap_or_default())]
    Rows(Vec<RowError>),
}
