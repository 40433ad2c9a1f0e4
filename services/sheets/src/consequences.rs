//! 结果运用: what each confirmed award means for the school and its principal, as a document
//! other bureau systems (评先树优, 校长职级制考核) import.

use crate::table::{Cell, Table};

/// The consequences of a campaign's confirmed awards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsequenceList {
    pub title: String,
    pub rows: Vec<ConsequenceLine>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsequenceLine {
    pub school: String,
    pub school_code: String,
    pub principal: String,
    /// The principal's stable id (the person, also after a change of principal).
    pub principal_id: String,
    /// The award's title as the definition writes it.
    pub award: String,
    /// 学校 or 校长.
    pub subject: String,
    pub label: String,
    pub kind: String,
    /// 2020年12月31日, or empty.
    pub valid_until: String,
}

impl ConsequenceList {
    pub const HEADERS: [&'static str; 10] = [
        "序号",
        "学校名称",
        "学校代码",
        "校长",
        "校长编号",
        "评定结果",
        "对象",
        "结果运用",
        "类别代码",
        "有效期至",
    ];

    pub fn to_table(&self) -> Table {
        let mut table = Table::new(&self.title, &Self::HEADERS);
        table.rows = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, c)| {
                vec![
                    Cell::Int(i as i64 + 1),
                    Cell::text(&c.school),
                    Cell::text(&c.school_code),
                    Cell::text(&c.principal),
                    Cell::text(&c.principal_id),
                    Cell::text(&c.award),
                    Cell::text(&c.subject),
                    Cell::text(&c.label),
                    Cell::text(&c.kind),
                    Cell::text(&c.valid_until),
                ]
            })
            .collect();
        table
    }

    pub fn to_xlsx(&self) -> Vec<u8> {
        self.to_table().to_xlsx()
    }

    pub fn to_csv(&self) -> Vec<u8> {
        self.to_table().to_csv()
    }
}
