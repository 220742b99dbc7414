//! Portal: admin API tokens (for scripts calling `/api/v1/admin`): list, create (the secret
//! shown once), revoke. The same tokens as `seatgate admin-token`.

use crate::audit::Actor;
use maud::html;

use super::licenses::field;
use super::pages::{layout, token_list, token_shown_once};
use super::{Admin, Handled};
use crate::db::admin::Session;
use crate::db::tokens::{self, Scope};
use crate::domain::problem::Reason;
use crate::error::HttpError;
use crate::http::Request;
use crate::http::Response;

impl Admin {
    pub(crate) fn api_tokens_page(
        &self,
        session: &Session,
        created: Option<(&str, &str)>,
    ) -> Handled {
        let all = self.db.read(|tx| tokens::list(tx, Scope::Admin))?;
        Ok(Response::page(
            200,
            layout(
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
                        (token_shown_once(&format!("Admin API token “{name}”"), secret, html! {}))
                    }
                    section.card {
                        (token_list(&all, &session.csrf_token, "/admin/api-tokens", "/admin/api-tokens",
                            "Create an admin API token", "e.g. nightly report", None))
                    }
                },
            ),
        ))
    }

    /// A new token of `scope` (a SCIM token for `connection`, if given), validated alike
    /// for the portal and the API; returns its id and its secret, shown once.
    pub(crate) fn new_token(
        &self,
        scope: Scope,
        name: &str,
        connection: Option<&str>,
        actor: &Actor,
    ) -> Result<(i64, String), HttpError> {
        let name = crate::caps::admin_name("token name", name, 100).map_err(|why| {
            HttpError::new(Reason::BadRequest, crate::admin::forms::sentence(&why))
        })?;
        let created = self.db.write(|tx| {
            if let Some(c) = connection
                && crate::db::idp::verification_keys(tx, c)?.is_none()
            {
                return Err(HttpError::new(
                    Reason::NotFound,
                    "There is no IdP connection with that id.",
                ));
            }
            Ok(tokens::create(tx, scope, name, actor, connection)?)
        })?;
        log::info!("{actor} created {} token {name:?}", scope.as_str());
        Ok(created)
    }

    pub(crate) fn create_api_token(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let name = field(&form, "name").trim().to_string();
        let (_, secret) = self.new_token(Scope::Admin, &name, None, actor)?;
        // Shown once, in this response only; never stored in clear, never in a URL.
        self.api_tokens_page(session, Some((&name, &secret)))
            .map(|r| r.with_header("Cache-Control", "no-store"))
    }

    pub(crate) fn revoke_api_token(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
        id: &str,
    ) -> Handled {
        super::forms::confirmed(req, "whatever uses the token stops working")?;
        let revoked = self
            .db
            .write(|tx| tokens::revoke(tx, Scope::Admin, id, actor))?;
        if revoked == 0 {
            return Err(HttpError::new(
                Reason::NotFound,
                "There is no active admin API token with that id.",
            ));
        }
        log::info!("{actor} revoked admin API token {id}");
        self.flash.set(
            session,
            "Revoked the token: requests with it are refused from now on.".into(),
        );
        Ok(Response::see_other("/admin/api-tokens"))
    }
}
