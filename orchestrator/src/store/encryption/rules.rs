//! Which storage keys are encrypted, and with which providers: the
//! `resources` entries of an EncryptionConfiguration, matched against a key's
//! group and resource. The first entry that matches a key wins, as upstream.

use super::transformer::PrefixChain;
use crate::store::instrumented::resource_of_key;

/// One name of a `resources` list: `secrets` (core), `widgets.example.com`,
/// `*.` (every core resource), `*.apps` (every resource of a group) or `*.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourcePattern {
    /// One resource of one group (`""` for core).
    Exact {
        /// API group, empty for core.
        group: String,
        /// Plural resource name.
        resource: String,
    },
    /// Every resource of a group (`""` for core).
    Group(String),
    /// Every resource (`*.*`).
    Any,
}

impl ResourcePattern {
    /// Reads a name as upstream's `schema.ParseGroupResource` does: the part
    /// before the first `.` is the resource, the rest the group.
    pub fn parse(name: &str) -> Self {
        let (resource, group) = name.split_once('.').unwrap_or((name, ""));
        match (resource, group) {
            ("*", "*") => Self::Any,
            ("*", group) => Self::Group(group.to_owned()),
            (resource, group) => Self::Exact {
                group: group.to_owned(),
                resource: resource.to_owned(),
            },
        }
    }

    fn matches(&self, group: &str, resource: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Group(g) => g == group,
            Self::Exact {
                group: g,
                resource: r,
            } => g == group && r == resource,
        }
    }
}

/// The providers of every configured resource.
#[derive(Clone, Default, Debug)]
pub struct EncryptionRules {
    pub(super) rules: Vec<(Vec<ResourcePattern>, PrefixChain)>,
    /// Tests only: providers for every key, resource or not (the store
    /// conformance suite's keys name no resource).
    #[cfg(test)]
    every_key: Option<PrefixChain>,
}

impl EncryptionRules {
    /// Rules from `(resources, providers)` entries, in file order.
    pub fn new(rules: Vec<(Vec<ResourcePattern>, PrefixChain)>) -> Self {
        Self {
            rules,
            #[cfg(test)]
            every_key: None,
        }
    }

    /// Rules that encrypt every key with `chain` (tests only).
    #[cfg(test)]
    pub(crate) fn every_key(chain: PrefixChain) -> Self {
        Self {
            every_key: Some(chain),
            ..Self::default()
        }
    }

    /// The providers of the resource `key` stores an object of
    /// (`/registry/GROUP/PLURAL/…`, `core` for the core group); None for keys
    /// that are stored as they are.
    pub fn chain_for(&self, key: &str) -> Option<&PrefixChain> {
        #[cfg(test)]
        if let Some(chain) = &self.every_key {
            return Some(chain);
        }
        let (group, resource) = resource_of_key(key)?;
        let group = if group == "core" { "" } else { group };
        self.rules
            .iter()
            .find(|(patterns, _)| patterns.iter().any(|p| p.matches(group, resource)))
            .map(|(_, chain)| chain)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::encryption::transformer::{Identity, PrefixTransformer};

    fn chain(prefix: &str) -> PrefixChain {
        PrefixChain::new(vec![PrefixTransformer {
            prefix: prefix.as_bytes().to_vec(),
            transformer: Arc::new(Identity),
        }])
        .unwrap()
    }

    #[test]
    fn names_parse_like_upstream_group_resources() {
        use ResourcePattern::*;
        let exact = |g: &str, r: &str| Exact {
            group: g.into(),
            resource: r.into(),
        };
        assert_eq!(ResourcePattern::parse("secrets"), exact("", "secrets"));
        assert_eq!(
            ResourcePattern::parse("widgets.example.com"),
            exact("example.com", "widgets")
        );
        assert_eq!(ResourcePattern::parse("*."), Group(String::new()));
        assert_eq!(ResourcePattern::parse("*.apps"), Group("apps".into()));
        assert_eq!(ResourcePattern::parse("*.*"), Any);
    }

    #[test]
    fn the_first_matching_entry_picks_the_providers() {
        let rules = EncryptionRules::new(vec![
            (vec![ResourcePattern::parse("secrets")], chain("a")),
            (vec![ResourcePattern::parse("*.")], chain("b")),
            (vec![ResourcePattern::parse("*.*")], chain("c")),
        ]);
        let prefix = |key| rules.chain_for(key).map(|c| c.write_prefix().to_vec());
        assert_eq!(prefix("/registry/core/secrets/ns/x"), Some(b"a".to_vec()));
        assert_eq!(
            prefix("/registry/core/configmaps/ns/x"),
            Some(b"b".to_vec())
        );
        assert_eq!(
            prefix("/registry/apps/deployments/ns/x"),
            Some(b"c".to_vec())
        );
        assert_eq!(prefix("/registry/masterleases/127.0.0.1"), None);
        let secrets_only =
            EncryptionRules::new(vec![(vec![ResourcePattern::parse("secrets")], chain("a"))]);
        assert!(secrets_only
            .chain_for("/registry/core/configmaps/ns/x")
            .is_none());
        assert!(secrets_only
            .chain_for("/registry/secrets.example.com/secrets/ns/x")
            .is_none());
    }
}
