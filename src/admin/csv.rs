//! CSV exports (RFC 4180). Cells a spreadsheet would run as a formula (starting with
//! `=`, `+`, `-`, `@`, tab or CR) get a leading `'`: directory data comes from the IdP
//! and must not become code in the admin's spreadsheet.

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
            if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
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
}
