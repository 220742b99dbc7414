//! Portal: client policies. The list with each policy's groups and priorities and the
//! default; a page per policy with a form per setting (each may be left to inherit); the
//! assignments. Every change goes through `licensing::policies`, as the CLI and the API.

use std::collections::BTreeMap;

use maud::{Markup, html};
use serde_json::{Map, Value, json};

use super::forms::{Sticky, confirmation, sentence};
use super::licenses::field;
use super::pages::layout;
use super::{Admin, Handled};
use crate::audit::Actor;
use crate::db::admin::Session;
use crate::db::policies::{AssignmentRow, PolicyRow};
use crate::domain::policy::{ACTIONS, SETTINGS, describe_value, human_seconds};
use crate::error::HttpError;
use crate::http::{Request, Response};
use crate::licensing::manage::ManageError;
use crate::licensing::policies::{self, PolicyInput};

const LIST: &str = "/admin/policies";

/// What the list page shows, read in one snapshot.
struct PoliciesView {
    policies: Vec<PolicyRow>,
    assignments: Vec<AssignmentRow>,
    connections: Vec<(String, String)>,
}

impl Admin {
    fn policies_view(&self) -> Result<PoliciesView, HttpError> {
        self.db.read(|tx| {
            Ok::<_, HttpError>(PoliciesView {
                policies: crate::db::policies::list(tx)?,
                assignments: crate::db::policies::assignments(tx)?,
                connections: crate::db::idp::list(tx)?
                    .into_iter()
                    .map(|c| (c.id, c.name))
                    .collect(),
            })
        })
    }

    fn render_policies(
        &self,
        session: &Session,
        refused: Option<&str>,
        sticky: Sticky<'_>,
    ) -> Handled {
        let view = self.policies_view()?;
        Ok(Response::page(
            if refused.is_some() { 400 } else { 200 },
            layout(
                "Policies",
                Some(session),
                list_page(session, &view, refused, sticky),
            ),
        ))
    }

    /// `GET /admin/policies`.
    pub(crate) fn policies_page(&self, session: &Session) -> Handled {
        self.render_policies(session, None, Sticky::none())
    }

    /// A refused change on the list page: the page again with the reason.
    fn policies_refused(
        &self,
        session: &Session,
        e: ManageError,
        action: &str,
        form: &BTreeMap<String, String>,
    ) -> Handled {
        match e {
            ManageError::Db(e) => Err(e.into()),
            e => self.render_policies(
                session,
                Some(&sentence(&e.to_string())),
                Sticky::of(action, form),
            ),
        }
    }

