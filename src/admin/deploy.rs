//! Portal and admin API: the Deploy page (the MDM configuration profile: what it holds,
//! its version, whether it is signed, and how to upload it to Jamf Pro or Intune) and the
//! profile downloads. Built by `deploy`, as `seatgate profile export` builds it.

use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::licenses::field;
use super::pages::layout;
use super::{Admin, Handled};
use crate::audit::Actor;
use crate::db::admin::Session;
use crate::deploy::profile::{self, Activation, Profile, ProfileInput};
use crate::domain::problem::{Problem, Reason};
use crate::error::HttpError;
use crate::http::{Request, Response};

const CONTENT_TYPE: &str = "application/x-apple-aspen-config";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileRequest {
    /// `sso` or `key`.
    activation: Option<String>,
    license_key: Option<String>,
}

/// `sso`/`key` and an optional key, as the forms and the API send them.
fn activation(method: Option<&str>, key: Option<&str>) -> Result<Activation, HttpError> {
    let key = key.map(str::trim).filter(|k| !k.is_empty());
    match (
        method.unwrap_or(if key.is_some() { "key" } else { "sso" }),
        key,
    ) {
        ("sso", None) => Ok(Activation::Sso),
        ("key", key) => Ok(Activation::Key(key.map(str::to_string))),
        ("sso", Some(_)) => Err(HttpError::new(
            Reason::BadRequest,
            "A license key goes with activation \"key\", not \"sso\".",
        )),
        _ => Err(HttpError::new(
            Reason::BadRequest,
            "The activation is \"sso\" or \"key\".",
        )),
    }
}

impl Admin {
    /// The profile as it would be exported now, for `activation`.
    fn profile(&self, activation: Activation) -> Result<(ProfileInput, Profile), HttpError> {
        let input = crate::deploy::profile_input(
            &self.db,
            &self.gateway,
            &self.public_url,
            activation,
            self.clock.now_unix(),
        )?;
        let identity =
            crate::deploy::signing_identity(&self.gateway, None).map_err(Problem::from)?;
        let built = profile::export(&input, identity.as_ref()).map_err(Problem::from)?;
        Ok((input, built))
    }

    fn profile_download(&self, built: Profile) -> Response {
        let host = self
            .public_url
            .split_once("://")
            .map_or("gateway", |(_, r)| r)
            .split([':', '/'])
            .next()
            .unwrap_or("gateway")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
            .collect::<String>();
        Response::attachment(
            CONTENT_TYPE,
            &format!("seatgate-{host}.mobileconfig"),
            built.bytes,
        )
        .with_header("Cache-Control", "no-store")
    }

    /// `GET /admin/deploy`.
    pub(crate) fn deploy_page(&self, session: &Session) -> Handled {
        let body = match crate::deploy::signing_identity(&self.gateway, None) {
            Ok(identity) => {
                let input = crate::deploy::profile_input(
                    &self.db,
                    &self.gateway,
                    &self.public_url,
                    Activation::Sso,
                    self.clock.now_unix(),
                )?;
                let built = profile::export(&input, identity.as_ref()).map_err(Problem::from)?;
                deploy_page(
                    session,
                    &input,
                    &built,
                    identity.as_ref().map(|i| (i.subject(), i.not_after())),
                    &self.gateway.profile.preference_domain,
                )
            }
            Err(e) => html! {
                h1 { "Deploy to Macs" }
                p.notice role="alert" {
                    "The profile's signing identity cannot be used: " (e.to_string())
                    ". Fix [profile] signing_identity in the configuration (or empty it for unsigned profiles) and restart."
                }
            },
        };
        Ok(Response::page(
            200,
            layout("Deploy to Macs", Some(session), body),
        ))
    }

    /// `GET /admin/deploy/profile.mobileconfig`: the single sign-on profile.
    pub(crate) fn download_profile(&self) -> Handled {
        let (_, built) = self.profile(Activation::Sso)?;
        Ok(self.profile_download(built))
    }

