//! Every exported document read back the way a user's spreadsheet program
//! would: XLSX through calamine, CSV through the csv crate.

use std::collections::BTreeMap;
use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use junheng_sheets::{
    Award, AwardLine, AwardList, Cell, Format, Level, MentorLine, MentorList, Practice,
    PracticeCollection, PracticeGroup, ResultLine, ResultsNotice, SchoolLine, SeedListNotice,
    Table, VetoLine, VetoList, import_schools, practice_collection_markdown,
};

/// The first sheet as absolute rows × columns, starting at A1.
fn read_xlsx(bytes: &[u8]) -> (String, Vec<Vec<Data>>) {
    let mut workbook: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    let name = workbook.sheet_names()[0].clone();
    let range = workbook.worksheet_range_at(0).unwrap().unwrap();
    assert_eq!(range.start(), Some((0, 0)), "the title must be in A1");
    let rows = range.rows().map(<[Data]>::to_vec).collect();
    (name, rows)
}

fn text(d: &Data) -> String {
    d.to_string()
}

fn read_csv(bytes: &[u8]) -> Vec<Vec<String>> {
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBF"),
        "CSV must start with a BOM"
    );
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(&bytes[3..]);
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// Checks both renderings against what a person expects to see: title in A1,
/// the notes below it, then exactly `headers` and `rows` (as displayed text).
fn assert_renders(
    xlsx: &[u8],
    csv: &[u8],
    title: &str,
    notes: &[&str],
    headers: &[&str],
    rows: &[Vec<&str>],
) {
    assert_renders_with_footer(xlsx, csv, title, notes, headers, rows, &[]);
}

#[allow(clippy::too_many_arguments)]
fn assert_renders_with_footer(
    xlsx: &[u8],
    csv: &[u8],
    title: &str,
    notes: &[&str],
    headers: &[&str],
    rows: &[Vec<&str>],
    footer: &[&str],
) {
    let (sheet_name, sheet) = read_xlsx(xlsx);
    assert!(title.starts_with(&sheet_name), "sheet name {sheet_name:?}");
    assert_eq!(text(&sheet[0][0]), title);
    for (i, note) in notes.iter().enumerate() {
        assert_eq!(text(&sheet[1 + i][0]), *note);
    }
    let header_row = 1 + notes.len();
    let got_headers: Vec<String> = sheet[header_row].iter().map(text).collect();
    assert_eq!(got_headers, headers);
    let got_rows: Vec<Vec<String>> = sheet[header_row + 1..]
        .iter()
        .take(rows.len())
        .map(|r| r.iter().map(text).collect())
        .collect();
    assert_eq!(got_rows, rows);
    // What follows the data: nothing, or one empty row and then the footer lines.
    let after: Vec<String> = sheet[(header_row + 1 + rows.len()).min(sheet.len())..]
        .iter()
        .map(|r| r.iter().map(text).collect::<Vec<_>>().concat())
        .collect();
    let mut expected_after: Vec<String> = Vec::new();
    if !footer.is_empty() {
        expected_after.push(String::new());
        expected_after.extend(footer.iter().map(|f| (*f).to_owned()));
    }
    assert_eq!(after, expected_after);

    let mut expected_csv = vec![headers.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>()];
    expected_csv.extend(
        rows.iter()
            .map(|r| r.iter().map(|c| (*c).to_owned()).collect()),
    );
    assert_eq!(read_csv(csv), expected_csv);
}

fn school(code: &str, name: &str, level: Level, town: &str, principal: &str) -> SchoolLine {
    SchoolLine {
        code: code.into(),
        name: name.into(),
        level,
        town: town.into(),
        principal: principal.into(),
    }
}

fn seed_notice() -> SeedListNotice {
    SeedListNotice {
        title: "关于昌乐县2020年标杆种子校拟定名单的公示".into(),
        basis: "根据《昌乐县2020年义务教育优质均衡系列示范校创建实施方案》（乐教督字〔2020〕2号）要求，经学校申报、昌乐县人民政府教育督导室审核，现将昌乐县2020年标杆种子校拟定名单予以公示。".into(),
        period: "公示期：2020年4月10日至2020年4月16日（共5个工作日）".into(),
        rows: vec![
            school(
                "3707250001",
                "昌乐县实验小学",
                Level::Primary,
                "宝城街道",
                "王建国",
            ),
            school(
                "3707250003",
                "鄌郚镇中心学校",
                Level::NineYear,
                "鄌郚镇",
                "刘芳",
            ),
        ],
        footer: SEED_FOOTER.iter().map(|l| (*l).to_owned()).collect(),
    }
}

