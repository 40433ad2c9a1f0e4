//! The documents the bureau posts or files. Each is a plain input struct the
//! caller fills from its own domain types, turned into a [`Table`] by
//! `to_table`; `to_xlsx` / `to_csv` are shorthands for that table's renderings.

use std::collections::BTreeMap;

use crate::school::Level;
use crate::table::{Cell, Table};

/// A row naming one school the way a notice lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolLine {
    pub code: String,
    pub name: String,
    pub level: Level,
    pub town: String,
    pub principal: String,
}

/// 标杆种子校拟定名单公示.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedListNotice {
    /// e.g. "关于昌乐县2020年标杆种子校拟定名单的公示"
    pub title: String,
    /// The basis with the document number and the 公示期 line, worded as the public page
    /// words them (`junheng_core::text::notice`); an empty line is left out.
    pub basis: String,
    pub period: String,
    pub rows: Vec<SchoolLine>,
    /// After the list: how to object, the contacts and the 落款 (issuing unit, date).
    pub footer: Vec<String>,
}

/// 导师型学校名单: each school with the reason the rule selected it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MentorList {
    pub title: String,
    pub rows: Vec<MentorLine>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MentorLine {
    pub school: SchoolLine,
    /// Which rule made it a mentor, on which facts, e.g.
    /// "8项指标均评为优秀；入选做法覆盖2项指标（学校管理、校园文化）".
    pub rule_explanation: String,
}

/// 可复制性经验做法集锦, grouped by indicator in the caller's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PracticeCollection {
    pub title: String,
    pub groups: Vec<PracticeGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PracticeGroup {
    pub indicator: String,
    pub practices: Vec<Practice>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Practice {
    pub school: String,
    pub name: String,
    pub summary: String,
}

/// 成绩公示: scores of each potential school and its mentor school.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultsNotice {
    pub title: String,
    /// As [`SeedListNotice::basis`] and [`SeedListNotice::period`].
    pub basis: String,
    pub period: String,
    /// Indicator names, in column order.
    pub indicators: Vec<String>,
    pub rows: Vec<ResultLine>,
    /// As [`SeedListNotice::footer`].
    pub footer: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResultLine {
    pub school: String,
    pub mentor_school: String,
    pub report_score: f64,
    pub onsite_score: f64,
    pub final_score: f64,
    /// Pass flag per indicator name; an indicator absent here shows as "—".
    pub passes: BTreeMap<String, bool>,
}

/// The four award classes (奖项).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Award {
    /// 贡献校
    Contribution,
    /// 标兵校
    Model,
    /// 进步校
    Progress,
    /// 达标校
    Compliance,
}

impl Award {
    /// The order the award list groups them in.
    pub fn rank(self) -> u8 {
        match self {
            Award::Contribution => 0,
            Award::Model => 1,
            Award::Progress => 2,
            Award::Compliance => 3,
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Award::Contribution => "贡献校",
            Award::Model => "标兵校",
            Award::Progress => "进步校",
            Award::Compliance => "达标校",
        }
    }
}

/// 评先树优名单.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwardList {
    pub title: String,
    pub rows: Vec<AwardLine>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwardLine {
    pub school: String,
    pub level: Level,
    pub town: String,
    pub principal: String,
    pub award: Award,
    /// The award's title as the plan writes it (全县义务教育优质均衡贡献校); empty: the short
    /// label (贡献校).
    pub award_title: String,
    /// The reasoning: which rule fired, on which numbers.
    pub basis: String,
}

/// 一票否决名单.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VetoList {
    pub title: String,
    pub rows: Vec<VetoLine>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VetoLine {
    pub school: String,
    pub principal: String,
    pub reason: String,
}

pub const PASS_MARK: &str = "✓";
pub const FAIL_MARK: &str = "✗";
pub const NOT_ASSESSED_MARK: &str = "—";

/// The basis and period rows under a notice's title.
fn notice_notes(basis: &str, period: &str) -> Vec<String> {
    [basis, period]
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Scores are shown to two decimals; the stored value keeps full precision.
fn score(x: f64) -> Cell {
    Cell::Number((x * 100.0).round() / 100.0)
}

fn school_cells(n: usize, s: &SchoolLine) -> Vec<Cell> {
    vec![
        Cell::Int(n as i64),
        Cell::text(&s.code),
        Cell::text(&s.name),
        Cell::text(s.level.label_zh()),
        Cell::text(&s.town),
        Cell::text(&s.principal),
    ]
}

const SCHOOL_HEADERS: [&str; 6] = ["序号", "学校代码", "学校名称", "学段", "所属镇街", "校长"];

impl SeedListNotice {
    pub fn to_table(&self) -> Table {
        let mut table = Table::new(&self.title, &SCHOOL_HEADERS);
        table.notes = notice_notes(&self.basis, &self.period);
        table.rows = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, s)| school_cells(i + 1, s))
            .collect();
        table.footer = self.footer.clone();
        table
    }
}

