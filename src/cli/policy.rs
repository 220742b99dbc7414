//! `seatgate policy …`: client policies, their group assignments and the default policy,
//! through `licensing::policies` as the portal and the admin API.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::access::{ACTOR, manage_error};
use super::{CliError, runtime};
use crate::clock::now_unix;
use crate::config::Config;
use crate::db::Db;
use crate::db::policies as store;
use crate::licensing::policies::{self, PolicyInput};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Policies with their assignments (priority 1 is the highest) and the default
    List,
    /// One policy's settings (what it sets; the rest is inherited)
    Show {
        policy: String,
        /// The settings as JSON (the document `policy create --file` takes)
        #[arg(long)]
        json: bool,
    },
    /// Create a policy from settings (see `/api/v1/policy-schema`); prints its id
    Create {
        name: String,
        /// A JSON file of settings, e.g. {"lock_on_suspend": true, "usb": {"default": "deny"}}
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// One setting: NAME=VALUE, the value as JSON (true, 3600, "beta", {...}); repeatable
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Change a policy: --file replaces its settings, --set changes one, --unset removes
    /// one (then inherited)
    Set {
        policy: String,
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        #[arg(long, value_name = "NAME")]
        unset: Vec<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a policy no group or license key uses
    Delete { policy: String },
    /// Assign a policy to an IdP group with a priority (1 is the highest; unique)
    Assign {
        policy: String,
        #[arg(long)]
        group: String,
        #[arg(long)]
        priority: i64,
        /// The IdP connection whose group this is (`seatgate idp list`)
        #[arg(long)]
        connection: Option<String>,
    },
    /// Give an assignment another priority
    Priority { assignment: String, priority: i64 },
    /// Remove an assignment (its group's devices get the next policy at their next fetch)
    Unassign { assignment: String },
    /// Make a policy the default for everyone no group policy covers; --none clears it
    #[command(group(clap::ArgGroup::new("which").args(["policy", "none"]).required(true)))]
    Default {
        policy: Option<String>,
        #[arg(long)]
        none: bool,
    },
    /// The policy a license key's devices get (--none: the default policy)
    #[command(group(clap::ArgGroup::new("which").args(["policy", "none"]).required(true)))]
    Key {
        key: String,
        policy: Option<String>,
        #[arg(long)]
        none: bool,
    },
}

fn read_settings(file: Option<&PathBuf>) -> Result<Option<Value>, CliError> {
    let Some(path) = file else { return Ok(None) };
    let bytes = crate::deploy::profile::read_bounded(path, 1024 * 1024)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| CliError::Usage(format!("{} is not JSON: {e}", path.display())))
}

/// Applies `--set NAME=VALUE` and `--unset NAME` to a settings object.
fn edit(
    mut settings: Map<String, Value>,
    set: &[String],
    unset: &[String],
) -> Result<Value, CliError> {
    for s in set {
        let (name, value) = s
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("--set {s:?}: write NAME=VALUE")))?;
        // A bare word is a string: --set update_branch=beta.
        let value = serde_json::from_str(value).unwrap_or_else(|_| json!(value));
        settings.insert(name.trim().to_string(), value);
    }
    for name in unset {
        settings.remove(name.trim());
    }
    Ok(Value::Object(settings))
}

pub fn run(db: &Db, config: &Config, cmd: PolicyCommand) -> Result<(), CliError> {
    let bounds = policies::bounds(&config.lease);
    let now = now_unix();
    match cmd {
        PolicyCommand::List => list(db)?,
        PolicyCommand::Show { policy, json } => show(db, &policy, json)?,
        PolicyCommand::Create {
            name,
            file,
            set,
            description,
        } => create(
            db,
            bounds,
            &name,
            file.as_ref(),
            &set,
            description.as_deref(),
        )?,
        PolicyCommand::Set {
            policy,
            file,
            set,
            unset,
            name,
            description,
        } => change(
            db,
            bounds,
            &policy,
            Edit {
                file: file.as_ref(),
                set: &set,
                unset: &unset,
                name: name.as_deref(),
                description: description.as_deref(),
            },
        )?,
        PolicyCommand::Delete { policy } => {
            let p = policies::delete(db, ACTOR, &policy, now).map_err(manage_error)?;
            outln!("deleted policy {} ({})", p.name, p.id);
        }
        PolicyCommand::Assign {
            policy,
            group,
            priority,
            connection,
        } => {
            let a = policies::assign(
                db,
                ACTOR,
                &policy,
                &group,
                connection.as_deref(),
                priority,
                now,
            )
            .map_err(manage_error)?;
            outln!(
                "assigned policy {} to group {} with priority {} ({})",
                a.policy_name,
                a.group_ref,
                a.priority,
                a.id
            );
        }
        PolicyCommand::Priority {
            assignment,
            priority,
        } => {
            let a = policies::reprioritize(db, ACTOR, &assignment, priority, now)
                .map_err(manage_error)?;
            outln!("group {} now has priority {}", a.group_ref, a.priority);
        }
        PolicyCommand::Unassign { assignment } => {
            let a = policies::unassign(db, ACTOR, &assignment, now).map_err(manage_error)?;
            outln!(
                "removed policy {} from group {}",
                a.policy_name,
                a.group_ref
            );
        }
        PolicyCommand::Default { policy, .. } => {
            match policies::set_default(db, ACTOR, policy.as_deref(), now).map_err(manage_error)? {
                Some(p) => outln!("the default policy is now {} ({})", p.name, p.id),
                None => outln!("there is no default policy now"),
            }
        }
        PolicyCommand::Key { key, policy, .. } => {
            policies::set_key_policy(db, ACTOR, &key, policy.as_deref(), now)
                .map_err(manage_error)?;
            outln!(
                "license key {key}'s devices now get {}",
                policy.map_or("the default policy".to_string(), |p| format!("policy {p}"))
            );
        }
    }
    Ok(())
}

