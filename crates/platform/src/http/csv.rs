//! CSV answers that a spreadsheet opens safely (OWASP, CSV injection).

/// Characters that make a spreadsheet read a cell as a formula: `=`, `+`, `-`, `@`, and a
/// tab, CR or LF that can start one.
const FORMULA_STARTS: [char; 7] = ['=', '+', '-', '@', '\t', '\r', '\n'];

/// One CSV cell, as OWASP's CSV-injection guidance says: every cell quoted, quotes doubled,
/// and a cell that starts with a formula character — or with spaces before one, which some
/// spreadsheets skip — prefixed with `'`, so it is shown as text and never run.
pub fn cell(value: &str) -> String {
    let starts_a_formula = value.starts_with(FORMULA_STARTS)
        || value.trim_start_matches(' ').starts_with(FORMULA_STARTS);
    let defused = if starts_a_formula {
        format!("'{value}")
    } else {
        value.to_string()
    };
    format!("\"{}\"", defused.replace('"', "\"\""))
}

/// A line of `cells`, with its newline.
pub fn line<'a>(cells: impl IntoIterator<Item = &'a str>) -> String {
    let mut line = cells.into_iter().map(cell).collect::<Vec<_>>().join(",");
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cell_that_could_start_a_formula_is_defused() {
        for value in [
            "=1+1", "+1", "-1", "@SUM(A1)", "\t=1+1", "\r=1+1", "\n=1+1", "\t", "  =1+1",
        ] {
            let cell = cell(value);
            assert!(cell.starts_with("\"'"), "{value:?} became {cell}");
        }
        assert_eq!(cell("plain text"), "\"plain text\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("a=b"), "\"a=b\"", "only a formula start counts");
        assert_eq!(line(["a", "=b"]), "\"a\",\"'=b\"\n");
    }
}