    /// `POST /admin/policies`: a new policy (setting nothing yet); its page comes next.
    pub(crate) fn create_policy(&self, req: &Request, session: &Session, actor: &Actor) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let created = policies::create(
            &self.db,
            actor,
            self.lease_bounds(),
            &PolicyInput {
                name: Some(field(&form, "name")),
                description: Some(field(&form, "description")),
                settings: None,
            },
            self.clock.now_unix(),
        );
        match created {
            Ok(p) => {
                self.flash.set(
                    session,
                    format!("Created the policy {}. Choose its settings below.", p.name),
                );
                Ok(Response::see_other(&format!("/admin/policies/{}", p.id)))
            }
            Err(e) => self.policies_refused(session, e, LIST, &form),
        }
    }

    /// `POST /admin/policies/assign`: a policy for a group, with a priority.
    pub(crate) fn assign_policy(&self, req: &Request, session: &Session, actor: &Actor) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let action = "/admin/policies/assign";
        let connection = Some(field(&form, "connection")).filter(|c| !c.is_empty());
        let assigned = priority_of(&form).and_then(|priority| {
            policies::assign(
                &self.db,
                actor,
                field(&form, "policy"),
                field(&form, "group"),
                connection,
                priority,
                self.clock.now_unix(),
            )
        });
        match assigned {
            Ok(a) => {
                self.flash.set(
                    session,
                    format!(
                        "Assigned the policy {} to group {} with priority {}. Its members' Macs get it at their next renewal or policy fetch.",
                        a.policy_name, a.group_ref, a.priority
                    ),
                );
                Ok(Response::see_other(LIST))
            }
            Err(e) => self.policies_refused(session, e, action, &form),
        }
    }

    /// `POST /admin/policies/assignments/{id}`: another priority, or removal.
    pub(crate) fn change_assignment(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
        id: &str,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let action = format!("/admin/policies/assignments/{id}");
        let now = self.clock.now_unix();
        let done = if field(&form, "remove") == "yes" {
            policies::unassign(&self.db, actor, id, now).map(|a| {
                format!(
                    "Removed the policy {} from group {}.",
                    a.policy_name, a.group_ref
                )
            })
        } else {
            priority_of(&form)
                .and_then(|p| policies::reprioritize(&self.db, actor, id, p, now))
                .map(|a| format!("Group {} now has priority {}.", a.group_ref, a.priority))
        };
        match done {
            Ok(text) => {
                self.flash.set(session, text);
                Ok(Response::see_other(LIST))
            }
            Err(e) => self.policies_refused(session, e, &action, &form),
        }
    }

    /// `POST /admin/policies/default`: the default policy, or none.
    pub(crate) fn default_policy(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let policy = Some(field(&form, "policy")).filter(|p| !p.is_empty());
        match policies::set_default(&self.db, actor, policy, self.clock.now_unix()) {
            Ok(p) => {
                self.flash.set(
                    session,
                    p.map_or("There is no default policy now.".into(), |p| {
                        format!("The default policy is now {}.", p.name)
                    }),
                );
                Ok(Response::see_other(LIST))
            }
            Err(e) => self.policies_refused(session, e, "/admin/policies/default", &form),
        }
    }

    /// `GET /admin/policies/{id}`.
    pub(crate) fn policy_page(&self, session: &Session, id: &str) -> Handled {
        self.render_policy(session, id, None, None)
    }

    fn render_policy(
        &self,
        session: &Session,
        id: &str,
        refused: Option<&str>,
        form: Option<&BTreeMap<String, String>>,
    ) -> Handled {
        let (p, assignments) = self.db.read(|tx| {
            Ok::<_, HttpError>((
                policies::find(tx, id)?,
                crate::db::policies::assignments(tx)?,
            ))
        })?;
        let settings: Map<String, Value> = serde_json::from_str(&p.settings).unwrap_or_default();
        let values = form.cloned().unwrap_or_else(|| form_of(&p, &settings));
        let mine: Vec<&AssignmentRow> =
            assignments.iter().filter(|a| a.policy_id == p.id).collect();
        let body = policy_page(session, &p, &mine, &values, refused, self.lease_bounds());
        Ok(Response::page(
            if refused.is_some() { 400 } else { 200 },
            layout(&format!("Policy {}", p.name), Some(session), body),
        ))
    }

    /// `POST /admin/policies/{id}`: the settings form.
    pub(crate) fn save_policy(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
        id: &str,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let saved = settings_of_form(&form).and_then(|settings| {
            policies::change(
                &self.db,
                actor,
                self.lease_bounds(),
                id,
                &PolicyInput {
                    name: Some(field(&form, "name")),
                    description: Some(field(&form, "description")),
                    settings: Some(&settings),
                },
                self.clock.now_unix(),
            )
        });
        match saved {
            Ok(p) => {
                self.flash.set(
                    session,
                    format!(
                        "Saved the policy {}. Macs get it at their next renewal or policy fetch.",
                        p.name
                    ),
                );
                Ok(Response::see_other(&format!("/admin/policies/{}", p.id)))
            }
            Err(ManageError::Db(e)) => Err(e.into()),
            Err(e @ ManageError::UnknownPolicy(_)) => Err(e.into()),
            Err(e) => self.render_policy(session, id, Some(&sentence(&e.to_string())), Some(&form)),
        }
    }

    /// `POST /admin/policies/{id}/delete`.
    pub(crate) fn delete_policy(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
        id: &str,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let done = confirmation(&form, "the policy is deleted")
            .map_err(ManageError::Invalid)
            .and_then(|_| policies::delete(&self.db, actor, id, self.clock.now_unix()));
        match done {
            Ok(p) => {
                self.flash
                    .set(session, format!("Deleted the policy {}.", p.name));
                Ok(Response::see_other(LIST))
            }
            Err(ManageError::Db(e)) => Err(e.into()),
            Err(e @ ManageError::UnknownPolicy(_)) => Err(e.into()),
            Err(e) => self.render_policy(session, id, Some(&sentence(&e.to_string())), None),
        }
    }
}