/// How to object, the contacts and the 落款, as `junheng_core::text::notice::footer` words them.
const SEED_FOOTER: [&str; 5] = [
    "公示期内，如对公示内容有异议，请以书面形式实名向昌乐县人民政府教育督导室反映，写明真实姓名和联系方式，并提供必要的证据材料。截止时间：2020年4月16日。匿名异议不予受理。",
    "监督电话：0536-6212345",
    "电子邮箱：jydds@changle.example",
    "昌乐县教育和体育局",
    "2020年4月10日",
];

#[test]
fn seed_list_notice() {
    let doc = seed_notice();
    assert_renders_with_footer(
        &doc.to_xlsx(),
        &doc.to_csv(),
        "关于昌乐县2020年标杆种子校拟定名单的公示",
        &[
            "根据《昌乐县2020年义务教育优质均衡系列示范校创建实施方案》（乐教督字〔2020〕2号）要求，经学校申报、昌乐县人民政府教育督导室审核，现将昌乐县2020年标杆种子校拟定名单予以公示。",
            "公示期：2020年4月10日至2020年4月16日（共5个工作日）",
        ],
        &["序号", "学校代码", "学校名称", "学段", "所属镇街", "校长"],
        &[
            vec![
                "1",
                "3707250001",
                "昌乐县实验小学",
                "小学",
                "宝城街道",
                "王建国",
            ],
            vec![
                "2",
                "3707250003",
                "鄌郚镇中心学校",
                "九年一贯制",
                "鄌郚镇",
                "刘芳",
            ],
        ],
        &SEED_FOOTER,
    );
}

#[test]
fn seed_list_xlsx_can_be_imported_back_as_schools() {
    // The bureau edits a published list and feeds it back: the title and note
    // rows above the header must not get in the way.
    let xlsx = seed_notice().to_xlsx();
    let schools = import_schools(&xlsx, Format::sniff(&xlsx)).unwrap();
    assert_eq!(
        schools.iter().map(|s| s.code.as_str()).collect::<Vec<_>>(),
        ["3707250001", "3707250003"]
    );
    assert_eq!(schools[1].level, Level::NineYear);
}

#[test]
fn mentor_list_explains_each_school() {
    let doc = MentorList {
        title: "昌乐县2020年导师型学校名单".into(),
        rows: vec![MentorLine {
            school: school(
                "3707250001",
                "昌乐县实验小学",
                Level::Primary,
                "宝城街道",
                "王建国",
            ),
            rule_explanation: "8项指标均评为优秀；入选做法覆盖2项指标（学校管理、校园文化）".into(),
        }],
    };
    assert_renders(
        &doc.to_xlsx(),
        &doc.to_csv(),
        "昌乐县2020年导师型学校名单",
        &[],
        &[
            "序号",
            "学校代码",
            "学校名称",
            "学段",
            "所属镇街",
            "校长",
            "认定依据",
        ],
        &[vec![
            "1",
            "3707250001",
            "昌乐县实验小学",
            "小学",
            "宝城街道",
            "王建国",
            "8项指标均评为优秀；入选做法覆盖2项指标（学校管理、校园文化）",
        ]],
    );
}

fn practices() -> PracticeCollection {
    PracticeCollection {
        title: "昌乐县2020年可复制性经验做法集锦".into(),
        groups: vec![
            PracticeGroup {
                indicator: "学校管理".into(),
                practices: vec![
                    Practice {
                        school: "昌乐县实验小学".into(),
                        name: "级部扁平化管理".into(),
                        summary: "以级部为单位统筹教学与德育。\n每周例会*复盘*。".into(),
                    },
                    Practice {
                        school: "鄌郚镇中心学校".into(),
                        name: "#1 家校共育".into(),
                        summary: "家长驻校值周。".into(),
                    },
                ],
            },
            PracticeGroup {
                indicator: "校园文化".into(),
                practices: vec![],
            },
        ],
    }
}

#[test]
fn practice_collection_grouped_by_indicator() {
    let doc = practices();
    assert_renders(
        &doc.to_xlsx(),
        &doc.to_csv(),
        "昌乐县2020年可复制性经验做法集锦",
        &[],
        &["指标", "学校名称", "做法名称", "做法简介"],
        &[
            vec![
                "学校管理",
                "昌乐县实验小学",
                "级部扁平化管理",
                "以级部为单位统筹教学与德育。\n每周例会*复盘*。",
            ],
            vec![
                "学校管理",
                "鄌郚镇中心学校",
                "#1 家校共育",
                "家长驻校值周。",
            ],
        ],
    );
}

