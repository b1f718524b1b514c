//! Upstream's `PodSecurityConfiguration` (apiVersion
//! `pod-security.admission.config.k8s.io/v1`): the policy of namespaces
//! without labels, and the namespaces and RuntimeClasses Pod Security leaves
//! alone. Read from a decoded document; the caller reads the file.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{policy_from_labels, Policy, LABEL_PREFIX};

/// The server-wide Pod Security settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Configuration {
    /// The policy a namespace gets for the labels it does not set.
    pub defaults: Policy,
    /// Namespaces whose pods and workloads are never evaluated.
    pub exempt_namespaces: Vec<String>,
    /// Pods with one of these `runtimeClassName`s are never evaluated.
    pub exempt_runtime_classes: Vec<String>,
}

/// Why a configuration document was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// Not a `PodSecurityConfiguration` of a version berth reads.
    #[error("expected kind PodSecurityConfiguration of apiVersion pod-security.admission.config.k8s.io/v1, got {0}")]
    Kind(String),
    /// A default level or version that does not parse.
    #[error("defaults.{field}: {message}")]
    Default {
        /// The field under `defaults`.
        field: String,
        /// Upstream's wording of the problem.
        message: String,
    },
    /// Exemptions berth cannot apply yet.
    #[error("exemptions.usernames is not supported by berth yet; exempt namespaces or runtimeClasses instead")]
    Usernames,
}

/// The mode fields of `defaults`, each the suffix of its namespace label.
const MODES: [&str; 6] = [
    "enforce",
    "enforce-version",
    "audit",
    "audit-version",
    "warn",
    "warn-version",
];

impl Configuration {
    /// Reads a decoded `PodSecurityConfiguration`; unset defaults are
    /// `privileged` at `latest`, as upstream's.
    pub fn from_document(doc: &Value) -> Result<Configuration, ConfigError> {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
        let (api_version, kind) = (text(doc.get("apiVersion")), text(doc.get("kind")));
        if api_version != "pod-security.admission.config.k8s.io/v1"
            || kind != "PodSecurityConfiguration"
        {
            return Err(ConfigError::Kind(format!("{api_version} {kind}")));
        }
        let labels: BTreeMap<String, String> = MODES
            .iter()
            .map(|mode| {
                let given = text(doc.pointer(&format!("/defaults/{mode}")));
                let value = match (given.is_empty(), mode.ends_with("-version")) {
                    (false, _) => given,
                    (true, true) => "latest".to_owned(),
                    (true, false) => "privileged".to_owned(),
                };
                (format!("{LABEL_PREFIX}{mode}"), value)
            })
            .collect();
        let (defaults, causes) = policy_from_labels(&labels, Policy::default());
        if let Some(cause) = causes.first() {
            let field = cause
                .field
                .trim_start_matches("metadata.labels[")
                .trim_start_matches(LABEL_PREFIX)
                .trim_end_matches(']')
                .to_owned();
            return Err(ConfigError::Default {
                field,
                message: cause.message.clone(),
            });
        }
        let names = |field: &str| -> Vec<String> {
            super::pod::list(doc.pointer(&format!("/exemptions/{field}")))
                .map(|v| text(Some(v)))
                .collect()
        };
        if !names("usernames").is_empty() {
            return Err(ConfigError::Usernames);
        }
        Ok(Configuration {
            defaults,
            exempt_namespaces: names("namespaces"),
            exempt_runtime_classes: names("runtimeClasses"),
        })
    }

    /// Pods and workloads of `namespace` are not evaluated.
    pub fn exempt_namespace(&self, namespace: &str) -> bool {
        self.exempt_namespaces.iter().any(|n| n == namespace)
    }

    /// A pod (or template) spec with an exempt `runtimeClassName`.
    pub fn exempt_runtime_class(&self, spec: &Value) -> bool {
        let class = spec.get("runtimeClassName").and_then(Value::as_str);
        class.is_some_and(|c| !c.is_empty() && self.exempt_runtime_classes.iter().any(|e| e == c))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{Level, LevelVersion, Version};
    use super::*;

    #[test]
    fn defaults_and_exemptions_are_read_with_upstream_fallbacks() {
        let doc = json!({
            "apiVersion": "pod-security.admission.config.k8s.io/v1",
            "kind": "PodSecurityConfiguration",
            "defaults": {"enforce": "baseline", "enforce-version": "v1.30"},
            "exemptions": {"namespaces": ["kube-system"], "runtimeClasses": ["kata"]},
        });
        let config = Configuration::from_document(&doc).unwrap();
        assert_eq!(
            config.defaults.enforce,
            LevelVersion {
                level: Level::Baseline,
                version: Version::Minor(30)
            }
        );
        assert_eq!(config.defaults.warn, LevelVersion::PRIVILEGED);
        assert!(config.exempt_namespace("kube-system"));
        assert!(config.exempt_runtime_class(&json!({"runtimeClassName": "kata"})));
        assert!(!config.exempt_runtime_class(&json!({})));
    }

    #[test]
    fn bad_documents_say_what_is_wrong() {
        let mut doc = json!({"apiVersion": "pod-security.admission.config.k8s.io/v1",
            "kind": "PodSecurityConfiguration", "defaults": {"audit": "strict"}});
        assert_eq!(
            Configuration::from_document(&doc).unwrap_err().to_string(),
            "defaults.audit: Invalid value: \"strict\": must be one of privileged, baseline, restricted"
        );
        doc["defaults"] = json!({});
        doc["exemptions"] = json!({"usernames": ["admin"]});
        assert_eq!(
            Configuration::from_document(&doc),
            Err(ConfigError::Usernames)
        );
        assert!(matches!(
            Configuration::from_document(&json!({"kind": "AdmissionConfiguration"})),
            Err(ConfigError::Kind(_))
        ));
    }
}
