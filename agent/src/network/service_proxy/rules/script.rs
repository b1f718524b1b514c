//! [`Rules`] as nft scripts: a whole table loaded beside the live one and
//! swapped in, or the changes that turn one table into another in place.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Chains, Rules, CONTAINERS, MASQUERADE_MARK};

/// The nft scripts that put [`Rules`] into the kernel as a table beside the
/// live one: the new table is loaded unhooked (its elements in `batches`,
/// which may run at once, since nft spends most of a large load parsing),
/// then one transaction hooks it in and deletes the old table, so packets
/// meet the old rules or the new, never a half-loaded table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    /// Creates the new table with its chains and empty maps, unhooked.
    pub skeleton: String,
    /// Fill the maps and sets; independent of each other.
    pub batches: Vec<String>,
    /// Hooks the new table in and deletes the old one, atomically.
    pub swap: String,
}

impl Replacement {
    /// The whole replacement as one transaction: for tables small enough
    /// that a second process would cost more than it saves.
    pub fn single(&self) -> String {
        let mut out = self.skeleton.clone();
        for batch in &self.batches {
            out.push_str(batch);
        }
        out.push_str(&self.swap);
        out
    }
}

/// The base chains: the only ones hooked into the kernel's paths, so a
/// table without them, however full, changes no packet.
fn hooks() -> String {
    let mut hooks = String::new();
    let _ = writeln!(hooks, "  chain prerouting {{\n    type nat hook prerouting priority -100; policy accept;\n    jump services\n    jump nodeports\n  }}");
    let _ = writeln!(hooks, "  chain output {{\n    type nat hook output priority -100; policy accept;\n    jump services\n    jump nodeports\n  }}");
    let _ = writeln!(hooks, "  chain postrouting {{\n    type nat hook postrouting priority 100; policy accept;\n    meta mark & {MASQUERADE_MARK} == {MASQUERADE_MARK} masquerade\n    ip saddr . ip daddr @hairpin masquerade\n  }}");
    hooks
}

fn element(key: &str, value: &Option<String>) -> String {
    match value {
        Some(value) => format!("{key} : {value}"),
        None => key.to_owned(),
    }
}

/// `add element` statements for `items` of map or set `name` in `table`.
fn add_elements(out: &mut String, table: &str, name: &str, items: &[String]) {
    if !items.is_empty() {
        let _ = writeln!(
            out,
            "add element ip {table} {name} {{ {} }}",
            items.join(", ")
        );
    }
}

/// Appends the rules of `chains` to chains of those names in `table`
/// (declared before, so chains may refer to each other in any order).
fn chain_rules<'a>(
    out: &mut String,
    table: &str,
    chains: impl Iterator<Item = (&'a String, &'a String)>,
) {
    let mut block = String::new();
    for (name, rules) in chains {
        let _ = write!(block, "  chain {name} {{\n{rules}  }}\n");
    }
    if !block.is_empty() {
        let _ = write!(out, "table ip {table} {{\n{block}}}\n");
    }
}

/// Names in `new` not in `old`.
fn added<'a>(new: &'a Chains, old: &'a Chains) -> impl Iterator<Item = &'a String> {
    new.keys().filter(|name| !old.contains_key(*name))
}

impl Rules {
    /// How many map and set elements the table holds.
    pub fn element_count(&self) -> usize {
        self.elements.values().map(BTreeMap::len).sum()
    }

