//! School import from real CSV and XLSX bytes, good and broken.

use junheng_sheets::{Format, ImportError, Level, RowError, SchoolRecord, import_schools};
use rust_xlsxwriter::Workbook;

const HEADER: &str = "学校代码,学校名称,学段,所属镇街,校长,联系人,电子邮箱,手机号";

fn good_csv() -> String {
    [
        HEADER,
        "3707250001,昌乐县实验小学,小学,宝城街道,王建国,李红,shiyan@clx.edu.cn,13805361234",
        "3707250002,昌乐县第一初级中学,初中,宝城街道,张伟,,,",
        "3707250003,鄌郚镇中心学校,九年一贯制,鄌郚镇,刘芳,赵敏,wz@clx.edu.cn,15953600001",
    ]
    .join("\n")
        + "\n"
}

fn expected_good() -> Vec<SchoolRecord> {
    vec![
        SchoolRecord {
            code: "3707250001".into(),
            name: "昌乐县实验小学".into(),
            level: Level::Primary,
            town: "宝城街道".into(),
            principal: "王建国".into(),
            contact_name: Some("李红".into()),
            email: Some("shiyan@clx.edu.cn".into()),
            mobile: Some("13805361234".into()),
        },
        SchoolRecord {
            code: "3707250002".into(),
            name: "昌乐县第一初级中学".into(),
            level: Level::Junior,
            town: "宝城街道".into(),
            principal: "张伟".into(),
            contact_name: None,
            email: None,
            mobile: None,
        },
        SchoolRecord {
            code: "3707250003".into(),
            name: "鄌郚镇中心学校".into(),
            level: Level::NineYear,
            town: "鄌郚镇".into(),
            principal: "刘芳".into(),
            contact_name: Some("赵敏".into()),
            email: Some("wz@clx.edu.cn".into()),
            mobile: Some("15953600001".into()),
        },
    ]
}

fn rows_error(result: Result<Vec<SchoolRecord>, ImportError>) -> Vec<RowError> {
    match result {
        Err(ImportError::Rows(errors)) => errors,
        other => panic!("expected row errors, got {other:?}"),
    }
}

#[test]
fn utf8_csv_imports_every_school() {
    let schools = import_schools(good_csv().as_bytes(), Format::Csv).unwrap();
    assert_eq!(schools, expected_good());
}

#[test]
fn utf8_csv_with_bom_and_crlf_imports_the_same() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(good_csv().replace('\n', "\r\n").as_bytes());
    assert_eq!(Format::sniff(&bytes), Format::Csv);
    assert_eq!(
        import_schools(&bytes, Format::Csv).unwrap(),
        expected_good()
    );
}

#[test]
fn gbk_csv_from_chinese_excel_imports_with_correct_chinese() {
    let text = good_csv();
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(&text);
    assert!(!unmappable);
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "the test file must really be GBK"
    );
    assert_eq!(
        import_schools(&bytes, Format::Csv).unwrap(),
        expected_good()
    );
}

#[test]
fn latin1_or_garbage_is_refused_with_a_clear_message() {
    let latin1 = "code,name,level,town,principal\n\
                  3707250001,École Saint-André,primary,Bourg-la-Reine,Müller\n";
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(latin1);
    let err = import_schools(&bytes, Format::Csv).unwrap_err();
    assert_eq!(err, ImportError::Encoding);
    assert_eq!(
        err.to_string(),
        "file is neither UTF-8 nor GBK; save as 'CSV UTF-8'"
    );

    // This Latin-1 text happens to be valid GB18030 byte by byte; the header
    // then names no known column, which is what gives it away.
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode("Schüler,Größe\nMüller,Weißer\n");
    assert!(
        encoding_rs::GB18030
            .decode_without_bom_handling_and_without_replacement(&bytes)
            .is_some()
    );
    assert_eq!(
        import_schools(&bytes, Format::Csv).unwrap_err(),
        ImportError::Encoding
    );

    let garbage: Vec<u8> = (0..512u32).map(|i| (i * 131 % 256) as u8).collect();
    assert_eq!(
        import_schools(&garbage, Format::Csv).unwrap_err(),
        ImportError::Encoding
    );
}