fn priority_of(form: &BTreeMap<String, String>) -> Result<i64, ManageError> {
    field(form, "priority").trim().parse::<i64>().map_err(|_| {
        ManageError::Invalid(
            "The priority must be a whole number from 1 (highest) to 100000.".into(),
        )
    })
}

/// A number of hours typed in a form (decimals allowed: 1.5), as whole seconds.
fn hours(
    form: &BTreeMap<String, String>,
    name: &str,
    label: &str,
) -> Result<Option<u64>, ManageError> {
    let v = field(form, name).trim();
    if v.is_empty() {
        return Ok(None);
    }
    v.parse::<f64>()
        .ok()
        .filter(|h| h.is_finite() && (0.0..=24.0 * 3660.0).contains(h))
        .map(|h| Some((h * 3600.0).round() as u64))
        .ok_or_else(|| {
            ManageError::Invalid(format!(
                "{label} must be a number of hours, such as 12 or 1.5"
            ))
        })
}

/// Seconds as the hours a form shows: whole when they are, else to the second.
fn hours_text(secs: u64) -> String {
    if secs.is_multiple_of(3600) {
        (secs / 3600).to_string()
    } else {
        let text = format!("{:.6}", secs as f64 / 3600.0);
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn whole(form: &BTreeMap<String, String>, name: &str, label: &str) -> Result<u64, ManageError> {
    field(form, name)
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n <= 100_000)
        .ok_or_else(|| ManageError::Invalid(format!("{label} must be a whole number")))
}

/// A field whose value must be one of `allowed` ("" is Inherit): anything else is a
/// form this page did not send, refused rather than dropped.
fn allowed_value<'f>(
    form: &'f BTreeMap<String, String>,
    name: &str,
    allowed: &[&str],
) -> Result<&'f str, ManageError> {
    let v = field(form, name);
    if v.is_empty() || allowed.contains(&v) {
        Ok(v)
    } else {
        Err(ManageError::Invalid(format!(
            "the form's {name} must be Inherit or one of: {}",
            allowed.join(", ")
        )))
    }
}

fn on_off(form: &BTreeMap<String, String>, name: &str) -> Result<Option<Value>, ManageError> {
    Ok(match allowed_value(form, name, &["on", "off"])? {
        "on" => Some(json!(true)),
        "off" => Some(json!(false)),
        _ => None,
    })
}

/// The settings form as a policy's settings object: each setting left on "inherit" (or
/// empty) is not set. `domain::policy` checks the values.
fn settings_of_form(form: &BTreeMap<String, String>) -> Result<Value, ManageError> {
    let mut s = Map::new();
    let ticked = ACTIONS
        .iter()
        .any(|(n, _)| field(form, &format!("action_{n}")) == "yes");
    if allowed_value(form, "restricted_actions", &["set"])?.is_empty() && ticked {
        return Err(ManageError::Invalid(
            "to restrict the ticked actions, choose \"Restrict the actions checked below\" for Restricted actions".into(),
        ));
    }
    let usb_default = allowed_value(form, "usb_default", &["allow", "ask", "deny"])?;
    if usb_default.is_empty() && !field(form, "usb_exceptions").trim().is_empty() {
        return Err(ManageError::Invalid(
            "USB exceptions need the default too: choose what happens when a USB device is connected".into(),
        ));
    }
    if field(form, "restricted_actions") == "set" {
        let chosen: Vec<&str> = ACTIONS
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| field(form, &format!("action_{n}")) == "yes")
            .collect();
        s.insert("restricted_actions".into(), json!(chosen));
    }
    if let Some(usb) = usb_of_form(form)? {
        s.insert("usb".into(), usb);
    }
    if let Some(expiration) = expiration_of_form(form)? {
        s.insert("vm_expiration".into(), expiration);
    }
    for name in [
        "lock_on_suspend",
        "hide_developer_tools",
        "customer_experience_program",
    ] {
        if let Some(v) = on_off(form, name)? {
            s.insert(name.into(), v);
        }
    }
    let (url, label) = (
        field(form, "support_url").trim(),
        field(form, "support_label").trim(),
    );
    if !url.is_empty() || !label.is_empty() {
        s.insert("support_link".into(), json!({"url": url, "label": label}));
    }
    match allowed_value(form, "update_branch", &["stable", "beta", "pinned"])? {
        b @ ("stable" | "beta") => {
            s.insert("update_branch".into(), json!(b));
        }
        "pinned" => {
            let version = field(form, "update_version").trim();
            if !version.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(ManageError::Invalid(format!(
                    "a pinned version is numbers and dots, such as 20.1.2, not {version:?}"
                )));
            }
            s.insert("update_branch".into(), json!(version));
        }
        _ => {}
    }
    if let Some(secs) = hours(form, "lease_renewal_hours", "The renewal interval")? {
        s.insert("lease_renewal_seconds".into(), json!(secs));
    }
    if let Some(secs) = hours(form, "offline_grace_hours", "The offline grace")? {
        s.insert("offline_grace_seconds".into(), json!(secs));
    }
    Ok(Value::Object(s))
}

