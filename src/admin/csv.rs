//! CSV exports (RFC 4180). Cells a spreadsheet would run as a formula get a leading `'`:
//! directory data comes from the IdP and must not become code in the admin's spreadsheet.
//! A cell is defused when it starts with a tab or CR, or when its first non-blank
//! character is `=`, `+`, `-`, `@` or their full-width forms (`＝ ＋ － ＠`), which
//! spreadsheets normalize: leading spaces, NBSP, line breaks and zero-width characters
//! are skipped when looking, since spreadsheets may trim them before parsing.

use crate::http::Response;

pub struct Writer {
    out: String,
}

impl Writer {
    pub fn new(header: &[&str]) -> Writer {
        let mut w = Writer { out: String::new() };
        w.row(header);
        w
    }

    pub fn row(&mut self, cells: &[&str]) {
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push('"');
            if runs_as_formula(cell) {
                self.out.push('\'');
            }
            self.out.push_str(&cell.replace('"', "\"\""));
            self.out.push('"');
        }
        self.out.push_str("\r\n");
    }

    pub fn into_response(self, filename: &str) -> Response {
        Response::new(200, "text/csv; charset=utf-8", self.out.into_bytes()).with_header(
            "Content-Disposition",
            &format!("attachment; filename=\"{filename}\""),
        )
    }
}

/// Characters that can start a formula, ASCII and full-width (U+FF1D, U+FF0B, U+FF0D,
/// U+FF20).
const FORMULA_STARTS: [char; 8] = ['=', '+', '-', '@', '＝', '＋', '－', '＠'];

fn runs_as_formula(cell: &str) -> bool {
    if cell.starts_with(['\t', '\r']) {
        return true;
    }
    cell.chars()
        .find(|c| !is_blank(*c))
        .is_some_and(|c| FORMULA_STARTS.contains(&c))
}

/// Whitespace (spaces, NBSP, tabs, line breaks, ideographic space) and the invisible
/// characters a spreadsheet also skips (zero-width space and joiners, word joiner, BOM).
fn is_blank(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_every_cell_and_defuses_formulas() {
        let mut w = Writer::new(&["a", "b"]);
        w.row(&["say \"hi\", then", "=HYPERLINK(\"x\")"]);
        w.row(&["-1", "plain"]);
        assert_eq!(
            w.out,
            "\"a\",\"b\"\r\n\"say \"\"hi\"\", then\",\"'=HYPERLINK(\"\"x\"\")\"\r\n\"'-1\",\"plain\"\r\n"
        );
    }

    /// The first cell of the one data row of a one-column export of `cell`.
    fn exported(cell: &str) -> String {
        let mut w = Writer::new(&["h"]);
        w.row(&[cell]);
        w.out["\"h\"\r\n".len()..].to_string()
    }

    #[test]
    fn item9_4_formulas_after_leading_blanks_are_defused() {
        for cell in [
            " =1+1",
            "   @SUM(A1)",
            "\u{a0}=cmd|' /C calc'!A0",
            "\t=1",
            "\r\n=1",
            "\n+1",
            "\u{3000}-1",
            "\u{feff}=1",
            " \u{a0}\t\n=HYPERLINK(\"x\")",
        ] {
            let out = exported(cell);
            assert!(out.starts_with("\"'"), "{cell:?} gave {out:?}");
        }
    }

    #[test]
    fn item9_4_full_width_formula_signs_are_defused() {
        for cell in ["＝1+1", "＋1", "－1", "＠SUM(A1)", "  ＝1", "\u{a0}＠x"] {
            let out = exported(cell);
            assert!(out.starts_with("\"'"), "{cell:?} gave {out:?}");
        }
    }

    #[test]
    fn item9_4_ordinary_cells_are_left_alone() {
        for cell in [
            "",
            " ",
            "Alice",
            "a=b",
            "alice@example.com",
            " Bob",
            "1-2",
            "\u{a0}",
        ] {
            let out = exported(cell);
            assert!(!out.starts_with("\"'"), "{cell:?} gave {out:?}");
        }
    }
}