#[test]
fn header_missing_school_code_names_the_column() {
    let csv = "学校名称,学段,所属镇街,校长\n昌乐县实验小学,小学,宝城街道,王建国\n";
    let err = import_schools(csv.as_bytes(), Format::Csv).unwrap_err();
    assert_eq!(
        err,
        ImportError::MissingColumns(vec!["学校代码 (code)".into()])
    );
    assert!(err.to_string().contains("学校代码"), "{err}");
}

#[test]
fn english_headers_in_any_order_with_extra_columns() {
    let csv = "Principal,level,备注,name,code,town\n\
               王建国,primary,无,昌乐县实验小学,3707250001,宝城街道\n";
    let schools = import_schools(csv.as_bytes(), Format::Csv).unwrap();
    assert_eq!(schools.len(), 1);
    assert_eq!(schools[0].code, "3707250001");
    assert_eq!(schools[0].level, Level::Primary);
    assert_eq!(schools[0].principal, "王建国");
    assert_eq!(schools[0].mobile, None);
}

#[test]
fn the_same_field_twice_is_refused() {
    let csv = "学校代码,code,学校名称,学段,所属镇街,校长\n";
    assert_eq!(
        import_schools(csv.as_bytes(), Format::Csv).unwrap_err(),
        ImportError::DuplicateColumn {
            first: "学校代码".into(),
            second: "code".into()
        }
    );
}

#[test]
fn every_bad_row_is_reported_at_once_with_excel_row_numbers() {
    // Excel rows: 1 header, 2 ok, 3 bad code, 4 blank, 5 unknown level and bad
    // mobile, 6 multi-line name (one Excel row, two text lines), 7 duplicate of
    // row 2 with a bad email and no principal, 8–9 blank trailing rows.
    let csv = [
        HEADER,
        "3707250001,昌乐县实验小学,小学,宝城街道,王建国,,,",
        "370725001,昌乐县二小,小学,宝城街道,李四,,,",
        "",
        "3707250003,朱刘街道中学,高中,朱刘街道,王五,,,1380536",
        "3707250004,\"营丘镇\n中心小学\",小学,营丘镇,赵六,,,",
        "3707250001,昌乐县实验小学（重复）,小学,宝城街道,,,not-an-email,",
        ",,,,,,,",
        "",
    ]
    .join("\n");
    let expected = vec![
        (3, "学校代码"),
        (5, "学段"),
        (5, "手机号"),
        (7, "校长"),
        (7, "电子邮箱"),
        (7, "学校代码"),
    ];
    // Line ends and a missing final newline must not shift the row numbers.
    let crlf = csv.replace('\n', "\r\n");
    let old_mac = csv.replace('\n', "\r");
    let unterminated = csv.trim_end_matches([',', '\n']).to_owned();
    for variant in [&crlf, &old_mac, &unterminated] {
        let errors = rows_error(import_schools(variant.as_bytes(), Format::Csv));
        let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.row, e.column.as_str())).collect();
        assert_eq!(got, expected, "{variant:?}");
    }
    let errors = rows_error(import_schools(csv.as_bytes(), Format::Csv));
    let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.row, e.column.as_str())).collect();
    assert_eq!(got, expected, "{errors:#?}");
    assert!(
        errors[0].reason.contains("10 digits"),
        "{}",
        errors[0].reason
    );
    assert!(errors[1].reason.contains("高中"), "{}", errors[1].reason);
    assert!(
        errors[5].reason.contains("3707250001") && errors[5].reason.contains("row 2"),
        "the duplicate must name both rows: {}",
        errors[5].reason
    );
    let shown = ImportError::Rows(errors).to_string();
    assert!(shown.starts_with("6 invalid cell(s)"), "{shown}");
}

#[test]
fn excel_scientific_notation_codes_get_a_specific_hint() {
    let csv = "code,name,level,town,principal\n3.70725E+09,甲校,小学,宝城街道,王\n";
    let errors = rows_error(import_schools(csv.as_bytes(), Format::Csv));
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].reason.contains("scientific notation"),
        "{errors:?}"
    );
}

