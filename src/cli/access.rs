//! Who may administer: group mappings, break-glass admins, and the sign-in log.

use std::io::BufRead;

use clap::Subcommand;

use super::{CliError, runtime};
use crate::admin::password;
use crate::clock::{now_unix, rfc3339};
use crate::db::Db;
use crate::db::admin::{self as store, Role, SessionKind};

#[derive(Debug, Subcommand)]
pub enum GroupMapCommand {
    /// Map a group, named as the IdP knows it: SCIM displayName, externalId (Entra object
    /// id), or SAML group value
    Add {
        #[arg(long)]
        group: String,
        /// Members may sign in to the admin portal
        #[arg(long, required = true)]
        admins: bool,
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
}

pub fn group_map(db: &Db, cmd: GroupMapCommand) -> Result<(), CliError> {
    match cmd {
        GroupMapCommand::Add { group, admins } => {
            let group = group.trim();
            if group.is_empty() || !admins {
                return Err(CliError::Usage(
                    "give --group GROUP and the role (--admins)".into(),
                ));
            }
            let id = format!("map-{}", crate::crypto::random_hex(6));
            let added = db
                .write(|tx| store::add_mapping(tx, &id, group, Role::Admins, now_unix()))
                .map_err(runtime)?;
            match added {
                Some(id) => println!("{id}\tgroup {group:?} → admins"),
                None => {
                    return Err(CliError::Usage(format!(
                        "group {group:?} is already mapped to admins"
                    )));
                }
            }
        }
        GroupMapCommand::List => {
            let all = db.read(store::mappings).map_err(runtime)?;
            if all.is_empty() {
                println!(
                    "no group mappings; add one with `seatgate group-map add --group GROUP --admins`"
                );
            }
            for m in all {
                println!("{}\t{}\t{}", m.id, m.role, m.group_ref);
            }
        }
        GroupMapCommand::Remove { id } => {
            if !db
                .write(|tx| store::remove_mapping(tx, &id))
                .map_err(runtime)?
            {
                return Err(CliError::Usage(format!("there is no group mapping {id:?}")));
            }
            println!("removed group mapping {id}");
        }
    }
    Ok(())
}

pub fn admin(db: &Db, cmd: AdminCommand) -> Result<(), CliError> {
    match cmd {
        AdminCommand::SetPassword {
            username,
            password_stdin,
            generate,
        } => {
            let username = username.trim().to_string();
            let valid = !username.is_empty()
                && username.len() <= 64
                && username
                    .chars()
                    .all(|c| c.is_alphanumeric() || "._@-".contains(c));
            if !valid {
                return Err(CliError::Usage(
                    "--username takes 1 to 64 letters, digits, '.', '_', '@' or '-'".into(),
                ));
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
            let hash = password::hash(&secret).map_err(|e| CliError::Usage(e.to_string()))?;
            let now = now_unix();
            let (created, ended) = db
                .write(|tx| {
                    let created = store::set_local_admin(tx, &username, &hash, now)?;
                    let ended = store::end_sessions_of(tx, SessionKind::Local, &username, now)?;
                    Ok::<_, rusqlite::Error>((created, ended))
                })
                .map_err(runtime)?;
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
                println!("{secret}");
            }
        }
        AdminCommand::List => {
            let all = db.read(store::local_admins).map_err(runtime)?;
            if all.is_empty() {
                println!(
                    "no break-glass admins; create one with `seatgate admin set-password --username NAME --generate`"
                );
            }
            for a in all {
                println!(
                    "{}\tcreated {}\tpassword set {}\tlast sign-in {}",
                    a.username,
                    rfc3339(a.created_at),
                    rfc3339(a.updated_at),
                    a.last_login_at.map_or_else(|| "never".into(), rfc3339)
                );
            }
        }
        AdminCommand::Remove { username } => {
            let now = now_unix();
            let removed = db
                .write(|tx| {
                    let removed = store::delete_local_admin(tx, &username)?;
                    store::end_sessions_of(tx, SessionKind::Local, &username, now)?;
                    Ok::<_, rusqlite::Error>(removed)
                })
                .map_err(runtime)?;
            if !removed {
                return Err(CliError::Usage(format!(
                    "there is no break-glass admin {username:?}"
                )));
            }
            println!("removed break-glass admin {username} and ended its sessions");
        }
    }
    Ok(())
}

pub fn sign_in_log(db: &Db, limit: u32, failures: bool) -> Result<(), CliError> {
    let rows = db
        .read(|tx| store::recent_sign_ins(tx, failures, limit))
        .map_err(runtime)?;
    if rows.is_empty() {
        println!(
            "no sign-ins recorded{}",
            if failures { " that were refused" } else { "" }
        );
    }
    for r in rows {
        println!(
            "{} {} {} {}/{} {} {} {}",
            rfc3339(r.at),
            r.client,
            r.method,
            r.purpose,
            r.connection_id.as_deref().unwrap_or("-"),
            r.identity.as_deref().unwrap_or("-"),
            r.outcome,
            r.detail.as_deref().unwrap_or("")
        );
    }
    Ok(())
}
