//! The `--encryption-provider-config` file: kube-apiserver's
//! `apiserver.config.k8s.io/v1` `EncryptionConfiguration`, in YAML or JSON,
//! read once at start-up, checked field by field (every mistake reported
//! with its path, secrets shown as `REDACTED`) and turned into
//! [`EncryptionRules`]. A file with any mistake is refused as a whole.

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use serde::Deserialize;

use super::aes_gcm::{AesGcm, KEY_SIZES};
use super::rules::{EncryptionRules, ResourcePattern};
use super::transformer::{Identity, PrefixChain, PrefixTransformer};

/// The only `apiVersion` accepted.
pub const API_VERSION: &str = "apiserver.config.k8s.io/v1";
/// The only `kind` accepted.
pub const KIND: &str = "EncryptionConfiguration";

/// Why the file was refused; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading the encryption provider config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The file is not YAML/JSON of the expected shape (unknown fields included).
    #[error("the encryption provider config {path} is not a valid {KIND}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message, with its field path and line.
        message: String,
    },
    /// The file parsed but some fields are wrong.
    #[error("the encryption provider config {path} is invalid: {}", join(.errors))]
    Invalid {
        /// The file.
        path: String,
        /// Every mistake found.
        errors: Vec<FieldError>,
    },
}

fn join(errors: &[FieldError]) -> String {
    let parts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    parts.join("; ")
}

/// One wrong field, worded as upstream's field errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    /// e.g. `resources[0].providers[0].aesgcm.keys[0].secret`.
    pub field: String,
    /// e.g. `Required value: name is a mandatory field for a key`.
    pub problem: String,
}

impl FieldError {
    fn required(field: String, detail: &str) -> Self {
        Self {
            field,
            problem: format!("Required value: {detail}"),
        }
    }

    fn invalid(field: String, value: &str, detail: &str) -> Self {
        Self {
            field,
            problem: format!("Invalid value: {value:?}: {detail}"),
        }
    }
}

/// The file, as written. No `Debug` here or below: keys must never be printed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EncryptionConfiguration {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    resources: Vec<ResourceConfiguration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceConfiguration {
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    providers: Vec<ProviderConfiguration>,
}

/// One provider; exactly one field may be set. Providers berth does not
/// implement are parsed so that they can be refused by name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderConfiguration {
    aesgcm: Option<KeysConfiguration>,
    aescbc: Option<serde_yaml::Value>,
    secretbox: Option<serde_yaml::Value>,
    kms: Option<serde_yaml::Value>,
    identity: Option<IdentityConfiguration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysConfiguration {
    #[serde(default)]
    keys: Vec<Key>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Key {
    #[serde(default)]
    name: String,
    #[serde(default)]
    secret: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityConfiguration {}

/// Reads and checks the file at `path`.
pub fn load(path: &Path) -> Result<EncryptionRules, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&text).map_err(|e| match e {
        Refusal::Parse(message) => ConfigError::Parse {
            path: shown,
            message,
        },
        Refusal::Invalid(errors) => ConfigError::Invalid {
            path: shown,
            errors,
        },
    })
}

/// Why [`parse`] refused a text.
#[derive(Debug)]
enum Refusal {
    Parse(String),
    Invalid(Vec<FieldError>),
}

/// Parses and checks a file's text (YAML; JSON is YAML too).
fn parse(text: &str) -> Result<EncryptionRules, Refusal> {
    let config: EncryptionConfiguration =
        serde_yaml::from_str(text).map_err(|e| Refusal::Parse(e.to_string()))?;
    let mut errors = Vec::new();
    if config.api_version != API_VERSION {
        errors.push(FieldError::invalid(
            "apiVersion".into(),
            &config.api_version,
            &format!("must be {API_VERSION}"),
        ));
    }
    if config.kind != KIND {
        errors.push(FieldError::invalid(
            "kind".into(),
            &config.kind,
            &format!("must be {KIND}"),
        ));
    }
    if config.resources.is_empty() {
        errors.push(FieldError::required(
            "resources".into(),
            "at least one resources is required",
        ));
    }
    let mut rules = Vec::new();
    for (i, entry) in config.resources.iter().enumerate() {
        let path = format!("resources[{i}]");
        let patterns = check_resource_names(&entry.resources, &path, &mut errors);
        let mut transformers = Vec::new();
        for (j, provider) in entry.providers.iter().enumerate() {
            let path = format!("{path}.providers[{j}]");
            transformers.extend(provider_transformers(provider, &path, &mut errors));
        }
        if entry.providers.is_empty() {
            errors.push(FieldError::required(
                format!("{path}.providers"),
                &format!("at least one {path}.providers is required"),
            ));
        }
        if let Some(chain) = PrefixChain::new(transformers) {
            rules.push((patterns, chain));
        }
    }
    if errors.is_empty() {
        Ok(EncryptionRules::new(rules))
    } else {
        Err(Refusal::Invalid(errors))
    }
}