#[test]
fn empty_and_blank_files() {
    assert_eq!(
        import_schools(b"", Format::Csv).unwrap_err(),
        ImportError::Empty
    );
    assert_eq!(
        import_schools(b"\xEF\xBB\xBF\n,,\n", Format::Csv).unwrap_err(),
        ImportError::Empty
    );
    // A header with no data is a valid, empty list.
    assert_eq!(
        import_schools(HEADER.as_bytes(), Format::Csv).unwrap(),
        vec![]
    );
}

#[test]
fn workbooks_are_not_read_as_csv() {
    let xlsx = Workbook::new().save_to_buffer().unwrap();
    assert!(matches!(
        import_schools(&xlsx, Format::Csv),
        Err(ImportError::UnsupportedFormat(_))
    ));
    assert!(matches!(
        import_schools(b"not a zip", Format::Xlsx),
        Err(ImportError::Workbook(_))
    ));
}

/// The bureau's sheet as Excel saves it: a title row, then the header, codes and
/// mobiles typed as numbers.
fn bureau_xlsx(rows: &[(f64, &str, &str, &str, &str, f64)]) -> Vec<u8> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.write_string(0, 0, "昌乐县义务教育学校名单").unwrap();
    for (c, h) in ["学段", "学校名称", "学校代码", "所属镇街", "校长", "手机号"]
        .iter()
        .enumerate()
    {
        sheet.write_string(1, c as u16, *h).unwrap();
    }
    for (i, (code, name, level, town, principal, mobile)) in rows.iter().enumerate() {
        let r = i as u32 + 2;
        sheet.write_string(r, 0, *level).unwrap();
        sheet.write_string(r, 1, *name).unwrap();
        sheet.write_number(r, 2, *code).unwrap();
        sheet.write_string(r, 3, *town).unwrap();
        sheet.write_string(r, 4, *principal).unwrap();
        sheet.write_number(r, 5, *mobile).unwrap();
    }
    workbook.save_to_buffer().unwrap()
}

#[test]
fn xlsx_with_numeric_codes_imports_digit_strings() {
    let bytes = bureau_xlsx(&[
        (
            3707250001.0,
            "昌乐县实验小学",
            "小学",
            "宝城街道",
            "王建国",
            13805361234.0,
        ),
        (
            3707250003.0,
            "鄌郚镇中心学校",
            "nine_year",
            "鄌郚镇",
            "刘芳",
            15953600001.0,
        ),
    ]);
    assert_eq!(Format::sniff(&bytes), Format::Xlsx);
    let schools = import_schools(&bytes, Format::sniff(&bytes)).unwrap();
    assert_eq!(
        schools
            .iter()
            .map(|s| (
                s.code.as_str(),
                s.name.as_str(),
                s.level,
                s.mobile.as_deref()
            ))
            .collect::<Vec<_>>(),
        vec![
            (
                "3707250001",
                "昌乐县实验小学",
                Level::Primary,
                Some("13805361234")
            ),
            (
                "3707250003",
                "鄌郚镇中心学校",
                Level::NineYear,
                Some("15953600001")
            ),
        ]
    );
}

#[test]
fn xlsx_row_errors_use_the_row_numbers_excel_shows() {
    let bytes = bureau_xlsx(&[
        (
            3707250001.0,
            "甲校",
            "小学",
            "宝城街道",
            "王",
            13805361234.0,
        ),
        (37072500.5, "乙校", "小学", "宝城街道", "李", 13805361234.0),
        (
            3707250001.0,
            "丙校",
            "初中",
            "宝城街道",
            "张",
            23805361234.0,
        ),
    ]);
    let errors = rows_error(import_schools(&bytes, Format::Xlsx));
    assert_eq!(
        errors
            .iter()
            .map(|e| (e.row, e.column.as_str()))
            .collect::<Vec<_>>(),
        vec![(4, "学校代码"), (5, "手机号"), (5, "学校代码")],
        "{errors:#?}"
    );
    assert!(errors[0].reason.contains("37072500.5"), "{errors:?}");
    assert!(errors[2].reason.contains("row 3"), "{errors:?}");
}