    /// The scripts that load these rules as table `table` (replacing any
    /// unhooked leftover of that name) and then swap it for `old`, with the
    /// elements split into `batches` parts of about equal size.
    pub fn replacement(&self, table: &str, old: Option<&str>, batches: usize) -> Replacement {
        let mut skeleton = String::new();
        let _ = writeln!(
            skeleton,
            "table ip {table} {{}}\ndelete table ip {table}\ntable ip {table} {{"
        );
        for (_, declaration) in CONTAINERS {
            let _ = writeln!(skeleton, "  {declaration}\n  }}");
        }
        for (name, declaration) in &self.sets {
            let _ = write!(skeleton, "  set {name} {{\n{declaration}  }}\n");
        }
        for name in self.chains.keys() {
            let _ = writeln!(skeleton, "  chain {name} {{}}");
        }
        let _ = writeln!(skeleton, "}}");
        chain_rules(&mut skeleton, table, self.chains.iter());

        let per_batch = self.element_count().div_ceil(batches.max(1)).max(1);
        let mut scripts = Vec::new();
        let mut script = String::new();
        let mut in_script = 0;
        for (name, _) in CONTAINERS {
            let mut items = Vec::new();
            for (key, value) in self.elements.get(name).into_iter().flatten() {
                items.push(element(key, value));
                in_script += 1;
                if in_script == per_batch {
                    add_elements(&mut script, table, name, &std::mem::take(&mut items));
                    scripts.push(std::mem::take(&mut script));
                    in_script = 0;
                }
            }
            add_elements(&mut script, table, name, &items);
        }
        if !script.is_empty() {
            scripts.push(script);
        }

        let mut swap = format!("table ip {table} {{\n{}}}\n", hooks());
        if let Some(old) = old {
            let _ = writeln!(swap, "table ip {old} {{}}\ndelete table ip {old}");
        }
        Replacement {
            skeleton,
            batches: scripts,
            swap,
        }
    }

    /// The nft script that replaces table `table` with these rules in one
    /// transaction. Declaring the table, deleting it and defining it again
    /// in one script makes the change atomic.
    pub fn script(&self, table: &str) -> String {
        self.replacement(table, None, 1).single()
    }

    /// The nft script (one transaction) that turns table `table`, holding
    /// `previous`, into these rules in place: new sets and chains first,
    /// changed chains flushed and refilled, then the elements, and last
    /// whatever nothing refers to any more. Empty when nothing changed.
    pub fn delta(&self, table: &str, previous: &Rules) -> String {
        let mut out = String::new();
        for name in added(&self.sets, &previous.sets) {
            let _ = write!(out, "add set ip {table} {name} {{\n{}}}\n", self.sets[name]);
        }
        for name in added(&self.chains, &previous.chains) {
            let _ = writeln!(out, "add chain ip {table} {name}");
        }
        let gone: Vec<&String> = added(&previous.chains, &self.chains).collect();
        let changed: Vec<(&String, &String)> = self
            .chains
            .iter()
            .filter(|(name, rules)| previous.chains.get(*name).is_some_and(|old| old != *rules))
            .collect();
        for name in gone
            .iter()
            .copied()
            .chain(changed.iter().map(|(name, _)| *name))
        {
            let _ = writeln!(out, "flush chain ip {table} {name}");
        }
        chain_rules(
            &mut out,
            table,
            changed.into_iter().chain(
                self.chains
                    .iter()
                    .filter(|(name, _)| !previous.chains.contains_key(*name)),
            ),
        );
        let empty = BTreeMap::new();
        for (name, _) in CONTAINERS {
            let old = previous.elements.get(name).unwrap_or(&empty);
            let new = self.elements.get(name).unwrap_or(&empty);
            let removed: Vec<&str> = old
                .iter()
                .filter(|(key, value)| new.get(*key) != Some(value))
                .map(|(key, _)| key.as_str())
                .collect();
            let added: Vec<String> = new
                .iter()
                .filter(|(key, value)| old.get(*key) != Some(value))
                .map(|(key, value)| element(key, value))
                .collect();
            if !removed.is_empty() {
                let _ = writeln!(
                    out,
                    "delete element ip {table} {name} {{ {} }}",
                    removed.join(", ")
                );
            }
            add_elements(&mut out, table, name, &added);
        }
        for name in gone {
            let _ = writeln!(out, "delete chain ip {table} {name}");
        }
        for name in added(&previous.sets, &self.sets) {
            let _ = writeln!(out, "delete set ip {table} {name}");
        }
        out
    }
}
