//! The school vocabulary shared by import and export.

use std::fmt;

/// School level (学段) of a compulsory-education school.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// 小学
    Primary,
    /// 初中
    Junior,
    /// 九年一贯制
    NineYear,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Primary, Level::Junior, Level::NineYear];

    /// The label the bureau writes in its spreadsheets.
    pub fn label_zh(self) -> &'static str {
        match self {
            Level::Primary => "小学",
            Level::Junior => "初中",
            Level::NineYear => "九年一贯制",
        }
    }

    /// The machine name used elsewhere in junheng (`primary`, `junior`, `nine_year`).
    pub fn code(self) -> &'static str {
        match self {
            Level::Primary => "primary",
            Level::Junior => "junior",
            Level::NineYear => "nine_year",
        }
    }

    /// Accepts the Chinese label or the machine name (case-insensitive), after trimming.
    pub fn parse(s: &str) -> Option<Level> {
        let s = s.trim();
        Level::ALL
            .into_iter()
            .find(|l| s == l.label_zh() || s.eq_ignore_ascii_case(l.code()))
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label_zh())
    }
}

/// One validated row of a school import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolRecord {
    /// Exactly 10 ASCII digits (the national school identification code).
    pub code: String,
    pub name: String,
    pub level: Level,
    pub town: String,
    pub principal: String,
    pub contact_name: Option<String>,
    pub email: Option<String>,
    /// 11 digits starting with `1`; spaces and hyphens in the file are removed.
    pub mobile: Option<String>,
}

/// Container format of an import file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    /// XLSX is a ZIP container, so it starts with the local-file-header magic
    /// `PK\x03\x04`; anything else is treated as CSV text.
    pub fn sniff(bytes: &[u8]) -> Format {
        if bytes.starts_with(ZIP_MAGIC) {
            Format::Xlsx
        } else {
            Format::Csv
        }
    }
}

pub(crate) const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
/// OLE2 compound file: the legacy `.xls` format.
pub(crate) const OLE_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";
