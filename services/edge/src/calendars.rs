//! The working-day calendar years a service knows (the workflow and the scheduler alike): the
//! files shipped with the release (compiled into `junheng-core`) and those in the calendars
//! directory (`--calendars-dir` / `JUNHENG_CALENDARS_DIR`, default `deploy/calendars`), where a
//! bureau adds the next year's State Council schedule as `<year>.toml`. A file in the directory replaces the shipped copy of
//! its year. Read once at start; a file that does not validate stops the start, naming it.

use std::path::Path;

use anyhow::Context;
use junheng_core::calendar::{Calendars, parse_year};

/// The default directory, relative to the working directory.
pub const DEFAULT_DIR: &str = "deploy/calendars";

/// The shipped years plus every `<year>.toml` in `dir`. A missing directory adds nothing (the
/// shipped years still apply); a file whose name is not its `year` is refused.
pub fn load(dir: &Path) -> anyhow::Result<Calendars> {
    let mut years = Calendars::shipped().clone();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(years),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    for path in files {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {name}"))?;
        let year = parse_year(&text, &name)?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if stem != year.year.to_string() {
            anyhow::bail!(
                "{name}: year: the file says {} but is named {stem}.toml; name it {}.toml",
                year.year,
                year.year
            );
        }
        years.insert(year);
    }
    Ok(years)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_adds_years_and_a_misnamed_or_invalid_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("junheng-cal-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(!load(&dir).unwrap().covers(2031));
        std::fs::write(dir.join("2031.toml"), "year = 2031\n").unwrap();
        let years = load(&dir).unwrap();
        assert!(years.covers(2031) && years.covers(2020));
        std::fs::write(dir.join("2032.toml"), "year = 2033\n").unwrap();
        let e = load(&dir).unwrap_err().to_string();
        assert!(
            e.ends_with("the file says 2033 but is named 2032.toml; name it 2033.toml"),
            "{e}"
        );
        std::fs::write(
            dir.join("2032.toml"),
            "year = 2032\n[[holidays]]\nname = \"春节\"\noff = [\"2031-02-01\"]\n",
        )
        .unwrap();
        let e = load(&dir).unwrap_err().to_string();
        assert!(
            e.ends_with("2032.toml: holidays[0].off[0]: 2031-02-01 is not in 2032"),
            "{e}"
        );
        assert!(load(&dir.join("absent")).unwrap().covers(2026));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_shipped_directory_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/calendars");
        assert_eq!(&load(&dir).unwrap(), Calendars::shipped());
    }
}
