//! Changes `add-node` and `remove-node` make to `cluster.toml` itself, so the
//! file stays the source of truth: done with `toml_edit` on the user's text,
//! keeping comments, order and layout, and checked again before they are
//! written. Pure: text in, new text (or "nothing to change") out.

use toml_edit::{Array, DocumentMut, InlineTable, Item, Value};

use super::{parse_with, Cluster, ConfigError, MasterRule, Role};

/// Why the file cannot be changed as asked.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The file is not TOML `toml_edit` can read.
    #[error("{file}: {reason}")]
    Syntax {
        /// The file.
        file: String,
        /// What `toml_edit` said.
        reason: String,
    },
    /// No pool has that name.
    #[error("{file}: no pool {pool:?}; the pools are: {known}")]
    UnknownPool {
        /// The file.
        file: String,
        /// The name asked for.
        pool: String,
        /// The pools the file has.
        known: String,
    },
    /// The host is in the pool already, under another Node name.
    #[error("{file}: host {host} is already in pool {pool:?} as {name:?}, not {asked:?}")]
    OtherName {
        /// The file.
        file: String,
        /// The host.
        host: String,
        /// The pool.
        pool: String,
        /// Its name in the file.
        name: String,
        /// The name asked for.
        asked: String,
    },
    /// The file has a shape the edit does not know (`machines` not a list).
    #[error("{file}: {field} is not a list of machines")]
    Shape {
        /// The file.
        file: String,
        /// The field.
        field: String,
    },
    /// The changed file breaks a rule (a host or name used twice, …).
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

/// A machine to add to a pool: the keys written for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMachine {
    /// Address or DNS name.
    pub host: String,
    /// The Node name, when not the host's.
    pub name: Option<String>,
    /// Its data directory, when not the file's default.
    pub data_dir: Option<String>,
}

/// `text` with `machine` appended to the machines of pool `pool`, or
/// `None` when the pool lists that host already (nothing to change).
pub fn add_pool_machine(
    file: &str,
    text: &str,
    cluster: &Cluster,
    pool: &str,
    machine: &NewMachine,
) -> Result<Option<String>, EditError> {
    let Some(index) = cluster.pools.iter().position(|p| p.name == pool) else {
        let known: Vec<&str> = cluster.pools.iter().map(|p| p.name.as_str()).collect();
        return Err(EditError::UnknownPool {
            file: file.to_owned(),
            pool: pool.to_owned(),
            known: if known.is_empty() {
                "none (add a [[pools]] entry)".to_owned()
            } else {
                known.join(", ")
            },
        });
    };
    if let Some(found) = cluster.pools[index]
        .machines
        .iter()
        .find(|m| m.host == machine.host)
    {
        return match &machine.name {
            Some(asked) if *asked != found.name => Err(EditError::OtherName {
                file: file.to_owned(),
                host: machine.host.clone(),
                pool: pool.to_owned(),
                name: found.name.clone(),
                asked: asked.clone(),
            }),
            _ => Ok(None),
        };
    }
    let mut document = document(file, text)?;
    let field = format!("pools[{index}].machines");
    let shape = || EditError::Shape {
        file: file.to_owned(),
        field: field.clone(),
    };
    let table = document
        .get_mut("pools")
        .and_then(Item::as_array_of_tables_mut)
        .and_then(|pools| pools.get_mut(index))
        .ok_or_else(shape)?;
    let mut entry = InlineTable::new();
    entry.insert("host", machine.host.as_str().into());
    if let Some(name) = &machine.name {
        entry.insert("name", name.as_str().into());
    }
    if let Some(data_dir) = &machine.data_dir {
        entry.insert("data_dir", data_dir.as_str().into());
    }
    match table.get_mut("machines") {
        None => {
            let mut list = Array::new();
            list.push(entry);
            table.insert("machines", Item::Value(Value::Array(list)));
        }
        Some(Item::Value(Value::Array(list))) => push_like_the_others(list, entry),
        Some(Item::ArrayOfTables(list)) => list.push(entry.into_table()),
        Some(_) => return Err(shape()),
    }
    checked(file, document)
}

