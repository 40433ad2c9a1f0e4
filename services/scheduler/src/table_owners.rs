//! Each table has one owner (issue #8): the scheduler's SQL names only the scheduler's own
//! tables (those its migrations create: outbox, delivery attempts, endpoint budgets and
//! states, its cursors, notice expiries). What it reads of the workflow's tables (campaigns,
//! schools, obligations, notices, events, clock, tokens, …) goes through `junheng-store`
//! (`notifications`, `summaries`, `campaigns`, `audit`, `clock`, `tokens`). Checked on the
//! string literals of the source (SQL in any case, with or without `public.`), so a query that
//! reaches into a workflow table from here fails the tests.

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

/// (workflow tables, scheduler tables): every `CREATE TABLE` and `CREATE VIEW` in the
/// migrations, the scheduler's being those created by its own migrations (`*_scheduler*.sql`).
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
        let created = ["CREATE TABLE ", "CREATE VIEW "]
            .into_iter()
            .flat_map(|ddl| sql.split(ddl).skip(1));
        for created in created {
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

/// The string literals of `src` (plain and raw, inside macro calls too), where the SQL is;
/// comments and doc comments, which say "from" in prose, are left out. Tokenised by
/// proc-macro2 and each literal's value read by syn, so escapes and raw strings are theirs.
fn string_literals(src: &str) -> String {
    use proc_macro2::{TokenStream, TokenTree};
    fn walk(tokens: TokenStream, out: &mut String) {
        let mut doc_next = false;
        for t in tokens {
            match t {
                // `///` and `//!` become `#[doc = "…"]`: prose, skipped.
                TokenTree::Punct(p) if p.as_char() == '#' => doc_next = true,
                TokenTree::Punct(p) if p.as_char() == '!' && doc_next => {}
                TokenTree::Group(g) => {
                    let is_doc = doc_next
                        && g.stream()
                            .into_iter()
                            .next()
                            .is_some_and(|f| f.to_string() == "doc");
                    if !is_doc {
                        walk(g.stream(), out);
                    }
                    doc_next = false;
                }
                TokenTree::Literal(l) => {
                    if let syn::Lit::Str(s) = syn::Lit::new(l) {
                        out.push_str(&s.value());
                        out.push('\n');
                    }
                    doc_next = false;
                }
                _ => doc_next = false,
            }
        }
    }
    let mut out = String::new();
    walk(
        src.parse().expect("the scheduler's source tokenises"),
        &mut out,
    );
    out
}

/// The tables named after an SQL keyword in the string literals of `src`, in any case and
/// with or without the `public.` schema.
fn named_tables(src: &str) -> Vec<String> {
    let sql = string_literals(src).to_ascii_lowercase();
    let words: Vec<&str> = sql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty() && *w != "public")
        .collect();
    words
        .windows(2)
        .filter(|w| BEFORE_TABLE.iter().any(|k| k.eq_ignore_ascii_case(w[0])))
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
        "delivery_log",
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
    let mut seen = BTreeSet::new();
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
            seen.insert(t.clone());
            if workflow.contains(&t) {
                found.push(format!("{rel}: {t}"));
            }
        }
    }
    // The scan reads the queries at all: it sees the scheduler's own tables.
    for own in ["outbox", "delivery_attempts", "endpoint_budgets"] {
        assert!(seen.contains(own), "{own} not seen in {seen:?}");
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
    // Lower-case SQL, the schema prefix, a raw string with hashes and a `"` inside.
    assert_eq!(
        named_tables(
            r##"query("select 1 from public.obligations"); query(r#"UPDATE "x" SET a = 1 FROM Schools"#)"##
        ),
        vec!["obligations", "x", "schools"]
    );
    // Prose in comments and doc comments, and a char literal that is a quote, are not SQL.
    assert_eq!(
        named_tables(
            "//! Read from events.\n/// Rows come from notices.\nlet q = b'\"'; // join tokens\n"
        ),
        Vec::<String>::new()
    );
}
