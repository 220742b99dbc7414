//! SCIM filter expressions (RFC 7644 §3.4.2.2) and PATCH paths, parsed into a small AST.
//!
//! Pure and bounded: the input length and the nesting depth are capped, and `and`/`or`
//! chains are flat lists, so the parser's recursion depth is the nesting depth. Tolerates
//! what real IdPs send: case-insensitive operators and attribute names (PingOne's
//! `username Eq`), URN-qualified names, Entra's `emails[type eq "work"].value eq "x"`, and
//! unquoted values (`externalId eq jyoung`).

use std::fmt;

pub const MAX_FILTER_LEN: usize = 8 * 1024;
pub const MAX_DEPTH: usize = 32;

/// An attribute reference: `[urn:...:]attr[.sub]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AttrPath {
    /// The schema URN, when the name was qualified.
    pub schema: Option<String>,
    pub attr: String,
    pub sub: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: Value,
    },
    Present(AttrPath),
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    /// `attr[filter]`: some element of multi-valued `attr` matches `filter` (whose paths
    /// are relative to the element).
    ValuePath {
        attr: AttrPath,
        filter: Box<Filter>,
    },
}

/// A PATCH operation path: `attr[.sub]`, `attr[filter]`, or `attr[filter].sub`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    /// Sub-attribute after a value filter (`emails[type eq "work"].value`).
    pub sub: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError(pub String);

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FilterError {}

fn err<T>(msg: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError(msg.into()))
}

/// Parses a `filter` query parameter.
pub fn parse_filter(input: &str) -> Result<Filter, FilterError> {
    let mut p = Parser::new(input)?;
    let f = p.or_expr(0)?;
    if let Some(t) = p.peek() {
        return err(format!(
            "unexpected {} at position {}",
            t.describe(),
            p.offset()
        ));
    }
    Ok(f)
}

/// Parses a PATCH `path`.
pub fn parse_patch_path(input: &str) -> Result<PatchPath, FilterError> {
    let mut p = Parser::new(input)?;
    let attr = match p.next() {
        Some(Tok::Word(w)) => attr_path(&w)?,
        _ => return err("a PATCH path must start with an attribute name"),
    };
    let mut path = PatchPath {
        attr,
        filter: None,
        sub: None,
    };
    if p.peek() == Some(&Tok::LBracket) {
        p.next();
        path.filter = Some(p.or_expr(1)?);
        p.expect(Tok::RBracket)?;
        if let Some(Tok::Word(w)) = p.peek().cloned() {
            let Some(sub) = w.strip_prefix('.') else {
                return err("expected '.subAttribute' after ']'");
            };
            valid_name(sub)?;
            path.sub = Some(sub.to_string());
            p.next();
        }
    }
    if p.peek().is_some() {
        return err("unexpected text after the PATCH path");
    }
    Ok(path)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("'{w}'"),
            Tok::Str(_) => "a string".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
        }
    }

    fn keyword(&self, k: &str) -> bool {
        matches!(self, Tok::Word(w) if w.eq_ignore_ascii_case(k))
    }
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

