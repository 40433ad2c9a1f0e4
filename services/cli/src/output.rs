//! Printing replies: aligned tables that measure Chinese by display width (default), the reply
//! as JSON (`-o json`, the proto field names, every field present: stable for scripts), CSV, or
//! only the ids (`-o id`, one per line, for shell variables).

use chrono::DateTime;
use chrono_tz::Tz;
use comfy_table::{ContentArrangement, Table, presets};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
    Id,
}

/// How a cell shows a field.
#[derive(Debug, Clone, Copy)]
pub enum Cell {
    Text,
    /// An enum name without its prefix, in lower case: `PHASE_STATUS_OPEN` → `open`.
    Enum(&'static str),
    /// A timestamp in the campaign's local time: `2020-03-09 09:00`.
    Time,
    /// An exclusive end (a deadline, the end of a notice period) as a bureau writes it: the
    /// start of 2020-05-01 is `2020-04-30 24:00`.
    End,
    /// A list: its length.
    Count,
}

pub struct Col {
    pub header: &'static str,
    /// Dotted path into a row: `phases.0.status`.
    pub path: &'static str,
    pub cell: Cell,
}

pub const fn col(header: &'static str, path: &'static str, cell: Cell) -> Col {
    Col { header, path, cell }
}

/// What a command prints: the rows (an array inside the reply, or the reply itself) and the
/// columns; the first column is the id for `-o id`.
pub struct View<'a> {
    pub rows: Option<&'static str>,
    pub cols: &'a [Col],
}

fn get<'v>(v: &'v Value, path: &str) -> &'v Value {
    path.split('.').fold(v, |v, k| match k.parse::<usize>() {
        Ok(i) => v.get(i).unwrap_or(&Value::Null),
        Err(_) => v.get(k).unwrap_or(&Value::Null),
    })
}

fn show(v: &Value, cell: Cell, tz: Tz) -> String {
    match (cell, v) {
        (_, Value::Null) => String::new(),
        (Cell::Enum(prefix), Value::String(s)) => s
            .strip_prefix(prefix)
            .unwrap_or(s)
            .to_ascii_lowercase()
            .replace('_', "-"),
        (Cell::Time, Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|_| s.clone()),
        (Cell::End, Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => {
                let local = t.with_timezone(&tz);
                if local.format("%H:%M:%S").to_string() == "00:00:00" {
                    let day = local.date_naive().pred_opt().unwrap_or(local.date_naive());
                    format!("{} 24:00", day.format("%Y-%m-%d"))
                } else {
                    local.format("%Y-%m-%d %H:%M").to_string()
                }
            }
            Err(_) => s.clone(),
        },
        (Cell::Count, Value::Array(a)) => a.len().to_string(),
        (_, Value::String(s)) => s.clone(),
        (_, Value::Array(a)) => a
            .iter()
            .map(|x| show(x, Cell::Text, tz))
            .collect::<Vec<_>>()
            .join("、"),
        (_, other) => other.to_string(),
    }
}

/// The rows of a reply as cells.
fn cells(reply: &Value, view: &View<'_>, tz: Tz) -> Vec<Vec<String>> {
    let rows: Vec<&Value> = match view.rows {
        Some(p) => get(reply, p)
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default(),
        None => vec![reply],
    };
    rows.iter()
        .map(|r| {
            view.cols
                .iter()
                .map(|c| show(get(r, c.path), c.cell, tz))
                .collect()
        })
        .collect()
}

pub fn render(format: Format, reply: &Value, view: &View<'_>, tz: Tz) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(reply).expect("JSON values serialise") + "\n",
        Format::Id => cells(reply, view, tz)
            .into_iter()
            .filter_map(|r| r.into_iter().next())
            .map(|id| id + "\n")
            .collect(),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(view.cols.iter().map(|c| c.header))
                .expect("in memory");
            for r in cells(reply, view, tz) {
                w.write_record(&r).expect("in memory");
            }
            String::from_utf8(w.into_inner().expect("in memory")).expect("UTF-8 in, UTF-8 out")
        }
        Format::Table => {
            let mut t = Table::new();
            t.load_preset(presets::NOTHING)
                .set_content_arrangement(ContentArrangement::Disabled)
                .set_header(view.cols.iter().map(|c| c.header));
            for r in cells(reply, view, tz) {
                t.add_row(r);
            }
            // comfy-table pads every line to the table's width; trailing blanks help nobody.
            t.to_string()
                .lines()
                .map(|l| l.trim_end().to_string() + "\n")
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const COLS: &[Col] = &[
        col("ID", "id", Cell::Text),
        col("名称", "name", Cell::Text),
        col("状态", "status", Cell::Enum("PHASE_STATUS_")),
        col("截止", "deadline", Cell::End),
    ];
    const VIEW: View<'static> = View {
        rows: Some("items"),
        cols: COLS,
    };

    fn reply() -> Value {
        json!({ "items": [
            { "id": "a", "name": "昌乐县宝都街道中心小学", "status": "PHASE_STATUS_OPEN", "deadline": "2020-04-30T16:00:00Z" },
            { "id": "b2", "name": "x", "status": "PHASE_STATUS_NOT_OPEN", "deadline": null },
        ]})
    }

    #[test]
    fn tables_align_chinese_by_display_width() {
        let out = render(Format::Table, &reply(), &VIEW, chrono_tz::Asia::Shanghai);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        // The status column starts at the same display column on every line.
        let col_of = |l: &str, needle: &str| {
            let byte = l.find(needle).expect(needle);
            comfy_table_width(&l[..byte])
        };
        let header = col_of(lines[0], "状态");
        assert_eq!(col_of(lines[1], "open"), header, "{out}");
        assert_eq!(col_of(lines[2], "not-open"), header, "{out}");
        assert!(
            lines[1].contains("2020-04-30 24:00"),
            "the end of the day: {out}"
        );
    }

    /// Display width: CJK characters take two columns.
    fn comfy_table_width(s: &str) -> usize {
        s.chars()
            .map(|c| if (c as u32) >= 0x2E80 { 2 } else { 1 })
            .sum()
    }

    #[test]
    fn ids_csv_and_json() {
        let r = reply();
        let tz = chrono_tz::Asia::Shanghai;
        assert_eq!(render(Format::Id, &r, &VIEW, tz), "a\nb2\n");
        assert_eq!(
            render(Format::Csv, &r, &VIEW, tz),
            "ID,名称,状态,截止\na,昌乐县宝都街道中心小学,open,2020-04-30 24:00\nb2,x,not-open,\n"
        );
        let back: Value = serde_json::from_str(&render(Format::Json, &r, &VIEW, tz)).unwrap();
        assert_eq!(back, r);
    }
}