/// `text` without the machine whose Node name is `name`, or `None` when
/// the file has no such machine (nothing to change).
pub fn remove_machine(
    file: &str,
    text: &str,
    cluster: &Cluster,
    name: &str,
) -> Result<Option<String>, EditError> {
    let Some((field, index)) = place(cluster, name) else {
        return Ok(None);
    };
    let mut document = document(file, text)?;
    let shape = || EditError::Shape {
        file: file.to_owned(),
        field: format!("{field}[{index}]"),
    };
    let owner = match &field {
        Field::Masters => document
            .get_mut("masters")
            .and_then(Item::as_table_like_mut),
        Field::Pool(pool) => document
            .get_mut("pools")
            .and_then(Item::as_array_of_tables_mut)
            .and_then(|pools| pools.get_mut(*pool))
            .map(|t| t as &mut dyn toml_edit::TableLike),
    }
    .ok_or_else(shape)?;
    match owner.get_mut("machines") {
        Some(Item::Value(Value::Array(list))) if index < list.len() => {
            remove_keeping_layout(list, index)
        }
        Some(Item::ArrayOfTables(list)) if index < list.len() => {
            list.remove(index);
        }
        _ => return Err(shape()),
    }
    checked(file, document)
}

/// Where a machine sits in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    Masters,
    Pool(usize),
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Masters => f.write_str("masters.machines"),
            Self::Pool(index) => write!(f, "pools[{index}].machines"),
        }
    }
}

/// The list holding the machine named `name` and its index there (the
/// model keeps the file's order, so the indices are the file's).
fn place(cluster: &Cluster, name: &str) -> Option<(Field, usize)> {
    if let Some(index) = cluster.masters.iter().position(|m| m.name == name) {
        return Some((Field::Masters, index));
    }
    cluster.pools.iter().enumerate().find_map(|(pool, p)| {
        p.machines
            .iter()
            .position(|m| m.name == name)
            .map(|index| (Field::Pool(pool), index))
    })
}

/// The machine named `name` and its role, when the file has it.
pub fn find<'c>(cluster: &'c Cluster, name: &str) -> Option<(Role<'c>, &'c super::Machine)> {
    cluster.machines().find(|(_, machine)| machine.name == name)
}

fn document(file: &str, text: &str) -> Result<DocumentMut, EditError> {
    text.parse::<DocumentMut>().map_err(|e| EditError::Syntax {
        file: file.to_owned(),
        reason: e.to_string(),
    })
}

/// The edited text, when it still passes every rule.
fn checked(file: &str, document: DocumentMut) -> Result<Option<String>, EditError> {
    let text = document.to_string();
    parse_with(file, &text, MasterRule::Existing)?;
    Ok(Some(text))
}

/// Appends `entry` laid out as the others are: on a line of its own,
/// indented as the last, or after a space on a one-line list.
fn push_like_the_others(list: &mut Array, entry: InlineTable) {
    let prefix = list
        .iter()
        .last()
        .and_then(|last| last.decor().prefix())
        .and_then(|p| p.as_str())
        // Only the indentation: a comment before it belongs to the line above.
        .and_then(|p| p.rfind('\n').map(|at| p[at..].to_owned()));
    let mut value = Value::InlineTable(entry);
    match prefix {
        Some(prefix) => {
            value.decor_mut().set_prefix(prefix);
            list.push_formatted(value);
        }
        _ => list.push(value),
    }
}

/// Removes element `index`, handing its leading whitespace (and comments)
/// to the one that takes its place, so `[a, b]` becomes `[b]`, not `[ b]`.
fn remove_keeping_layout(list: &mut Array, index: usize) {
    let removed = list.remove(index);
    if let Some(next) = list.get_mut(index) {
        let prefix = removed.decor().prefix().cloned();
        match prefix {
            Some(prefix) => next.decor_mut().set_prefix(prefix),
            None => next.decor_mut().set_prefix(""),
        }
    }
}

#[cfg(test)]
mod tests;