    /// `POST /admin/deploy/profile`: a profile for license-key activation, with the key
    /// typed in the form (checked to be a live key).
    pub(crate) fn download_key_profile(&self, req: &Request, actor: &Actor) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let key = field(&form, "license_key");
        let (input, built) = self.profile(activation(Some("key"), Some(key))?)?;
        crate::deploy::audit_export(&self.db, actor, &input, &built, self.clock.now_unix())?;
        Ok(self.profile_download(built))
    }

    /// `GET /api/v1/admin/profile?activation=sso|key`: the profile.
    pub(crate) fn api_profile(&self, req: &Request) -> Handled {
        let query = crate::http::parse_form(req.query.as_bytes())?;
        let method = query.get("activation").map(String::as_str);
        let (_, built) = self.profile(activation(method, None)?)?;
        Ok(self.profile_download(built))
    }

    /// `POST /api/v1/admin/profile` `{"activation", "license_key"}`: the profile, a key in it.
    pub(crate) fn api_profile_with(&self, req: &Request, actor: &Actor) -> Handled {
        let b: ProfileRequest = serde_json::from_slice(&req.body).map_err(|e| {
            HttpError::new(
                Reason::BadRequest,
                format!("The body is not the JSON this address takes: {e}."),
            )
        })?;
        let (input, built) = self.profile(activation(
            b.activation.as_deref(),
            b.license_key.as_deref(),
        )?)?;
        crate::deploy::audit_export(&self.db, actor, &input, &built, self.clock.now_unix())?;
        Ok(self.profile_download(built))
    }

    /// `GET /api/v1/admin/profile/info`: what the profile holds, its version and signer.
    pub(crate) fn api_profile_info(&self) -> Handled {
        let (input, built) = self.profile(Activation::Sso)?;
        Ok(Response::json(
            200,
            &json!({"identifier": built.identifier, "version": built.version,
                    "signed_by": built.signed_by, "server_url": input.server_url,
                    "includes_ca": input.ca_der.is_some(), "email_domains": input.email_domains,
                    "preference_domain": input.preference_domain}),
        ))
    }
}

fn deploy_page(
    s: &Session,
    input: &ProfileInput,
    built: &Profile,
    signer: Option<(String, String)>,
    domain: &str,
) -> Markup {
    html! {
        h1 { "Deploy to Macs" }
        p.muted {
            "Upload one configuration profile to your MDM (Jamf Pro, Microsoft Intune, Kandji, "
            "Mosyle, iMazing…) and every Mac it reaches trusts this gateway and knows where to "
            "activate. Uploading a newer export replaces the old profile: its identifier stays "
            "the same (the single sign-on profile and each license-key profile have their own)."
        }
        section.card {
            h2 { "Configuration profile" }
            table.facts { tbody {
                tr { th { "Version" } td { code { (built.version) } " — changes when what it holds changes" } }
                tr { th { "Identifier" } td { code.copy { (built.identifier) } } }
                tr { th { "Signed" } td {
                    @match &signer {
                        Some((subject, until)) => { span.ok { "yes" } ", by " (subject) " (certificate valid until " (until) "); MDMs show it as verified" },
                        None => { span.bad { "no" } " — MDMs show it as unsigned. To sign it, set " code { "[profile] signing_identity" } " to a PKCS#12 or PEM identity from your organization's CA and restart; or sign the export with " code { "seatgate profile export --sign-identity FILE" } "." },
                    }
                } }
                tr { th { "Gateway" } td { code { (input.server_url) } } }
                tr { th { "Certificate authority" } td {
                    @if input.ca_der.is_some() { "included: the Macs trust this gateway's own CA (" code { "com.apple.security.root" } ")" }
                    @else { "not included: the gateway's certificate comes from a CA the Macs already trust" }
                } }
                tr { th { "App settings" } td {
                    "preference domain " code { (domain) } ": ServerURL, ActivationMethod, EmailDomains ("
                    @if input.email_domains.is_empty() { "none yet: add an identity provider" }
                    @else { (input.email_domains.join(", ")) }
                    "), RenewalCheckInterval"
                    @if input.ca_der.is_some() { ", ServerCACertificate" }
                } }
            } }
            p { a.button href="/admin/deploy/profile.mobileconfig" download { "Download the profile (single sign-on)" } }
            form.inline method="post" action="/admin/deploy/profile" {
                input type="hidden" name="csrf" value=(s.csrf_token);
                label { "License key " input type="text" name="license_key" placeholder="SGK-… (optional)" autocomplete="off" spellcheck="false"; }
                button type="submit" { "Download a license-key profile" }
            }
            p.muted {
                "A license-key profile activates the Macs without a sign-in (labs, shared Macs): with the key in it, "
                "they activate on their own; without it, the app asks for one. Create keys on the "
                a href="/admin/keys" { "License keys" } " page. The key is in the profile in clear text: upload it only to your MDM."
            }
        }
        section.card {
            h2 { "Upload to Jamf Pro" }
            ol {
                li { "Computers → Configuration Profiles → " strong { "Upload" } ", choose the downloaded " code { ".mobileconfig" } "." }
                li { "Check the General payload's name and the Certificate and Application & Custom Settings payloads; Jamf keeps a signed profile read-only." }
                li { "Scope: the computers or smart groups that get the app; " strong { "Save" } "." }
            }
        }
        section.card {
            h2 { "Upload to Microsoft Intune" }
            ol {
                li { "Devices → macOS → Configuration → " strong { "Create" } " → New policy → Profile type " strong { "Templates" } " → " strong { "Custom" } "." }
                li { "Name it, deployment channel " strong { "Device channel" } ", upload the " code { ".mobileconfig" } "." }
                li { "Assign it to the device groups that get the app; " strong { "Create" } "." }
            }
        }
    }
}