fn check_resource_names(
    names: &[String],
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Vec<ResourcePattern> {
    let field = format!("{path}.resources");
    if names.is_empty() {
        errors.push(FieldError::required(
            field.clone(),
            &format!("at least one {field} is required"),
        ));
    }
    let mut patterns = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let at = format!("{field}[{k}]");
        let problem = if name.to_lowercase() != *name {
            Some("resource name should not contain capital letters")
        } else if name == "*" {
            Some("use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources")
        } else if names[..k].contains(name) {
            Some("the same resource cannot be specified multiple times")
        } else if name.is_empty() {
            Some("resource name must not be empty")
        } else {
            None
        };
        match problem {
            Some(detail) => errors.push(FieldError::invalid(at, name, detail)),
            None => patterns.push(ResourcePattern::parse(name)),
        }
    }
    patterns
}

/// The prefix transformers of one provider (one per `aesgcm` key).
fn provider_transformers(
    provider: &ProviderConfiguration,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Vec<PrefixTransformer> {
    let set = [
        provider.aesgcm.is_some(),
        provider.aescbc.is_some(),
        provider.secretbox.is_some(),
        provider.kms.is_some(),
        provider.identity.is_some(),
    ]
    .into_iter()
    .filter(|set| *set)
    .count();
    let unsupported =
        |name: &str, why: &str| FieldError::invalid(format!("{path}.{name}"), "...", why);
    if set != 1 {
        let detail = if set == 0 {
            "provider does not contain any of the expected providers: aesgcm, identity"
        } else {
            "more than one provider specified in a single element, should split into different list elements"
        };
        errors.push(FieldError::invalid(path.to_owned(), "...", detail));
        return Vec::new();
    }
    if let Some(keys) = &provider.aesgcm {
        return aes_gcm_transformers(&keys.keys, &format!("{path}.aesgcm.keys"), errors);
    }
    if provider.identity.is_some() {
        return vec![PrefixTransformer {
            prefix: Vec::new(),
            transformer: Arc::new(Identity),
        }];
    }
    errors.push(if provider.kms.is_some() {
        unsupported(
            "kms",
            "berth does not talk to KMS plugins over gRPC yet; use aesgcm",
        )
    } else if provider.secretbox.is_some() {
        unsupported(
            "secretbox",
            "berth does not implement secretbox; use aesgcm",
        )
    } else {
        unsupported(
            "aescbc",
            "berth does not implement aescbc (upstream advises against it); use aesgcm",
        )
    });
    Vec::new()
}

fn aes_gcm_transformers(
    keys: &[Key],
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Vec<PrefixTransformer> {
    if keys.is_empty() {
        errors.push(FieldError::required(
            path.to_owned(),
            "at least one keys is required",
        ));
    }
    let mut transformers = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let at = format!("{path}[{i}]");
        if key.name.is_empty() {
            errors.push(FieldError::required(
                format!("{at}.name"),
                "name is a mandatory field for a key",
            ));
        }
        if key.secret.is_empty() {
            errors.push(FieldError::required(
                format!("{at}.secret"),
                "secret is a mandatory field for a key",
            ));
            continue;
        }
        let Ok(secret) = base64::engine::general_purpose::STANDARD.decode(key.secret.trim()) else {
            errors.push(FieldError::invalid(
                format!("{at}.secret"),
                "REDACTED",
                "secrets must be base64 encoded",
            ));
            continue;
        };
        match AesGcm::new(&key.name, &secret) {
            Some(aes) if !key.name.is_empty() => transformers.push(PrefixTransformer {
                prefix: format!("k8s:enc:aesgcm:v1:{}:", key.name).into_bytes(),
                transformer: Arc::new(aes),
            }),
            Some(_) => {}
            None => errors.push(FieldError::invalid(
                format!("{at}.secret"),
                "REDACTED",
                &format!(
                    "secret is not of the expected length, got {}, expected one of {KEY_SIZES:?}",
                    secret.len()
                ),
            )),
        }
    }
    transformers
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aesgcm:
          keys:
            - name: key2
              secret: AAECAwQFBgcICQoLDA0ODw==
            - name: key1
              secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
      - identity: {}
"#;

    fn invalid(text: &str) -> Vec<String> {
        match parse(text) {
            Err(Refusal::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
            Err(Refusal::Parse(message)) => panic!("parse error instead: {message}"),
            Ok(_) => panic!("accepted:\n{text}"),
        }
    }

    #[test]
    fn a_good_file_encrypts_secrets_with_its_first_key() {
        let rules = parse(GOOD).unwrap();
        let chain = rules.chain_for("/registry/core/secrets/default/x").unwrap();
        assert_eq!(chain.write_prefix(), b"k8s:enc:aesgcm:v1:key2:");
        assert!(rules
            .chain_for("/registry/core/configmaps/default/x")
            .is_none());
    }

    #[test]
    fn the_example_file_is_refused_until_its_key_is_replaced() {
        let example = include_str!("../../../../examples/encryption-config.yaml");
        assert_eq!(
            invalid(example),
            ["resources[0].providers[0].aesgcm.keys[0].secret: Invalid value: \"REDACTED\": secrets must be base64 encoded"]
        );
        let filled = example.replace(
            "REPLACE-WITH-THE-OUTPUT-OF-head-c-32-dev-urandom-base64",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        );
        let rules = parse(&filled).unwrap();
        let chain = rules.chain_for("/registry/core/secrets/a/b").unwrap();
        assert_eq!(chain.write_prefix(), b"k8s:enc:aesgcm:v1:key1:");
    }

    #[test]
    fn json_files_are_read_too() {
        let json = r#"{"apiVersion":"apiserver.config.k8s.io/v1","kind":"EncryptionConfiguration",
            "resources":[{"resources":["secrets","configmaps"],"providers":[{"identity":{}}]}]}"#;
        let rules = parse(json).unwrap();
        assert!(rules.chain_for("/registry/core/configmaps/a/b").is_some());
    }

    #[test]
    fn wrong_keys_are_reported_with_their_paths_and_never_their_secrets() {
        let text = GOOD
            .replace("AAECAwQFBgcICQoLDA0ODw==", "AAECAwQFBg==")
            .replace("name: key1", "name: \"\"")
            .replace(
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                "not base64!",
            );
        let errors = invalid(&text);
        assert_eq!(
            errors,
            [
                "resources[0].providers[0].aesgcm.keys[0].secret: Invalid value: \"REDACTED\": secret is not of the expected length, got 7, expected one of [16, 24, 32]",
                "resources[0].providers[0].aesgcm.keys[1].name: Required value: name is a mandatory field for a key",
                "resources[0].providers[0].aesgcm.keys[1].secret: Invalid value: \"REDACTED\": secrets must be base64 encoded",
            ]
        );
        assert!(!errors.concat().contains("AAECAwQFBg"));
    }

    #[test]
    fn missing_and_doubled_parts_are_reported() {
        let errors = invalid(
            "apiVersion: v1\nkind: EncryptionConfiguration\nresources:\n- resources: []\n  providers: []\n- resources: [Secrets, '*', secrets, secrets]\n  providers:\n  - {identity: {}, aesgcm: {keys: []}}\n  - {}\n  - aesgcm: {}\n",
        );
        assert_eq!(
            errors,
            [
                "apiVersion: Invalid value: \"v1\": must be apiserver.config.k8s.io/v1",
                "resources[0].resources: Required value: at least one resources[0].resources is required",
                "resources[0].providers: Required value: at least one resources[0].providers is required",
                "resources[1].resources[0]: Invalid value: \"Secrets\": resource name should not contain capital letters",
                "resources[1].resources[1]: Invalid value: \"*\": use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources",
                "resources[1].resources[3]: Invalid value: \"secrets\": the same resource cannot be specified multiple times",
                "resources[1].providers[0]: Invalid value: \"...\": more than one provider specified in a single element, should split into different list elements",
                "resources[1].providers[1]: Invalid value: \"...\": provider does not contain any of the expected providers: aesgcm, identity",
                "resources[1].providers[2].aesgcm.keys: Required value: at least one keys is required",
            ]
        );
        assert_eq!(
            invalid("kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\n"),
            ["resources: Required value: at least one resources is required"]
        );
    }

    #[test]
    fn providers_berth_lacks_are_refused_by_name() {
        for (provider, says) in [
            (
                "kms: {name: vault, endpoint: 'unix:///kms.sock'}",
                "KMS plugins over gRPC",
            ),
            ("secretbox: {keys: []}", "does not implement secretbox"),
            ("aescbc: {keys: []}", "does not implement aescbc"),
        ] {
            let text = format!(
                "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - {provider}\n"
            );
            let errors = invalid(&text).concat();
            assert!(errors.contains(says), "{errors}");
        }
    }

    #[test]
    fn unknown_fields_and_bad_yaml_are_parse_errors_naming_the_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("enc.yaml");
        std::fs::write(&file, GOOD.replace("aesgcm:", "aesgmc:")).unwrap();
        let err = load(&file).unwrap_err().to_string();
        assert!(err.contains(&file.display().to_string()), "{err}");
        assert!(err.contains("unknown field `aesgmc`"), "{err}");
        assert!(err.contains("resources[0].providers[0]"), "{err}");
        let missing = load(&dir.path().join("absent.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("reading the encryption provider config ")
                && missing.contains("absent.yaml"),
            "{missing}"
        );
        std::fs::write(&file, GOOD.replace("AAECAwQFBgcICQoLDA0ODw==", "AAEC")).unwrap();
        let err = load(&file).unwrap_err().to_string();
        assert!(
            err.contains("is invalid: resources[0].providers[0].aesgcm.keys[0].secret"),
            "{err}"
        );
    }
}
