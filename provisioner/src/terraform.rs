//! `berth cluster create --from-terraform`: turns what `terraform output -json`
//! printed for `terraform/examples/cluster` into a `cluster.toml`. Pure: JSON
//! text in, TOML text out; the text is then checked as any `cluster.toml` is,
//! so a Terraform-made cluster obeys exactly the same rules as a written one.

mod outputs;
mod render;

pub use outputs::{AwsPool, Machine, SshPool, TerraformCluster};

/// A problem with the outputs file: which output, what was expected.
#[derive(Debug, thiserror::Error)]
pub enum TerraformError {
    /// Not the JSON `terraform output -json` prints.
    #[error("{file}: not the JSON object `terraform output -json` prints: {reason}")]
    Json {
        /// The outputs file as named.
        file: String,
        /// What the JSON reader said.
        reason: String,
    },
    /// A required output is absent.
    #[error("{file}: output {key:?} is missing; {hint}")]
    Missing {
        /// The outputs file as named.
        file: String,
        /// The output's name (or path inside one, like `masters[0].host`).
        key: String,
        /// What it should hold.
        hint: &'static str,
    },
    /// An output is there but holds the wrong kind of value.
    #[error("{file}: output {key:?}: expected {expected}, found {found}")]
    WrongType {
        /// The outputs file as named.
        file: String,
        /// The output's name (or path inside one, like `masters[0].host`).
        key: String,
        /// The shape wanted.
        expected: &'static str,
        /// The JSON kind found.
        found: &'static str,
    },
}

/// Reads `terraform output -json` text (`file` names it in errors) into the
/// cluster it describes.
pub fn parse(file: &str, text: &str) -> Result<TerraformCluster, TerraformError> {
    outputs::parse(file, text)
}

/// The `cluster.toml` text for `cluster`; `source` (the outputs file) is
/// named in its header comment.
pub fn cluster_toml(cluster: &TerraformCluster, source: &str) -> String {
    render::cluster_toml(cluster, source)
}

#[cfg(test)]
mod tests;
