//! The invitation email's templates (subject, text and HTML), editable in the portal, with
//! `{{variable}}` placeholders. Values are escaped for HTML in the HTML part; a subject is
//! one line (no header injection); a template naming an unknown variable is refused when
//! saved, so a typo never reaches an inbox as `{{lnk}}`.

use rusqlite::Transaction;

use crate::db::settings;

/// The variables an invitation's templates may use, with what each becomes.
pub const VARIABLES: &[(&str, &str)] = &[
    ("email", "the invitee's email address"),
    ("link", "the invitation's link (single-use, expires)"),
    ("expires", "the day the link stops working (UTC)"),
    (
        "organization",
        "your organization ([profile] organization, else the gateway's host)",
    ),
    ("gateway", "the gateway's address"),
];

/// The three parts of the invitation email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub subject: String,
    pub text: String,
    pub html: String,
}

const SUBJECT_KEY: &str = "mail.invitation.subject";
const TEXT_KEY: &str = "mail.invitation.text";
const HTML_KEY: &str = "mail.invitation.html";

pub const MAX_SUBJECT: usize = 200;
pub const MAX_BODY: usize = 64 * 1024;

impl Template {
    /// The template shipped with seatgate.
    pub fn default_invitation() -> Template {
        Template {
            subject: "Set up {{organization}} licensing on your Mac".into(),
            text: "Hello,\n\n{{organization}} invites you to install and activate the app on your Mac.\n\n\
                   Open this link to get started (it works until {{expires}}):\n{{link}}\n\n\
                   You will be asked to sign in as {{email}}. If you did not expect this email, ignore it.\n"
                .into(),
            html: "<p>Hello,</p>\n<p>{{organization}} invites you to install and activate the app on your Mac.</p>\n\
                   <p><a href=\"{{link}}\">Get started</a> (the link works until {{expires}}).</p>\n\
                   <p>You will be asked to sign in as {{email}}. If you did not expect this email, ignore it.</p>\n"
                .into(),
        }
    }

    /// The stored template, or the default for parts never changed.
    pub fn load(tx: &Transaction<'_>) -> rusqlite::Result<Template> {
        let d = Template::default_invitation();
        Ok(Template {
            subject: settings::get(tx, SUBJECT_KEY)?.unwrap_or(d.subject),
            text: settings::get(tx, TEXT_KEY)?.unwrap_or(d.text),
            html: settings::get(tx, HTML_KEY)?.unwrap_or(d.html),
        })
    }

    /// Checks and stores the template.
    pub fn save(&self, tx: &Transaction<'_>, now: i64) -> Result<(), TemplateError> {
        self.check()?;
        settings::put(tx, SUBJECT_KEY, &self.subject, now)?;
        settings::put(tx, TEXT_KEY, &self.text, now)?;
        settings::put(tx, HTML_KEY, &self.html, now)?;
        Ok(())
    }

    /// The shipped template again.
    pub fn reset(tx: &Transaction<'_>, now: i64) -> rusqlite::Result<()> {
        Template::default_invitation()
            .save(tx, now)
            .map_err(|e| match e {
                TemplateError::Db(e) => e,
                TemplateError::Invalid(_) => rusqlite::Error::InvalidQuery,
            })
    }

    /// Refuses what would not make a good email (see the module's notes).
    pub fn check(&self) -> Result<(), TemplateError> {
        let bad = |m: String| Err(TemplateError::Invalid(m));
        if self.subject.trim().is_empty() || self.subject.len() > MAX_SUBJECT {
            return bad(format!("the subject must be 1 to {MAX_SUBJECT} characters"));
        }
        if self.subject.chars().any(char::is_control) {
            return bad("the subject must be one line of text".into());
        }
        for (part, text) in [("text", &self.text), ("HTML", &self.html)] {
            if text.len() > MAX_BODY {
                return bad(format!("the {part} part is larger than 64 KiB"));
            }
            if text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
            {
                return bad(format!("the {part} part holds control characters"));
            }
        }
        if placeholders(&self.subject).iter().any(|v| v == "link") {
            // Subjects are kept in the outbox and shown in its lists; the link is a
            // credential, kept only in the body until the message is sent.
            return bad("the subject must not contain {{link}} (the link is a credential; put it in the text and HTML parts)".into());
        }
        if !self.text.contains("{{link}}") || !self.html.contains("{{link}}") {
            return bad("the text and the HTML part must both contain {{link}}".into());
        }
        for (part, text) in [
            ("subject", &self.subject),
            ("text", &self.text),
            ("HTML", &self.html),
        ] {
            for name in placeholders(text) {
                if !VARIABLES.iter().any(|(v, _)| *v == name) {
                    return bad(format!(
                        "the {part} uses {{{{{name}}}}}, which is not a variable; use {}",
                        VARIABLES
                            .iter()
                            .map(|(v, _)| format!("{{{{{v}}}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
        Ok(())
    }

    /// The email for `vars` (name, value): subject, text, HTML (values escaped).
    pub fn render(&self, vars: &[(&str, &str)]) -> (String, String, String) {
        let subject = fill(&self.subject, vars, |v| v.replace(['\r', '\n'], " "));
        let text = fill(&self.text, vars, str::to_string);
        let html = fill(&self.html, vars, |v| maud::html! { (v) }.into_string());
        (subject, text, html)
    }
}

/// The `{{name}}`s in `text`.
fn placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim().to_string());
        rest = &after[end + 2..];
    }
    out
}

fn fill(template: &str, vars: &[(&str, &str)], escape: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        match vars.iter().find(|(k, _)| *k == name) {
            Some((_, v)) => out.push_str(&escape(v)),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_for_html_and_subjects_stay_one_line() {
        let t = Template::default_invitation();
        assert!(t.check().is_ok());
        let (subject, text, html) = t.render(&[
            ("organization", "A&B <Corp>\r\nBcc: x@evil"),
            ("link", "https://gw/i/abc?x=1&y=2"),
            ("email", "a@b.c"),
            ("expires", "2027-01-01"),
        ]);
        assert!(
            !subject.contains('\n') && !subject.contains('\r'),
            "{subject}"
        );
        assert!(text.contains("https://gw/i/abc?x=1&y=2"));
        assert!(html.contains("A&amp;B &lt;Corp&gt;"), "{html}");
        assert!(
            html.contains("href=\"https://gw/i/abc?x=1&amp;y=2\""),
            "{html}"
        );
    }

    #[test]
    fn unknown_variables_and_bad_subjects_are_refused() {
        let mut t = Template::default_invitation();
        t.text = "{{lnk}} {{link}}".into();
        assert!(t.check().unwrap_err().to_string().contains("{{lnk}}"));
        let mut t = Template::default_invitation();
        t.subject = "a\nBcc: b".into();
        assert!(t.check().is_err());
        let mut t = Template::default_invitation();
        t.html = "no link".into();
        assert!(t.check().is_err());
        let mut t = Template::default_invitation();
        t.subject = "Your link {{ link }}".into();
        assert!(t.check().unwrap_err().to_string().contains("credential"));
    }
}
