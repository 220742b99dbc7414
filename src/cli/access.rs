//! Who may administer: group mappings, break-glass admins, and the sign-in log.

use std::io::BufRead;

use clap::Subcommand;

use super::{CliError, runtime};
use crate::admin::password;
use crate::audit::Actor;
use crate::audit::AuditAction;
use crate::clock::{now_unix, rfc3339};
use crate::db::Db;
use crate::db::admin::{self as store, SessionKind};
use crate::licensing::manage::{self, MapTo};
use crate::licensing::reconcile::Summary;

/// Who the audit log says made changes from the command line.
pub const ACTOR: &Actor = &Actor::Cli;

#[derive(Debug, Subcommand)]
pub enum GroupMapCommand {
    /// Map a group, named as the IdP knows it: SCIM displayName, externalId (Entra object
    /// id), or SAML group value. Seats follow at once.
    #[command(group(clap::ArgGroup::new("role").required(true).args(["admins", "primary", "sublicense"])))]
    Add {
        /// The group as the IdP names it: SCIM displayName, externalId or SAML group value
        #[arg(long)]
        group: String,
        /// Members may sign in to the admin portal
        #[arg(long)]
        admins: bool,
        /// Members get a seat from a license's primary pool
        #[arg(long)]
        primary: bool,
        /// With --primary when there are several licenses: which (id or product)
        #[arg(long, requires = "primary", value_name = "LICENSE")]
        license: Option<String>,
        /// Members get a seat from this sublicense (id or name)
        #[arg(long, value_name = "SUBLICENSE")]
        sublicense: Option<String>,
        /// The IdP connection whose groups this maps: groups its SCIM tokens push, its
        /// just-in-time sign-ins create, and its assertions name. Without it, the mapping
        /// applies to groups pushed by SCIM tokens made without --connection. A group
        /// asserted or pushed by one connection never grants anything to another's users.
        #[arg(long, value_name = "CONNECTION")]
        connection: Option<String>,
    },
    /// List group mappings
    List,
    /// Remove a mapping by id
    Remove { id: String },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a break-glass admin or change its password (ends its open sessions)
    SetPassword {
        #[arg(long)]
        username: String,
        /// Read the password (at least 12 characters) from the first line of stdin
        #[arg(long, conflicts_with = "generate")]
        password_stdin: bool,
        /// Generate a strong password and print it once, alone on the last line of stdout
        #[arg(long)]
        generate: bool,
    },
    /// List break-glass admins (never their passwords)
    List,
    /// Remove a break-glass admin and end its sessions
    Remove { username: String },
    /// Print a one-time sign-in link for a break-glass admin (recovery from the console)
    LoginLink {
        #[arg(long)]
        username: String,
        /// How long the link stays usable
        #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
        valid: std::time::Duration,
    },
}

pub fn group_map(db: &Db, cmd: GroupMapCommand) -> Result<(), CliError> {
    match cmd {
        GroupMapCommand::Add {
            group,
            admins,
            primary,
            license,
            sublicense,
            connection,
        } => {
            let to = if admins {
                MapTo::Admins
            } else if primary {
                MapTo::Primary {
                    license: license.as_deref(),
                }
            } else if let Some(s) = sublicense.as_deref() {
                MapTo::Sublicense(s)
            } else {
                return Err(CliError::Usage(
                    "give the role: --admins, --primary or --sublicense S".into(),
                ));
            };
            let role = match &to {
                MapTo::Admins => "admins".to_string(),
                MapTo::Primary { .. } => "the primary pool".to_string(),
                MapTo::Sublicense(s) => format!("sublicense {s}"),
            };
            let connection = connection.as_deref().map(str::trim);
            let (id, summary) =
                manage::add_mapping(db, ACTOR, &group, connection, to).map_err(manage_error)?;
            outln!(
                "{id}\tgroup {:?} of {} → {role}",
                group.trim(),
                crate::domain::connection::scope_label(connection)
            );
            print_summary(&summary);
            let elsewhere: Vec<String> = db
                .read(|tx| crate::db::directory::group_scopes(tx, &store::fold(&group)))
                .map_err(runtime)?
                .into_iter()
                .filter(|s| s.as_deref() != connection)
                .map(|s| crate::domain::connection::scope_label(s.as_deref()))
                .collect();
            if !elsewhere.is_empty() {
                eprintln!(
                    "note: a group {:?} is also in the directory for {}; this mapping does not apply there (add one with --connection for each)",
                    group.trim(),
                    elsewhere.join(", ")
                );
            }
        }
        GroupMapCommand::List => {
            let all = db.read(store::mappings).map_err(runtime)?;
            if all.is_empty() {
                outln!(
                    "no group mappings; add one with `seatgate group-map add --group GROUP --admins`"
                );
            }
            for m in all {
                let to = m.sublicense_id.or(m.license_id).unwrap_or_default();
                let scope = crate::domain::connection::scope_label(m.connection_id.as_deref());
                outln!("{}\t{}\t{}\t{to}\t{scope}", m.id, m.role, m.group_ref);
            }
        }
        GroupMapCommand::Remove { id } => {
            let summary = manage::remove_mapping(db, ACTOR, &id).map_err(manage_error)?;
            outln!("removed group mapping {id}");
            print_summary(&summary);
        }
    }
    Ok(())
}

