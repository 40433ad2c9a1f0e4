//! Whatever text a table holds, the CSV export parses back to the same rows.

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
        expected.extend(table.rows.iter().map(|r| r.iter().map(Cell::display).collect()));
        prop_assert_eq!(parsed, expected);
    }
}
