//! Each table has one owner (issue #8): the scheduler's SQL names only the scheduler's own
//! tables (those its migrations create: outbox, delivery attempts, endpoint budgets and
//! states, its cursors, notice expiries). What it reads of the workflow's tables (campaigns,
//! schools, obligations, notices, events, clock, tokens, …) goes through `junheng-store`
//! (`notifications`, `summaries`, `campaigns`, `audit`, `clock`, `tokens`). Checked on the
//! source, so a query that reaches into a workflow table from here fails the tests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Files allowed to name workflow tables, and why.
const ALLOWED: [(&str, &str); 1] = [(
    "src/bin/scheduler-bench.rs",
    "the benchmark seeds a campaign and its obligations as fixtures, as the tests do",
)];

/// SQL words after which a table name follows.
const BEFORE_TABLE: [&str; 6] = ["FROM", "JOIN", "INTO", "UPDATE", "TABLE", "EXISTS"];

fn migrations() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../store/migrations")
}

/// (workflow tables, scheduler tables): every `CREATE TABLE` in the migrations, the
/// scheduler's being those created by its own migrations (`*_scheduler*.sql`).
fn tables() -> (BTreeSet<String>, BTreeSet<String>) {
    let mut workflow = BTreeSet::new();
    let mut scheduler = BTreeSet::new();
    for entry in std::fs::read_dir(migrations()).expect("the store's migrations") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".sql") {
            continue;
        }
        let sql = std::fs::read_to_string(&path).unwrap();
        for created in sql.split("CREATE TABLE ").skip(1) {
            let table: String = created
                .trim_start()
                .trim_start_matches("IF NOT EXISTS ")
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.contains("_scheduler") {
                scheduler.insert(table);
            } else {
                workflow.insert(table);
            }
        }
    }
    (workflow, scheduler)
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The tables named after an SQL keyword in `src` (uppercase keywords, as the house writes
/// SQL; prose in comments says "from" in lowercase).
fn named_tables(src: &str) -> Vec<String> {
    let words: Vec<&str> = src
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .filter(|w| BEFORE_TABLE.contains(&w[0]))
        .map(|w| w[1].to_owned())
        .collect()
}

#[test]
fn the_migrations_name_both_owners_tables() {
    let (workflow, scheduler) = tables();
    for t in [
        "campaigns",
        "schools",
        "obligations",
        "notices",
        "events",
        "tokens",
    ] {
        assert!(workflow.contains(t), "{t} is the workflow's: {workflow:?}");
    }
    for t in [
        "outbox",
        "delivery_attempts",
        "scheduler_cursors",
        "notice_expiries",
    ] {
        assert!(
            scheduler.contains(t),
            "{t} is the scheduler's: {scheduler:?}"
        );
    }
    assert!(workflow.is_disjoint(&scheduler));
}

#[test]
fn the_scheduler_names_no_workflow_table_in_sql() {
    let (workflow, _) = tables();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    assert!(files.len() > 10, "{files:?}");
    let mut found = Vec::new();
    for path in files {
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if rel == "src/table_owners.rs" || ALLOWED.iter().any(|(f, _)| *f == rel) {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        for t in named_tables(&src) {
            if workflow.contains(&t) {
                found.push(format!("{rel}: {t}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the scheduler queries workflow tables; read them through junheng-store: {found:?}"
    );
}

#[test]
fn the_check_sees_a_workflow_table() {
    let src =
        r#"sqlx::query!("SELECT id FROM obligations o LEFT JOIN schools s ON s.id = o.school_id")"#;
    assert_eq!(named_tables(src), vec!["obligations", "schools"]);
    assert_eq!(
        named_tables("// read from obligations"),
        Vec::<String>::new()
    );
}
