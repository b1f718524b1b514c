//! `cluster.toml`: the one file a team writes to describe a cluster. Parsing is
//! pure (text in, checked [`Cluster`] or one pointed error out); reading the
//! file is the only I/O, in [`load`].

mod aws;
mod aws_pool;
pub mod edit;
mod error;
mod model;
mod node_labels;
mod pool;
mod raw;
mod ssh;
mod summary;
mod taint;
mod validate;

use std::path::Path;

pub use error::{ConfigError, Location};
pub use model::*;
pub use node_labels::check_node_label;
pub use ssh::parse_jump_host;
pub use summary::summary;
pub use taint::{parse_taint, EFFECTS};
pub use validate::MasterRule;

/// Parses and checks the text of a `cluster.toml`; `file` is the name errors
/// start with.
pub fn parse(file: &str, text: &str) -> Result<Cluster, ConfigError> {
    parse_with(file, text, MasterRule::New)
}

/// [`parse`] with the master counts `rule` allows.
pub fn parse_with(file: &str, text: &str, rule: MasterRule) -> Result<Cluster, ConfigError> {
    let raw: raw::RawCluster = toml::from_str(text).map_err(|e| error::syntax(file, text, &e))?;
    validate::cluster(&validate::Checker::new(file, text), raw, rule)
}

/// Reads and checks a `cluster.toml`; errors name the path as given.
pub fn load(path: &Path) -> Result<Cluster, ConfigError> {
    load_with(path, MasterRule::New)
}

/// [`load`] with the master counts `rule` allows.
pub fn load_with(path: &Path, rule: MasterRule) -> Result<Cluster, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: file.clone(),
        source,
    })?;
    parse_with(&file, &text, rule)
}

#[cfg(test)]
mod tests;