/// The USB fields as the `usb` setting, when its default is chosen.
fn usb_of_form(form: &BTreeMap<String, String>) -> Result<Option<Value>, ManageError> {
    let d @ ("allow" | "ask" | "deny") = field(form, "usb_default") else {
        return Ok(None);
    };
    let mut exceptions = Vec::new();
    for line in field(form, "usb_exceptions")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        let (device, action) = line.split_once(char::is_whitespace).ok_or_else(|| {
            ManageError::Invalid(format!("USB exception {line:?}: write the device id and allow, ask or deny, such as 05ac:12a8 deny"))
        })?;
        exceptions.push(json!({"device": device.trim(), "action": action.trim()}));
    }
    Ok(Some(json!({"default": d, "exceptions": exceptions})))
}

/// The expiration fields as the `vm_expiration` setting, when a mode is chosen.
fn expiration_of_form(form: &BTreeMap<String, String>) -> Result<Option<Value>, ManageError> {
    let warn = || whole(form, "vm_expiration_warn_days", "The warning (days)");
    let modes = ["never", "date", "days_after_first_start"];
    Ok(match allowed_value(form, "vm_expiration", &modes)? {
        "never" => Some(json!({"mode": "never"})),
        "date" => Some(
            json!({"mode": "date", "date": field(form, "vm_expiration_date").trim(),
                              "warn_days": warn()?}),
        ),
        "days_after_first_start" => {
            let days = whole(form, "vm_expiration_days", "The days after the first start")?;
            Some(json!({"mode": "days_after_first_start", "days": days, "warn_days": warn()?}))
        }
        _ => None,
    })
}

