//! Whatever text a table holds, the CSV export parses back to the same rows, except that text
//! a spreadsheet would run as a formula comes back with a leading `'` — and no cell of the
//! body ever starts like a formula.

use junheng_sheets::{Cell, Table};
use proptest::prelude::*;

fn table() -> impl Strategy<Value = Table> {
    (1usize..6).prop_flat_map(|width| {
        (
            any::<String>(),
            prop::collection::vec(any::<String>(), width),
            prop::collection::vec(prop::collection::vec(any::<String>(), width), 0..8),
        )
            .prop_map(|(title, headers, rows)| Table {
                // A footer like a 公示's lives in the XLSX only: the CSV must not carry it.
                footer: vec![title.clone()],
                title,
                notes: vec![],
                headers,
                rows: rows
                    .into_iter()
                    .map(|r| r.into_iter().map(Cell::Text).collect())
                    .collect(),
            })
    })
}

/// A lone empty field is the one case where a naive writer emits a blank
/// line, which readers skip; it must survive as a row.
#[test]
fn single_empty_cells_survive() {
    let table = Table {
        title: String::new(),
        notes: vec![],
        footer: vec![],
        headers: vec![String::new()],
        rows: vec![vec![Cell::Empty], vec![Cell::text("")]],
    };
    let bytes = table.to_csv();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&bytes[3..]);
    assert_eq!(
        reader.records().count(),
        3,
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn csv_export_round_trips_any_unicode(table in table()) {
        let bytes = table.to_csv();
        prop_assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(&bytes[3..]);
        let parsed: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect();
        let mut expected = vec![table.headers.clone()];
        expected.extend(table.rows.iter().map(|r| r.iter().map(Cell::csv_text).collect()));
        for row in parsed.iter().skip(1) {
            for cell in row {
                prop_assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "{cell:?}");
            }
        }
        prop_assert_eq!(parsed, expected);
    }
}

#[test]
fn formula_leading_text_is_neutralised_and_numbers_are_not() {
    let table = Table {
        title: String::new(),
        notes: vec![],
        footer: vec![],
        headers: vec!["学校名称".into(), "得分".into()],
        rows: vec![
            vec![Cell::text("=HYPERLINK(\"http://x\")"), Cell::Number(-1.5)],
            vec![Cell::text("+1"), Cell::Int(-3)],
            vec![Cell::text("-2"), Cell::text("@SUM(A1)")],
            vec![Cell::text("\t=1"), Cell::text("\r=1")],
            vec![Cell::text("城关小学"), Cell::text("a=b")],
        ],
    };
    let text = String::from_utf8(table.to_csv()).unwrap();
    let body: Vec<&str> = text.split("\r\n").skip(1).collect();
    assert_eq!(body[0], "\"'=HYPERLINK(\"\"http://x\"\")\",-1.5");
    assert_eq!(body[1], "'+1,-3");
    assert_eq!(body[2], "'-2,'@SUM(A1)");
    assert!(body[3].starts_with("'\t=1,\"'\r=1\""), "{:?}", body[3]);
    assert_eq!(body[4], "城关小学,a=b");
}