impl Parser {
    fn new(input: &str) -> Result<Parser, FilterError> {
        if input.len() > MAX_FILTER_LEN {
            return err(format!(
                "the filter is longer than {MAX_FILTER_LEN} characters"
            ));
        }
        Ok(Parser {
            toks: tokenize(input)?,
            pos: 0,
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(0, |(_, o)| *o)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(t, _)| t.clone());
        self.pos += 1;
        t
    }

    fn expect(&mut self, want: Tok) -> Result<(), FilterError> {
        match self.next() {
            Some(t) if t == want => Ok(()),
            Some(t) => err(format!(
                "expected {} but found {}",
                want.describe(),
                t.describe()
            )),
            None => err(format!("expected {} but the filter ended", want.describe())),
        }
    }

    fn or_expr(&mut self, depth: usize) -> Result<Filter, FilterError> {
        let mut items = vec![self.and_expr(depth)?];
        while self.peek().is_some_and(|t| t.keyword("or")) {
            self.next();
            items.push(self.and_expr(depth)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Filter::Or(items)
        })
    }

    fn and_expr(&mut self, depth: usize) -> Result<Filter, FilterError> {
        let mut items = vec![self.unary(depth)?];
        while self.peek().is_some_and(|t| t.keyword("and")) {
            self.next();
            items.push(self.unary(depth)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Filter::And(items)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Filter, FilterError> {
        if depth >= MAX_DEPTH {
            return err(format!("the filter nests deeper than {MAX_DEPTH} levels"));
        }
        match self.next() {
            Some(Tok::LParen) => {
                let f = self.or_expr(depth + 1)?;
                self.expect(Tok::RParen)?;
                Ok(f)
            }
            Some(t) if t.keyword("not") => {
                self.expect(Tok::LParen)?;
                let f = self.or_expr(depth + 1)?;
                self.expect(Tok::RParen)?;
                Ok(Filter::Not(Box::new(f)))
            }
            Some(Tok::Word(w)) => self.attr_expr(&w, depth),
            Some(t) => err(format!(
                "expected an attribute name but found {}",
                t.describe()
            )),
            None => err("the filter ended where an expression was expected"),
        }
    }

    fn attr_expr(&mut self, word: &str, depth: usize) -> Result<Filter, FilterError> {
        let attr = attr_path(word)?;
        if self.peek() == Some(&Tok::LBracket) {
            if attr.sub.is_some() {
                return err("a value filter applies to an attribute, not a sub-attribute");
            }
            self.next();
            let inner = self.or_expr(depth + 1)?;
            self.expect(Tok::RBracket)?;
            // Entra's non-standard `emails[type eq "work"].value eq "x"`.
            if let Some(Tok::Word(w)) = self.peek().cloned()
                && let Some(sub) = w.strip_prefix('.')
            {
                valid_name(sub)?;
                self.next();
                let rel = AttrPath {
                    schema: None,
                    attr: sub.to_string(),
                    sub: None,
                };
                let cond = self.comparison(rel)?;
                return Ok(Filter::ValuePath {
                    attr,
                    filter: Box::new(Filter::And(vec![inner, cond])),
                });
            }
            return Ok(Filter::ValuePath {
                attr,
                filter: Box::new(inner),
            });
        }
        self.comparison(attr)
    }

    fn comparison(&mut self, path: AttrPath) -> Result<Filter, FilterError> {
        let op = match self.next() {
            Some(Tok::Word(w)) => w.to_ascii_lowercase(),
            Some(t) => return err(format!("expected an operator but found {}", t.describe())),
            None => return err("the filter ended where an operator was expected"),
        };
        let op = match op.as_str() {
            "pr" => return Ok(Filter::Present(path)),
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            other => return err(format!("unknown operator '{other}'")),
        };
        let value = match self.next() {
            Some(Tok::Str(s)) => Value::Str(s),
            Some(Tok::Word(w)) => word_value(&w),
            Some(t) => return err(format!("expected a value but found {}", t.describe())),
            None => return err("the filter ended where a value was expected"),
        };
        Ok(Filter::Compare { path, op, value })
    }
}

/// A bare word in value position: a literal, a number, or (tolerated) an unquoted string.
fn word_value(w: &str) -> Value {
    match w.to_ascii_lowercase().as_str() {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        _ => match w.parse::<f64>() {
            Ok(n)
                if n.is_finite()
                    && w.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) =>
            {
                Value::Num(n)
            }
            _ => Value::Str(w.to_string()),
        },
    }
}

/// Splits `urn:...:Schema:attr.sub` / `attr.sub` into its parts.
fn attr_path(word: &str) -> Result<AttrPath, FilterError> {
    let (schema, rest) = match word.rfind(':') {
        Some(i) => (Some(word[..i].to_string()), &word[i + 1..]),
        None => (None, word),
    };
    if let Some(s) = &schema
        && !s.to_ascii_lowercase().starts_with("urn:")
    {
        return err(format!("'{word}' is not a valid attribute name"));
    }
    let (attr, sub) = match rest.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (rest, None),
    };
    valid_name(attr)?;
    if let Some(s) = sub {
        valid_name(s)?;
    }
    Ok(AttrPath {
        schema,
        attr: attr.to_string(),
        sub: sub.map(str::to_string),
    })
}

fn valid_name(name: &str) -> Result<(), FilterError> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$');
    if ok {
        Ok(())
    } else {
        err(format!("'{name}' is not a valid attribute name"))
    }
}

fn tokenize(input: &str) -> Result<Vec<(Tok, usize)>, FilterError> {
    let bytes = input.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                toks.push((Tok::LParen, i));
                i += 1;
            }
            b')' => {
                toks.push((Tok::RParen, i));
                i += 1;
            }
            b'[' => {
                toks.push((Tok::LBracket, i));
                i += 1;
            }
            b']' => {
                toks.push((Tok::RBracket, i));
                i += 1;
            }
            b'"' => {
                let start = i;
                i += 1;
                let mut escaped = false;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' if !escaped => escaped = true,
                        b'"' if !escaped => break,
                        _ => escaped = false,
                    }
                    i += 1;
                }
                if i >= bytes.len() {
                    return err(format!(
                        "the string starting at position {start} is not closed"
                    ));
                }
                let raw = &input[start..=i];
                let s: String = serde_json::from_str(raw).map_err(|_| {
                    FilterError(format!(
                        "the string at position {start} has an invalid escape"
                    ))
                })?;
                toks.push((Tok::Str(s), start));
                i += 1;
            }
            _ => {
                let start = i;
                while i < bytes.len()
                    && !matches!(
                        bytes[i],
                        b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b'[' | b']' | b'"'
                    )
                {
                    i += 1;
                }
                toks.push((Tok::Word(input[start..i].to_string()), start));
            }
        }
    }
    Ok(toks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(attr: &str) -> AttrPath {
        AttrPath {
            schema: None,
            attr: attr.into(),
            sub: None,
        }
    }

    fn eq(attr: &str, v: &str) -> Filter {
        Filter::Compare {
            path: path(attr),
            op: CompareOp::Eq,
            value: Value::Str(v.into()),
        }
    }

    #[test]
    fn simple_and_case_insensitive_operators() {
        assert_eq!(
            parse_filter(r#"userName eq "bjensen""#),
            Ok(eq("userName", "bjensen"))
        );
        assert_eq!(
            parse_filter(r#"username Eq "bjensen""#),
            Ok(eq("username", "bjensen"))
        );
        assert_eq!(
            parse_filter("externalId eq jyoung"),
            Ok(eq("externalId", "jyoung"))
        );
        assert_eq!(parse_filter("title pr"), Ok(Filter::Present(path("title"))));
    }

    #[test]
    fn literals_and_numbers() {
        let f = parse_filter("active eq true and x gt 5 and y eq null").expect("parses");
        let Filter::And(items) = f else { panic!("and") };
        assert!(matches!(
            &items[0],
            Filter::Compare {
                value: Value::Bool(true),
                ..
            }
        ));
        assert!(
            matches!(&items[1], Filter::Compare { op: CompareOp::Gt, value: Value::Num(n), .. } if *n == 5.0)
        );
        assert!(matches!(
            &items[2],
            Filter::Compare {
                value: Value::Null,
                ..
            }
        ));
    }

    #[test]
    fn precedence_not_and_or_with_grouping() {
        let f = parse_filter(r#"a eq "1" or b eq "2" and not (c eq "3")"#).expect("parses");
        assert_eq!(
            f,
            Filter::Or(vec![
                eq("a", "1"),
                Filter::And(vec![eq("b", "2"), Filter::Not(Box::new(eq("c", "3")))]),
            ])
        );
        let g = parse_filter(r#"(a eq "1" or b eq "2") and c eq "3""#).expect("parses");
        assert!(matches!(g, Filter::And(ref v) if matches!(v[0], Filter::Or(_))));
    }

    #[test]
    fn value_paths_urns_and_sub_attributes() {
        let f =
            parse_filter(r#"emails[type eq "work" and value co "@example.com"]"#).expect("parses");
        assert!(matches!(f, Filter::ValuePath { ref attr, .. } if attr.attr == "emails"));
        let u = parse_filter(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7""#,
        )
        .expect("parses");
        let Filter::Compare { path, .. } = u else {
            panic!("compare")
        };
        assert_eq!(
            path.schema.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(path.attr, "employeeNumber");
        let m = parse_filter(r#"meta.lastModified gt "2011-05-13T04:42:34Z""#).expect("parses");
        assert!(
            matches!(m, Filter::Compare { ref path, .. } if path.sub.as_deref() == Some("lastModified"))
        );
    }

    #[test]
    fn entra_value_path_with_trailing_comparison() {
        let f =
            parse_filter(r#"emails[type eq "work"].value eq "ryan@example.com""#).expect("parses");
        assert_eq!(
            f,
            Filter::ValuePath {
                attr: path("emails"),
                filter: Box::new(Filter::And(vec![
                    eq("type", "work"),
                    eq("value", "ryan@example.com")
                ])),
            }
        );
    }

    #[test]
    fn escapes_in_strings() {
        assert_eq!(
            parse_filter(r#"displayName eq "a \"quoted\" \\ name""#),
            Ok(eq("displayName", "a \"quoted\" \\ name"))
        );
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        for bad in [
            "",
            "userName",
            "userName eq",
            r#"userName zz "x""#,
            r#"userName eq "x" and"#,
            r#"(userName eq "x""#,
            r#"userName eq "unterminated"#,
            r#"emails[type eq "work""#,
            r#"1bad eq "x""#,
            r#"userName eq "x" garbage"#,
            r#"http://evil:attr eq "x""#,
        ] {
            assert!(parse_filter(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn length_and_depth_are_bounded() {
        let long = format!(r#"userName eq "{}""#, "a".repeat(MAX_FILTER_LEN));
        assert!(
            parse_filter(&long)
                .expect_err("too long")
                .0
                .contains("longer than")
        );
        let deep = format!("{}userName eq \"x\"{}", "(".repeat(1000), ")".repeat(1000));
        assert!(
            parse_filter(&deep)
                .expect_err("too deep")
                .0
                .contains("nests deeper")
        );
        let nots = format!(
            "{}userName eq \"x\"{}",
            "not (".repeat(1000),
            ")".repeat(1000)
        );
        assert!(parse_filter(&nots).is_err());
        // Long flat chains are fine: they are lists, not nesting.
        let chain = vec![r#"userName eq "x""#; 200].join(" or ");
        assert!(matches!(parse_filter(&chain), Ok(Filter::Or(v)) if v.len() == 200));
    }

    #[test]
    fn patch_paths() {
        assert_eq!(
            parse_patch_path("name.givenName"),
            Ok(PatchPath {
                attr: AttrPath {
                    schema: None,
                    attr: "name".into(),
                    sub: Some("givenName".into())
                },
                filter: None,
                sub: None
            })
        );
        let p = parse_patch_path(r#"emails[type eq "work"].value"#).expect("parses");
        assert_eq!(p.attr.attr, "emails");
        assert_eq!(p.sub.as_deref(), Some("value"));
        let m = parse_patch_path(r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#)
            .expect("parses");
        assert!(m.filter.is_some());
        let urn =
            parse_patch_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager")
                .expect("parses");
        assert_eq!(urn.attr.attr, "manager");
        assert!(parse_patch_path("").is_err());
        assert!(parse_patch_path("emails[type eq \"work\"] extra").is_err());
    }
}
