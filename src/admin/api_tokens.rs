//! Portal: admin API tokens (for scripts calling `/api/v1/admin`): list, create (the secret
//! shown once), revoke. The same tokens as `seatgate admin-token`.

use maud::html;

use super::licenses::field;
use super::pages::layout;
use super::{Admin, Handled, html, redirect};
use crate::clock::rfc3339;
use crate::db::admin::Session;
use crate::db::tokens::{self, Scope};
use crate::error::{HttpError, Reason};
use crate::http::Request;

impl Admin {
    pub(super) fn api_tokens_page(
        &self,
        session: &Session,
        created: Option<(&str, &str)>,
    ) -> Handled {
        let all = self.db.read(|tx| tokens::list(tx, Scope::Admin))?;
        Ok(html(layout(
            "Admin API tokens",
            Some(session),
            html! {
                p { a href="/admin" { "← Overview" } }
                h1 { "Admin API tokens" }
                p.muted {
                    "For scripts calling " code { (self.public_url) "/api/v1/admin/" } " with "
                    code { "Authorization: Bearer <token>" } ". They can read users, licenses, the audit log and "
                    "explain, and deactivate devices. SCIM tokens are refused there, and these by SCIM."
                }
                @if let Some((name, secret)) = created {
                    section.card.secret role="alert" {
                        h2 { "Admin API token “" (name) "”" }
                        p { strong { "Copy it now: it is shown only once." } }
                        p { code.copy.token { (secret) } }
                    }
                }
                section.card {
                    @if all.is_empty() { p { "No admin API token yet." } }
                    @else {
                        table {
                            thead { tr { th { "Token" } th { "Created" } th { "Last used" } th { "State" } th {} } }
                            tbody { @for t in &all { tr {
                                td { (t.name) }
                                td.when { (rfc3339(t.created_at)) }
                                td { (t.last_used_at.map_or_else(|| "never".into(), rfc3339)) }
                                td { @if t.revoked_at.is_some() { span.bad { "revoked" } } @else { span.ok { "active" } } }
                                td {
                                    @if t.revoked_at.is_none() {
                                        form.inline method="post" action={ "/admin/api-tokens/" (t.id) "/revoke" } {
                                            input type="hidden" name="csrf" value=(session.csrf_token);
                                            button.danger type="submit" aria-label={ "Revoke " (t.name) } { "Revoke" }
                                        }
                                    }
                                }
                            } } }
                        }
                    }
                    form.inline method="post" action="/admin/api-tokens" {
                        input type="hidden" name="csrf" value=(session.csrf_token);
                        label { "Name " input type="text" name="name" required placeholder="e.g. nightly report"; }
                        button type="submit" { "Create an admin API token" }
                    }
                }
            },
        )))
    }

    pub(super) fn create_api_token(&self, req: &Request, session: &Session) -> Handled {
        let form = self.checked_form(req, session)?;
        let name = field(&form, "name").trim().to_string();
        if name.is_empty() {
            return Err(HttpError::new(Reason::BadRequest, "Give the token a name."));
        }
        let actor = format!("admin:{}", session.display_name);
        let (_, secret) = self
            .db
            .write(|tx| tokens::create(tx, Scope::Admin, &name, &actor))?;
        log::info!("{actor} created admin API token {name:?}");
        // Shown once, in this response only; never stored in clear, never in a URL.
        self.api_tokens_page(session, Some((&name, &secret)))
            .map(|r| r.with_header("Cache-Control", "no-store"))
    }

    pub(super) fn revoke_api_token(&self, req: &Request, session: &Session, id: &str) -> Handled {
        self.checked_form(req, session)?;
        let actor = format!("admin:{}", session.display_name);
        let revoked = self
            .db
            .write(|tx| tokens::revoke(tx, Scope::Admin, id, &actor))?;
        if revoked == 0 {
            return Err(HttpError::new(
                Reason::NotFound,
                "There is no active admin API token with that id.",
            ));
        }
        log::info!("{actor} revoked admin API token {id}");
        Ok(redirect("/admin/api-tokens"))
    }
}