#[test]
fn practice_collection_markdown_escapes_user_text() {
    assert_eq!(
        practice_collection_markdown(&practices()),
        "# 昌乐县2020年可复制性经验做法集锦\n\
         \n## 学校管理\n\
         \n### 级部扁平化管理（昌乐县实验小学）\n\
         \n以级部为单位统筹教学与德育。\n每周例会\\*复盘\\*。\n\
         \n### \\#1 家校共育（鄌郚镇中心学校）\n\
         \n家长驻校值周。\n\
         \n## 校园文化\n\
         \n暂无入选做法。\n"
    );
}

#[test]
fn results_notice_has_dynamic_indicator_columns() {
    let indicators = vec![
        "生均占有值".to_owned(),
        "教学质量".to_owned(),
        "校园文化".to_owned(),
    ];
    let doc = ResultsNotice {
        title: "关于昌乐县2020年潜力校验收成绩的公示".into(),
        basis: "根据《昌乐县2020年义务教育优质均衡系列示范校创建实施方案》（乐教督字〔2020〕2号）要求，经学校申报、昌乐县人民政府教育督导室审核，现将昌乐县2020年潜力校验收成绩（含帮扶的导师学校）予以公示。".into(),
        period: "公示期：2020年8月20日至2020年8月26日（共5个工作日）".into(),
        indicators: indicators.clone(),
        footer: Vec::new(),
        rows: vec![
            ResultLine {
                school: "昌乐县二小".into(),
                mentor_school: "昌乐县实验小学".into(),
                report_score: 88.5,
                onsite_score: 90.0,
                final_score: 89.4,
                passes: BTreeMap::from([
                    ("生均占有值".to_owned(), true),
                    ("教学质量".to_owned(), false),
                    ("校园文化".to_owned(), true),
                ]),
            },
            ResultLine {
                school: "朱刘街道中学".into(),
                mentor_school: "昌乐县第一初级中学".into(),
                report_score: 76.333_333,
                onsite_score: 80.0,
                final_score: 78.533_333,
                passes: BTreeMap::from([("生均占有值".to_owned(), true)]),
            },
        ],
    };
    let xlsx = doc.to_xlsx();
    assert_renders(
        &xlsx,
        &doc.to_csv(),
        "关于昌乐县2020年潜力校验收成绩的公示",
        &[
            "根据《昌乐县2020年义务教育优质均衡系列示范校创建实施方案》（乐教督字〔2020〕2号）要求，经学校申报、昌乐县人民政府教育督导室审核，现将昌乐县2020年潜力校验收成绩（含帮扶的导师学校）予以公示。",
            "公示期：2020年8月20日至2020年8月26日（共5个工作日）",
            "指标达标情况：✓ 达标，✗ 未达标，— 未评定",
        ],
        &[
            "学校名称",
            "导师学校",
            "提升汇报得分",
            "现场查验得分",
            "综合得分",
            "生均占有值",
            "教学质量",
            "校园文化",
        ],
        &[
            vec![
                "昌乐县二小",
                "昌乐县实验小学",
                "88.5",
                "90",
                "89.4",
                "✓",
                "✗",
                "✓",
            ],
            vec![
                "朱刘街道中学",
                "昌乐县第一初级中学",
                "76.33",
                "80",
                "78.53",
                "✓",
                "—",
                "—",
            ],
        ],
    );
    // Scores are real numbers in the workbook, so the bureau can sort and sum.
    let (_, sheet) = read_xlsx(&xlsx);
    assert_eq!(sheet[5][4], Data::Float(89.4));
}

