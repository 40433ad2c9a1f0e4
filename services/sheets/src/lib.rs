//! junheng-sheets: the spreadsheet edge of junheng, because the bureau lives
//! in spreadsheets.
//!
//! It owns two things:
//! - **School import** from the bureau's CSV (UTF-8, with or without BOM, or the
//!   GBK/GB18030 that Excel writes in a Chinese locale) and XLSX files, with
//!   Chinese or English headers: [`import_schools`] returns either every school
//!   or every row-level problem, never a partial list.
//! - **Document export** — seed-list notice, mentor list, practice collection,
//!   results notice, award list, veto list — each built as one [`Table`] and
//!   rendered to XLSX (title row, bold frozen header, fitted widths) or CSV
//!   (UTF-8 with BOM); the practice collection also to Markdown.
//!
//! It is pure: bytes in, bytes or values out. No database, network, file
//! system or clock, and no dependency on other junheng crates or on proto
//! types; callers convert their domain values into the plain structs here.

mod consequences;
mod documents;
mod error;
mod import;
mod school;
mod table;

pub use consequences::{ConsequenceLine, ConsequenceList};
pub use documents::{
    Award, AwardLine, AwardList, FAIL_MARK, MentorLine, MentorList, NOT_ASSESSED_MARK, PASS_MARK,
    Practice, PracticeCollection, PracticeGroup, ResultLine, ResultsNotice, SchoolLine,
    SeedListNotice, VetoLine, VetoList, practice_collection_markdown,
};
pub use error::{ImportError, RowError};
pub use import::{MAX_CELLS, MAX_COLUMNS, MAX_ROWS, import_schools};
pub use school::{Format, Level, SchoolRecord};
pub use table::{Cell, Table};