/// A policy's settings as the form's fields (the inverse of `settings_of_form`).
fn form_of(p: &PolicyRow, s: &Map<String, Value>) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        f.insert(k.to_string(), v);
    };
    put("name", p.name.clone());
    put("description", p.description.clone());
    if let Some(list) = s.get("restricted_actions").and_then(Value::as_array) {
        put("restricted_actions", "set".into());
        for a in list.iter().filter_map(Value::as_str) {
            put(&format!("action_{a}"), "yes".into());
        }
    }
    if let Some(usb) = s.get("usb") {
        put("usb_default", usb["default"].as_str().unwrap_or("").into());
        let lines: Vec<String> = usb["exceptions"]
            .as_array()
            .map(|e| {
                e.iter()
                    .map(|x| {
                        format!(
                            "{} {}",
                            x["device"].as_str().unwrap_or(""),
                            x["action"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        put("usb_exceptions", lines.join("\n"));
    }
    if let Some(e) = s.get("vm_expiration") {
        put("vm_expiration", e["mode"].as_str().unwrap_or("").into());
        put(
            "vm_expiration_date",
            e["date"].as_str().unwrap_or("").into(),
        );
        put(
            "vm_expiration_days",
            e["days"]
                .as_u64()
                .map(|d| d.to_string())
                .unwrap_or_default(),
        );
        put(
            "vm_expiration_warn_days",
            e["warn_days"]
                .as_u64()
                .map(|d| d.to_string())
                .unwrap_or_default(),
        );
    }
    for name in [
        "lock_on_suspend",
        "hide_developer_tools",
        "customer_experience_program",
    ] {
        if let Some(b) = s.get(name).and_then(Value::as_bool) {
            put(name, if b { "on" } else { "off" }.into());
        }
    }
    if let Some(l) = s.get("support_link") {
        put("support_url", l["url"].as_str().unwrap_or("").into());
        put("support_label", l["label"].as_str().unwrap_or("").into());
    }
    match s.get("update_branch").and_then(Value::as_str) {
        Some(b @ ("stable" | "beta")) => put("update_branch", b.into()),
        Some(v) => {
            put("update_branch", "pinned".into());
            put("update_version", v.into());
        }
        None => {}
    }
    for (name, field) in [
        ("lease_renewal_seconds", "lease_renewal_hours"),
        ("offline_grace_seconds", "offline_grace_hours"),
    ] {
        if let Some(secs) = s.get(name).and_then(Value::as_u64) {
            put(field, hours_text(secs));
        }
    }
    f
}

fn list_page(s: &Session, v: &PoliciesView, refused: Option<&str>, sticky: Sticky<'_>) -> Markup {
    let default = v.policies.iter().find(|p| p.is_default);
    html! {
        h1 { "Policies" }
        p.muted {
            "A policy sets how the desktop app behaves on the Macs: restricted actions, USB devices, "
            "virtual machine expiration, updates, the lease windows and more. A Mac takes each setting from "
            "the highest-priority group policy its person is in (priority 1 is the highest), then the "
            "default policy, then the built-in value; a license key's Macs get the key's policy. Changes "
            "reach each Mac at its next renewal or policy fetch. The settings' JSON Schema: "
            a href="/api/v1/policy-schema" { code { "/api/v1/policy-schema" } } "."
        }
        @if let Some(n) = refused { p.notice role="alert" { (n) } }
        section.card {
            h2 { "Policies" }
            @if v.policies.is_empty() { p { "No policy yet: every Mac gets the built-in values." } }
            @else {
                table {
                    thead { tr { th { "Policy" } th { "Sets" } th { "Groups (priority)" } } }
                    tbody { @for p in &v.policies {
                        @let set: Map<String, Value> = serde_json::from_str(&p.settings).unwrap_or_default();
                        tr {
                            td { a href={ "/admin/policies/" (p.id) } { strong { (p.name) } } @if p.is_default { " " span.ok { "default" } }
                                 @if !p.description.is_empty() { br; span.muted { (p.description) } } }
                            td { @if set.is_empty() { span.muted { "nothing yet" } } @else {
                                (SETTINGS.iter().filter(|(n, _)| set.contains_key(*n)).map(|(_, l)| *l).collect::<Vec<_>>().join(", ")) } }
                            td { @for a in v.assignments.iter().filter(|a| a.policy_id == p.id) {
                                (a.group_ref) " (" (a.priority) ")" br;
                            } }
                        }
                    } }
                }
            }
            form.inline method="post" action=(LIST) {
                input type="hidden" name="csrf" value=(s.csrf_token);
                label { "Name " input type="text" name="name" maxlength="100" required value=(sticky.value(LIST, "name", "")) placeholder="e.g. Engineering"; }
                label { "Description " input type="text" name="description" maxlength="500" value=(sticky.value(LIST, "description", "")); }
                button type="submit" { "Create policy" }
            }
        }
        (assignments_card(s, v, sticky))
        section.card {
            h2 { "Default policy" }
            p.muted { "For everyone no group policy covers, and for settings the group policies leave unset." }
            form.inline method="post" action="/admin/policies/default" {
                input type="hidden" name="csrf" value=(s.csrf_token);
                select name="policy" aria-label="Default policy" {
                    option value="" selected[default.is_none()] { "None (built-in values)" }
                    @for p in &v.policies { option value=(p.id) selected[p.is_default] { (p.name) } }
                }
                button type="submit" { "Set default" }
            }
        }
    }
}

fn assignments_card(s: &Session, v: &PoliciesView, sticky: Sticky<'_>) -> Markup {
    let assign = "/admin/policies/assign";
    html! {
        section.card {
            h2 { "Group assignments" }
            @if v.assignments.is_empty() { p { "No policy is assigned to a group yet." } }
            @else {
                table {
                    thead { tr { th { "Priority" } th { "Group" } th { "Policy" } th {} } }
                    tbody { @for a in &v.assignments { tr {
                        td {
                            form.inline method="post" action={ "/admin/policies/assignments/" (a.id) } {
                                input type="hidden" name="csrf" value=(s.csrf_token);
                                input type="number" name="priority" min="1" max="100000" value=(a.priority) aria-label={ "Priority of " (a.group_ref) } class="narrow";
                                button type="submit" { "Change" }
                            }
                        }
                        td { (a.group_ref) br; span.muted { "of " @match &a.connection_id {
                            Some(c) => (v.connections.iter().find(|(id, _)| id == c).map_or(c.as_str(), |(_, n)| n.as_str())),
                            None => "SCIM tokens without a connection",
                        } } }
                        td { a href={ "/admin/policies/" (a.policy_id) } { (a.policy_name) } }
                        td {
                            form method="post" action={ "/admin/policies/assignments/" (a.id) } {
                                input type="hidden" name="csrf" value=(s.csrf_token);
                                input type="hidden" name="remove" value="yes";
                                button.danger type="submit" { "Remove" }
                            }
                        }
                    } } }
                }
            }
            @if !v.policies.is_empty() {
                h3 { "Assign a policy to a group" }
                form.inline method="post" action=(assign) {
                    input type="hidden" name="csrf" value=(s.csrf_token);
                    label { "Policy " select name="policy" required {
                        @for p in &v.policies { option value=(p.id) selected[sticky.chose(assign, "policy", &p.id)] { (p.name) } }
                    } }
                    label { "Group " input type="text" name="group" maxlength="256" required placeholder="as the IdP names it" value=(sticky.value(assign, "group", "")); }
                    @if !v.connections.is_empty() {
                        label { "of " select name="connection" {
                            @for (id, name) in &v.connections { option value=(id) selected[sticky.chose(assign, "connection", id)] { (name) } }
                            option value="" selected[sticky.chose(assign, "connection", "")] { "SCIM tokens without a connection" }
                        } }
                    }
                    label { "Priority " input type="number" name="priority" min="1" max="100000" required value=(sticky.value(assign, "priority", "")) placeholder="1 = highest" class="narrow"; }
                    button type="submit" { "Assign" }
                }
            }
        }
    }
}

fn choice(f: &BTreeMap<String, String>, name: &str, value: &str) -> bool {
    f.get(name).map(String::as_str).unwrap_or("") == value
}

fn val<'a>(f: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    f.get(name).map(String::as_str).unwrap_or("")
}

fn tri_state(f: &BTreeMap<String, String>, name: &str, label: &str, hint: &str) -> Markup {
    html! {
        fieldset {
            legend { (label) }
            label { select name=(name) {
                option value="" selected[choice(f, name, "")] { "Inherit" }
                option value="on" selected[choice(f, name, "on")] { "On" }
                option value="off" selected[choice(f, name, "off")] { "Off" }
            } }
            span.muted { " " (hint) }
        }
    }
}

fn policy_page(
    s: &Session,
    p: &PolicyRow,
    assignments: &[&AssignmentRow],
    f: &BTreeMap<String, String>,
    refused: Option<&str>,
    bounds: crate::domain::policy::LeaseBounds,
) -> Markup {
    let action = format!("/admin/policies/{}", p.id);
    html! {
        p { a href=(LIST) { "← Policies" } }
        h1 { "Policy " (p.name) @if p.is_default { " " span.ok { "default" } } }
        p.muted {
            @if assignments.is_empty() && !p.is_default { "Not assigned to any group yet. " }
            @for a in assignments { "Group " (a.group_ref) " (priority " (a.priority) "). " }
            "Each setting left on " em { "Inherit" } " comes from a lower-priority policy, the default policy, or the built-in value."
        }
        @if let Some(n) = refused { p.notice role="alert" { (n) } }
        form.policy method="post" action=(action) {
            input type="hidden" name="csrf" value=(s.csrf_token);
            fieldset {
                legend { "Name" }
                label { "Name " input type="text" name="name" maxlength="100" required value=(val(f, "name")); }
                label { "Description " input type="text" name="description" maxlength="500" value=(val(f, "description")); }
            }
            (actions_fields(f))
            (usb_fields(f))
            (expiration_fields(f))
            (tri_state(f, "lock_on_suspend", "Lock a virtual machine on suspend", "Resuming asks for the Mac's password."))
            (tri_state(f, "hide_developer_tools", "Hide developer tools", "The app's developer menu and tools are hidden."))
            fieldset {
                legend { "Support link" }
                p.muted { "A link in the app's Help menu. Leave both empty to inherit." }
                label { "Address " input type="url" name="support_url" maxlength="512" placeholder="https://help.example.com" value=(val(f, "support_url")); }
                label { "Label " input type="text" name="support_label" maxlength="64" placeholder="IT help desk" value=(val(f, "support_label")); }
            }
            fieldset {
                legend { "Update branch" }
                label { select name="update_branch" {
                    option value="" selected[choice(f, "update_branch", "")] { "Inherit" }
                    option value="stable" selected[choice(f, "update_branch", "stable")] { "Stable" }
                    option value="beta" selected[choice(f, "update_branch", "beta")] { "Beta" }
                    option value="pinned" selected[choice(f, "update_branch", "pinned")] { "Pinned to a version" }
                } }
                label { "Version " input type="text" name="update_version" maxlength="27" placeholder="20.1.2" value=(val(f, "update_version")); }
            }
            (tri_state(f, "customer_experience_program", "Customer experience program", "Whether the app sends anonymous usage data to the vendor."))
            fieldset {
                legend { "Lease windows" }
                p.muted { "No longer than the gateway's own (renewal every " (human_seconds(bounds.max_renewal_secs))
                          ", offline for " (human_seconds(bounds.max_grace_secs)) " more); hours, decimals allowed. Empty: inherit." }
                label { "Renew every " input type="number" name="lease_renewal_hours" min="0.0167" step="any" value=(val(f, "lease_renewal_hours")) class="narrow"; " hours" }
                label { "Offline grace " input type="number" name="offline_grace_hours" min="0" step="any" value=(val(f, "offline_grace_hours")) class="narrow"; " hours" }
            }
            button type="submit" { "Save policy" }
        }
        section.card {
            h2 { "What it sets now" }
            @let set: Map<String, Value> = serde_json::from_str(&p.settings).unwrap_or_default();
            table { tbody { @for (name, label) in SETTINGS { tr {
                td { (label) } td { @match set.get(*name) { Some(v) => (describe_value(name, v)), None => span.muted { "inherited" } } }
            } } } }
        }
        section.card {
            h2 { "Delete" }
            form method="post" action={ (action) "/delete" } {
                input type="hidden" name="csrf" value=(s.csrf_token);
                label { input type="checkbox" name="confirm" value="yes" required; " Delete this policy (only when no group and no license key uses it)" }
                button.danger type="submit" { "Delete policy" }
            }
        }
    }
}

fn actions_fields(f: &BTreeMap<String, String>) -> Markup {
    html! {
        fieldset {
            legend { "Restricted actions" }
            label { select name="restricted_actions" {
                option value="" selected[choice(f, "restricted_actions", "")] { "Inherit" }
                option value="set" selected[choice(f, "restricted_actions", "set")] { "Restrict the actions checked below (none checked: allow all)" }
            } }
            @for (name, label) in ACTIONS {
                @let key = format!("action_{name}");
                label.check { input type="checkbox" name=(key) value="yes" checked[choice(f, &key, "yes")]; " " (label) }
            }
        }
    }
}

fn usb_fields(f: &BTreeMap<String, String>) -> Markup {
    html! {
        fieldset {
            legend { "USB devices" }
            label { "When a USB device is connected " select name="usb_default" {
                option value="" selected[choice(f, "usb_default", "")] { "Inherit" }
                option value="allow" selected[choice(f, "usb_default", "allow")] { "Connect it to the virtual machine" }
                option value="ask" selected[choice(f, "usb_default", "ask")] { "Ask the user" }
                option value="deny" selected[choice(f, "usb_default", "deny")] { "Deny" }
            } }
            label { "Exceptions, one per line: vendor:product and allow, ask or deny"
                textarea name="usb_exceptions" rows="3" placeholder="05ac:12a8 allow" { (val(f, "usb_exceptions")) } }
        }
    }
}

fn expiration_fields(f: &BTreeMap<String, String>) -> Markup {
    html! {
        fieldset {
            legend { "Virtual machine expiration" }
            label { select name="vm_expiration" {
                option value="" selected[choice(f, "vm_expiration", "")] { "Inherit" }
                option value="never" selected[choice(f, "vm_expiration", "never")] { "Never" }
                option value="date" selected[choice(f, "vm_expiration", "date")] { "On a date" }
                option value="days_after_first_start" selected[choice(f, "vm_expiration", "days_after_first_start")] { "Days after the first start" }
            } }
            label { "Date " input type="date" name="vm_expiration_date" value=(val(f, "vm_expiration_date")); }
            label { "Days " input type="number" name="vm_expiration_days" min="1" max="3650" value=(val(f, "vm_expiration_days")) class="narrow"; }
            label { "Warn " input type="number" name="vm_expiration_warn_days" min="0" max="365" value=(val(f, "vm_expiration_warn_days")) class="narrow"; " days ahead" }
        }
    }
}