impl MentorList {
    pub fn to_table(&self) -> Table {
        let mut headers = SCHOOL_HEADERS.to_vec();
        headers.push("认定依据");
        let mut table = Table::new(&self.title, &headers);
        table.rows = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut cells = school_cells(i + 1, &m.school);
                cells.push(Cell::text(&m.rule_explanation));
                cells
            })
            .collect();
        table
    }
}

impl PracticeCollection {
    pub fn to_table(&self) -> Table {
        let mut table = Table::new(&self.title, &["指标", "学校名称", "做法名称", "做法简介"]);
        table.rows = self
            .groups
            .iter()
            .flat_map(|g| {
                g.practices.iter().map(|p| {
                    vec![
                        Cell::text(&g.indicator),
                        Cell::text(&p.school),
                        Cell::text(&p.name),
                        Cell::text(&p.summary),
                    ]
                })
            })
            .collect();
        table
    }
}

impl ResultsNotice {
    pub fn to_table(&self) -> Table {
        let mut headers = vec![
            "学校名称",
            "导师学校",
            "提升汇报得分",
            "现场查验得分",
            "综合得分",
        ];
        headers.extend(self.indicators.iter().map(String::as_str));
        let mut table = Table::new(&self.title, &headers);
        table.notes = notice_notes(&self.basis, &self.period);
        table.notes.push(format!(
            "指标达标情况：{PASS_MARK} 达标，{FAIL_MARK} 未达标，{NOT_ASSESSED_MARK} 未评定"
        ));
        table.rows = self
            .rows
            .iter()
            .map(|r| {
                let mut cells = vec![
                    Cell::text(&r.school),
                    Cell::text(&r.mentor_school),
                    score(r.report_score),
                    score(r.onsite_score),
                    score(r.final_score),
                ];
                cells.extend(self.indicators.iter().map(|ind| {
                    Cell::text(match r.passes.get(ind) {
                        Some(true) => PASS_MARK,
                        Some(false) => FAIL_MARK,
                        None => NOT_ASSESSED_MARK,
                    })
                }));
                cells
            })
            .collect();
        table.footer = self.footer.clone();
        table
    }
}

impl AwardList {
    pub fn to_table(&self) -> Table {
        let mut table = Table::new(
            &self.title,
            &["学校名称", "学段", "所属镇街", "校长", "奖项", "依据"],
        );
        // Grouped by class, in the plan's order (贡献校, 标兵校, 进步校, 达标校), each under
        // its title; the caller's order within a class.
        let mut rows: Vec<&AwardLine> = self.rows.iter().collect();
        rows.sort_by_key(|a| a.award.rank());
        table.rows = rows
            .into_iter()
            .map(|a| {
                let title = if a.award_title.is_empty() {
                    a.award.label_zh()
                } else {
                    a.award_title.as_str()
                };
                vec![
                    Cell::text(&a.school),
                    Cell::text(a.level.label_zh()),
                    Cell::text(&a.town),
                    Cell::text(&a.principal),
                    Cell::text(title),
                    Cell::text(&a.basis),
                ]
            })
            .collect();
        table
    }
}

impl VetoList {
    pub fn to_table(&self) -> Table {
        let mut table = Table::new(&self.title, &["学校名称", "校长", "否决原因"]);
        table.rows = self
            .rows
            .iter()
            .map(|v| {
                vec![
                    Cell::text(&v.school),
                    Cell::text(&v.principal),
                    Cell::text(&v.reason),
                ]
            })
            .collect();
        table
    }
}

/// `to_xlsx` / `to_csv` on every document, through its table.
macro_rules! renderings {
    ($($doc:ty),*) => {$(
        impl $doc {
            pub fn to_xlsx(&self) -> Vec<u8> {
                self.to_table().to_xlsx()
            }
            pub fn to_csv(&self) -> Vec<u8> {
                self.to_table().to_csv()
            }
        }
    )*};
}

renderings!(
    SeedListNotice,
    MentorList,
    PracticeCollection,
    ResultsNotice,
    AwardList,
    VetoList
);

/// The practice collection as Markdown: `#` title, `##` per indicator, `###`
/// per practice with its school, then the summary. Indicators with no accepted
/// practice are listed with "暂无入选做法", so the digest shows the gap.
pub fn practice_collection_markdown(collection: &PracticeCollection) -> String {
    let mut md = format!("# {}\n", escape_inline(&collection.title));
    for group in &collection.groups {
        md.push_str(&format!("\n## {}\n", escape_inline(&group.indicator)));
        if group.practices.is_empty() {
            md.push_str("\n暂无入选做法。\n");
        }
        for p in &group.practices {
            md.push_str(&format!(
                "\n### {}（{}）\n",
                escape_inline(&p.name),
                escape_inline(&p.school)
            ));
            let summary = p.summary.trim();
            if !summary.is_empty() {
                md.push('\n');
                for line in summary.lines() {
                    md.push_str(&escape_inline(line.trim_end()));
                    md.push('\n');
                }
            }
        }
    }
    md
}

/// User text must not turn into Markdown structure (headings, emphasis,
/// links, HTML) in the rendered digest.
fn escape_inline(s: &str) -> String {
    let s = s.replace(['\r', '\n'], " ");
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '!' | '~'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