#[test]
fn award_list() {
    let doc = AwardList {
        title: "昌乐县2020年义务教育优质均衡提升行动评先树优名单".into(),
        rows: vec![
            AwardLine {
                school: "昌乐县实验小学".into(),
                level: Level::Primary,
                town: "宝城街道".into(),
                principal: "王建国".into(),
                award: Award::Contribution,
                award_title: "全县义务教育优质均衡贡献校".into(),
                basis: "帮扶记录12次；所带潜力校平均提升9.2分（≥5）".into(),
            },
            AwardLine {
                school: "昌乐县二小".into(),
                level: Level::Primary,
                town: "宝城街道".into(),
                principal: "李四".into(),
                award: Award::Progress,
                award_title: String::new(),
                basis: "达标；较基线提升12.5分，位列前20%".into(),
            },
            AwardLine {
                school: "鄌郚镇中心学校".into(),
                level: Level::NineYear,
                town: "鄌郚镇".into(),
                principal: "刘芳".into(),
                award: Award::Model,
                award_title: String::new(),
                basis: "种子校".into(),
            },
            AwardLine {
                school: "朱刘街道中学".into(),
                level: Level::Junior,
                town: "朱刘街道".into(),
                principal: "王五".into(),
                award: Award::Compliance,
                award_title: String::new(),
                basis: "8项指标均达到合格线".into(),
            },
        ],
    };
    assert_renders(
        &doc.to_xlsx(),
        &doc.to_csv(),
        "昌乐县2020年义务教育优质均衡提升行动评先树优名单",
        &[],
        &["学校名称", "学段", "所属镇街", "校长", "奖项", "依据"],
        &[
            vec![
                "昌乐县实验小学",
                "小学",
                "宝城街道",
                "王建国",
                "全县义务教育优质均衡贡献校",
                "帮扶记录12次；所带潜力校平均提升9.2分（≥5）",
            ],
            vec![
                "鄌郚镇中心学校",
                "九年一贯制",
                "鄌郚镇",
                "刘芳",
                "标兵校",
                "种子校",
            ],
            vec![
                "昌乐县二小",
                "小学",
                "宝城街道",
                "李四",
                "进步校",
                "达标；较基线提升12.5分，位列前20%",
            ],
            vec![
                "朱刘街道中学",
                "初中",
                "朱刘街道",
                "王五",
                "达标校",
                "8项指标均达到合格线",
            ],
        ],
    );
}

#[test]
fn veto_list() {
    let doc = VetoList {
        title: "昌乐县2020年一票否决名单".into(),
        rows: vec![VetoLine {
            school: "营丘镇中心小学".into(),
            principal: "赵六".into(),
            reason: "3项指标未达到合格线（教学质量、学生发展、校园文化）".into(),
        }],
    };
    assert_renders(
        &doc.to_xlsx(),
        &doc.to_csv(),
        "昌乐县2020年一票否决名单",
        &[],
        &["学校名称", "校长", "否决原因"],
        &[vec![
            "营丘镇中心小学",
            "赵六",
            "3项指标未达到合格线（教学质量、学生发展、校园文化）",
        ]],
    );
}

#[test]
fn odd_tables_still_make_valid_workbooks() {
    // One column (no merge possible), no rows, a title with characters Excel
    // forbids in sheet names, and a cell longer than Excel allows.
    let mut table = Table::new("名单: [草稿] 2020/04?", &["学校"]);
    table.rows.push(vec![Cell::text("校".repeat(40_000))]);
    let (name, sheet) = read_xlsx(&table.to_xlsx());
    assert_eq!(name, "名单 草稿 202004");
    assert_eq!(text(&sheet[0][0]), "名单: [草稿] 2020/04?");
    assert_eq!(text(&sheet[2][0]).chars().count(), 32_767);

    let empty = Table::new("", &[]);
    let mut workbook: Xlsx<_> =
        calamine::open_workbook_from_rs(Cursor::new(empty.to_xlsx())).unwrap();
    assert_eq!(workbook.sheet_names(), ["Sheet1"]);
    assert!(workbook.worksheet_range_at(0).unwrap().unwrap().is_empty());
}

/// Only when a spreadsheet program is installed: LibreOffice must open the
/// workbook and see the Chinese text. It is not installed for this check.
#[test]
fn libreoffice_opens_the_workbook_if_installed() {
    let Some(office) = ["libreoffice", "soffice"].into_iter().find(|bin| {
        std::process::Command::new(bin)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        println!("note: LibreOffice is not installed; skipping the spreadsheet-program check");
        return;
    };
    let dir = std::env::temp_dir().join(format!("junheng-sheets-lo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("seed.xlsx");
    std::fs::write(&input, seed_notice().to_xlsx()).unwrap();
    let status = std::process::Command::new(office)
        .args([
            "--headless",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76",
        ])
        .arg("--outdir")
        .arg(&dir)
        .arg(&input)
        .env("HOME", &dir)
        .status()
        .unwrap();
    assert!(status.success());
    let converted = std::fs::read_to_string(dir.join("seed.csv")).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        converted.contains("关于昌乐县2020年标杆种子校拟定名单的公示"),
        "{converted}"
    );
    assert!(converted.contains("鄌郚镇中心学校"), "{converted}");
}
