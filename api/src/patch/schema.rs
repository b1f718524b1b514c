//! What the strategic merge patcher needs to know about a kind: for each position in an object,
//! how a patch merges there (upstream's `patchStrategy` / `patchMergeKey` struct tags). The
//! patcher is generic over this trait; it never looks at Go tags, OpenAPI or kinds itself.

use std::borrow::Cow;

/// How a patch merges into the value at one position of an object (upstream's
/// `x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchStrategy {
    /// How maps and lists at this position merge.
    pub merge: MergeStrategy,
    /// Upstream's `retainKeys` strategy: clients send `$retainKeys` for this map (or for the
    /// elements of this list) to clear the fields they do not list. The patcher honours a
    /// `$retainKeys` directive wherever it appears; this flag records the schema's intent.
    pub retain_keys: bool,
}

impl PatchStrategy {
    /// A list that merges element-wise by `key` (containers by `name`, ports by `containerPort`).
    pub fn merge_by(key: impl Into<Cow<'static, str>>) -> Self {
        PatchStrategy {
            merge: MergeStrategy::Merge {
                key: Some(key.into()),
            },
            retain_keys: false,
        }
    }

    /// A list of primitives that merges as a set (union, keeping order): `metadata.finalizers`.
    pub fn merge_set() -> Self {
        PatchStrategy {
            merge: MergeStrategy::Merge { key: None },
            retain_keys: false,
        }
    }

    /// A value the patch replaces whole, even when it is a map.
    pub fn replace() -> Self {
        PatchStrategy {
            merge: MergeStrategy::Replace,
            retain_keys: false,
        }
    }

    /// The same strategy, marked as `retainKeys` too (`patchStrategy:"merge,retainKeys"`).
    pub fn with_retain_keys(mut self) -> Self {
        self.retain_keys = true;
        self
    }

    /// The merge key of a list that merges by key, if this is one.
    pub fn merge_key(&self) -> Option<&str> {
        match &self.merge {
            MergeStrategy::Merge { key } => key.as_deref(),
            _ => None,
        }
    }
}

/// How maps and lists at one position take a patch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum MergeStrategy {
    /// No strategy declared: maps merge field by field, a list in the patch replaces the list.
    #[default]
    Default,
    /// `patchStrategy:"merge"` on a list: elements merge by `key`; `key: None` means a list of
    /// primitives merged as a set.
    Merge {
        /// The field that identifies an element (`patchMergeKey`).
        key: Option<Cow<'static, str>>,
    },
    /// `patchStrategy:"replace"`: the patch value replaces the whole value, even a map
    /// (e.g. `PodDisruptionBudgetSpec.selector`).
    Replace,
}

/// What the patcher needs to know about one position in an object: the strategy of the value
/// there and the schemas of what it contains. Implementations decide where this comes from
/// (a table over k8s-openapi's JSON schemas for built-in kinds, nothing for custom resources).
pub trait PatchSchema {
    /// Schema of field `name` of the map at this position; `None` when unknown, in which case
    /// the value is patched as plain JSON (maps merge, lists are replaced).
    fn field(&self, name: &str) -> Option<Box<dyn PatchSchema + '_>>;

    /// Schema of the elements of the list at this position; `None` when unknown.
    fn items(&self) -> Option<Box<dyn PatchSchema + '_>>;

    /// How a patch merges into the value at this position.
    fn strategy(&self) -> PatchStrategy;
}

/// A schema that knows nothing: every map merges as plain JSON and every list is replaced.
/// Custom resources (kube-apiserver refuses strategic merge patch for them with 415, which the
/// caller decides) and tests use it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoSchema;

impl PatchSchema for NoSchema {
    fn field(&self, _name: &str) -> Option<Box<dyn PatchSchema + '_>> {
        None
    }

    fn items(&self) -> Option<Box<dyn PatchSchema + '_>> {
        None
    }

    fn strategy(&self) -> PatchStrategy {
        PatchStrategy::default()
    }
}

/// A borrowed schema is a schema, so implementations can hand out their children by reference
/// (`Some(Box::new(&self.child))`).
impl<T: PatchSchema + ?Sized> PatchSchema for &T {
    fn field(&self, name: &str) -> Option<Box<dyn PatchSchema + '_>> {
        (**self).field(name)
    }

    fn items(&self) -> Option<Box<dyn PatchSchema + '_>> {
        (**self).items()
    }

    fn strategy(&self) -> PatchStrategy {
        (**self).strategy()
    }
}