pub fn admin(db: &Db, public_url: &str, cmd: AdminCommand) -> Result<(), CliError> {
    match cmd {
        AdminCommand::SetPassword {
            username,
            password_stdin,
            generate,
        } => {
            let username = username.trim().to_string();
            if !password::valid_username(&username) {
                return Err(CliError::Usage(format!(
                    "--username takes {}",
                    password::USERNAME_RULE
                )));
            }
            let secret = if generate {
                password::generate()
            } else if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(runtime)?;
                line.trim_end_matches(['\r', '\n']).to_string()
            } else {
                return Err(CliError::Usage(
                    "choose --generate (prints a new password) or --password-stdin".into(),
                ));
            };
            let new = password::NewPassword::new(&username, &secret)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let now = now_unix();
            let set = db
                .write(|tx| password::set(tx, &new, ACTOR, None, now))
                .map_err(runtime)?;
            let (created, ended) = (set.created, set.ended_sessions);
            eprintln!(
                "{} break-glass admin {username}{}",
                if created {
                    "created"
                } else {
                    "changed the password of"
                },
                if ended > 0 {
                    format!(" and ended {ended} open session(s)")
                } else {
                    String::new()
                }
            );
            if generate {
                eprintln!("its password is shown only now:");
                outln!("{secret}");
            }
        }
        AdminCommand::List => list_admins(db)?,
        AdminCommand::LoginLink { username, valid } => {
            print_login_link(db, public_url, &username, valid)?
        }
        AdminCommand::Remove { username } => remove_admin(db, &username)?,
    }
    Ok(())
}

fn list_admins(db: &Db) -> Result<(), CliError> {
    let all = db.read(store::local_admins).map_err(runtime)?;
    if all.is_empty() {
        outln!(
            "no break-glass admins; create one with `seatgate admin set-password --username NAME --generate`"
        );
    }
    for a in all {
        outln!(
            "{}\tcreated {}\tpassword set {}\tlast sign-in {}",
            a.username,
            rfc3339(a.created_at),
            rfc3339(a.updated_at),
            a.last_login_at.map_or_else(|| "never".into(), rfc3339)
        );
    }
    Ok(())
}

fn print_login_link(
    db: &Db,
    public_url: &str,
    username: &str,
    valid: std::time::Duration,
) -> Result<(), CliError> {
    let link =
        crate::admin::login_link(db, public_url, username.trim(), valid).map_err(|e| match e {
            crate::admin::LinkError::UnknownAdmin(_) => CliError::Usage(e.to_string()),
            crate::admin::LinkError::Db(e) => runtime(e),
        })?;
    eprintln!(
        "a one-time sign-in link for {username}, usable once within {}:",
        humantime::format_duration(valid)
    );
    outln!("{link}");
    Ok(())
}

/// Removes a break-glass admin and ends its sessions, in one transaction.
fn remove_admin(db: &Db, username: &str) -> Result<(), CliError> {
    let now = now_unix();
    let removed = db
        .write(|tx| {
            let removed = store::delete_local_admin(tx, username)?;
            store::end_sessions_of(tx, SessionKind::Local, username, now)?;
            if removed {
                crate::db::licensing::audit(
                    tx,
                    now,
                    ACTOR,
                    AuditAction::LocalAdminRemoved,
                    None,
                    crate::db::licensing::AuditAbout {
                        subject: Some(username),
                        ..Default::default()
                    },
                )?;
            }
            Ok::<_, rusqlite::Error>(removed)
        })
        .map_err(runtime)?;
    if !removed {
        return Err(CliError::Usage(format!(
            "there is no break-glass admin {username:?}"
        )));
    }
    outln!("removed break-glass admin {username} and ended its sessions");
    Ok(())
}

pub fn sign_in_log(db: &Db, limit: u32, failures: bool) -> Result<(), CliError> {
    let rows = db
        .read(|tx| store::recent_sign_ins(tx, failures, limit))
        .map_err(runtime)?;
    if rows.is_empty() {
        outln!(
            "no sign-ins recorded{}",
            if failures { " that were refused" } else { "" }
        );
    }
    for r in rows {
        outln!(
            "{} {} {} {}/{} {} {}{} {}",
            rfc3339(r.at),
            r.client,
            r.method,
            r.purpose,
            r.connection_id.as_deref().unwrap_or("-"),
            r.identity.as_deref().unwrap_or("-"),
            r.outcome,
            attempts(r.count),
            r.detail.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

/// " (N attempts)" for a row that counts several refused attempts.
fn attempts(count: i64) -> String {
    if count > 1 {
        format!(" ({count} attempts)")
    } else {
        String::new()
    }
}

pub fn manage_error(e: manage::ManageError) -> CliError {
    match e {
        manage::ManageError::Db(e) => CliError::Runtime(e.to_string()),
        other => CliError::Usage(other.to_string()),
    }
}

/// One line on what a change did to seats, when it did anything.
pub fn print_summary(s: &Summary) {
    if *s != Summary::default() {
        outln!(
            "seats: {} granted, {} pending, {} revoked ({} devices revoked)",
            s.granted,
            s.pending,
            s.revoked,
            s.devices_revoked
        );
    }
}