fn create(
    db: &Db,
    bounds: crate::domain::policy::LeaseBounds,
    name: &str,
    file: Option<&PathBuf>,
    set: &[String],
    description: Option<&str>,
) -> Result<(), CliError> {
    let base = read_settings(file)?
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let settings = edit(base, set, &[])?;
    let p = policies::create(
        db,
        ACTOR,
        bounds,
        &PolicyInput {
            name: Some(name),
            description,
            settings: Some(&settings),
        },
        now_unix(),
    )
    .map_err(manage_error)?;
    outln!("created policy {} ({})", p.name, p.id);
    Ok(())
}

/// What `policy set` changes.
struct Edit<'a> {
    file: Option<&'a PathBuf>,
    set: &'a [String],
    unset: &'a [String],
    name: Option<&'a str>,
    description: Option<&'a str>,
}

fn change(
    db: &Db,
    bounds: crate::domain::policy::LeaseBounds,
    policy: &str,
    e: Edit<'_>,
) -> Result<(), CliError> {
    let current = db
        .read(|tx| policies::find(tx, policy))
        .map_err(manage_error)?;
    let settings = match read_settings(e.file)? {
        Some(v) => Some(v),
        None if e.set.is_empty() && e.unset.is_empty() => None,
        None => {
            let base: Map<String, Value> =
                serde_json::from_str(&current.settings).unwrap_or_default();
            Some(edit(base, e.set, e.unset)?)
        }
    };
    let p = policies::change(
        db,
        ACTOR,
        bounds,
        &current.id,
        &PolicyInput {
            name: e.name,
            description: e.description,
            settings: settings.as_ref(),
        },
        now_unix(),
    )
    .map_err(manage_error)?;
    outln!("changed policy {} ({})", p.name, p.id);
    Ok(())
}

fn list(db: &Db) -> Result<(), CliError> {
    let (all, assignments) = db
        .read(|tx| Ok::<_, rusqlite::Error>((store::list(tx)?, store::assignments(tx)?)))
        .map_err(runtime)?;
    if all.is_empty() {
        outln!("no policies (create one with `seatgate policy create NAME --set …`)");
    }
    for p in &all {
        let set: Map<String, Value> = serde_json::from_str(&p.settings).unwrap_or_default();
        outln!(
            "{}  {}{}  sets {} setting(s)",
            p.id,
            p.name,
            if p.is_default { "  [default]" } else { "" },
            set.len()
        );
        for a in assignments.iter().filter(|a| a.policy_id == p.id) {
            outln!(
                "    priority {:>3}  group {} of {}  ({})",
                a.priority,
                a.group_ref,
                crate::domain::connection::scope_label(a.connection_id.as_deref()),
                a.id
            );
        }
    }
    Ok(())
}

fn show(db: &Db, policy: &str, as_json: bool) -> Result<(), CliError> {
    let p = db
        .read(|tx| policies::find(tx, policy))
        .map_err(manage_error)?;
    let set: Value = serde_json::from_str(&p.settings).unwrap_or_else(|_| json!({}));
    if as_json {
        outln!("{}", serde_json::to_string_pretty(&set).unwrap_or_default());
        return Ok(());
    }
    outln!(
        "{} ({}){}",
        p.name,
        p.id,
        if p.is_default {
            ", the default policy"
        } else {
            ""
        }
    );
    if !p.description.is_empty() {
        outln!("{}", p.description);
    }
    for (name, label) in crate::domain::policy::SETTINGS {
        let value = set.get(*name).map_or("inherited".to_string(), |v| {
            crate::domain::policy::describe_value(name, v)
        });
        outln!("  {label}: {value}");
    }
    Ok(())
}
