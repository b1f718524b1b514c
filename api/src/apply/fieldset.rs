//! [`FieldSet`]: a set of paths into an object, as a trie, with the set algebra server-side
//! apply needs and the `FieldsV1` JSON encoding kube-apiserver stores in `managedFields`. It
//! knows nothing about schemas except through [`FieldSet::from_object`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

use super::path::{Path, PathElement};
use super::schema::ApplySchema;
use super::typed::{self, InvalidObject};

/// A set of paths, stored as a trie: at each level, the steps that end a path in the set
/// (members) and the steps that lead to deeper paths (children). A path can be both a member
/// and a prefix of others (a map a manager owns as a whole and some of whose fields it set).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    pub(super) members: BTreeSet<PathElement>,
    /// Never holds an empty set: operations drop children that end up empty.
    pub(super) children: BTreeMap<PathElement, FieldSet>,
}

/// Why a `FieldsV1` document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fieldsV1: {reason}")]
pub struct FieldsV1Error {
    /// What was wrong, naming the offending key.
    pub reason: String,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        FieldSet::default()
    }

    /// A set holding exactly these paths (not their parents).
    pub fn from_paths(paths: impl IntoIterator<Item = Path>) -> Self {
        let mut set = FieldSet::new();
        for path in paths {
            set.insert(path.elements());
        }
        set
    }

    /// The leaf fields `object` sets, as upstream's `ToFieldSet`: scalars, atomic lists and
    /// maps, items of map and set lists (`k:`/`v:`), keys of plain maps (labels), and empty or
    /// null values. Fails when the object does not fit the schema's list keys.
    pub fn from_object(
        object: &Value,
        schema: &dyn ApplySchema,
    ) -> Result<FieldSet, InvalidObject> {
        typed::field_set(object, schema)
    }

    /// Whether the set holds no path.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// How many paths the set holds.
    pub fn len(&self) -> usize {
        self.members.len() + self.children.values().map(FieldSet::len).sum::<usize>()
    }

    /// Adds one path (not its parents). The empty path is the whole object, which nobody owns,
    /// so it is ignored as upstream does.
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Whether `path` itself is in the set (a member, not merely a prefix of one).
    pub fn contains(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self
                .children
                .get(first)
                .is_some_and(|child| child.contains(rest)),
        }
    }

    /// The paths below `element`, relative to it.
    pub fn with_prefix(&self, element: &PathElement) -> Option<&FieldSet> {
        self.children.get(element)
    }

    /// Whether `element` itself is in the set at this level.
    pub(crate) fn has_member(&self, element: &PathElement) -> bool {
        self.members.contains(element)
    }

    /// The children of this level, for walks that descend along the set.
    pub(crate) fn children(&self) -> impl Iterator<Item = (&PathElement, &FieldSet)> {
        self.children.iter()
    }

    /// Paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (element, child) in &other.children {
            let merged = match out.children.get(element) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(element.clone(), merged);
        }
        out
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(element, child)| {
                let theirs = other.children.get(element)?;
                let both = child.intersection(theirs);
                (!both.is_empty()).then(|| (element.clone(), both))
            })
            .collect();
        FieldSet { members, children }
    }

    /// Paths in this set and not in `other`, compared path by path: removing `a` leaves `a.b`
    /// in place (upstream's `Difference`).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(element, child)| match other.children.get(element) {
                None => Some((element.clone(), child.clone())),
                Some(theirs) => {
                    let rest = child.difference(theirs);
                    (!rest.is_empty()).then(|| (element.clone(), rest))
                }
            })
            .collect();
        FieldSet { members, children }
    }

    /// Paths in this set that are neither in `other` nor below a path in `other`: removing `a`
    /// removes `a.b` too (upstream's `RecursiveDifference`, used for ignored fields).
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter(|(element, _)| !other.members.contains(element))
            .filter_map(|(element, child)| match other.children.get(element) {
                None => Some((element.clone(), child.clone())),
                Some(theirs) => {
                    let rest = child.recursive_difference(theirs);
                    (!rest.is_empty()).then(|| (element.clone(), rest))
                }
            })
            .collect();
        FieldSet { members, children }
    }

    /// Every path in the set, in upstream's iteration order: at each level the members, then
    /// the paths below each child.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::with_capacity(self.len());
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Path>) {
        for member in &self.members {
            let mut path = prefix.clone();
            path.push(member.clone());
            out.push(Path::from(path));
        }
        for (element, child) in &self.children {
            prefix.push(element.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// Reads the `fieldsV1` of a `managedFields` entry: a tree of JSON objects keyed by
    /// `f:`/`k:`/`v:`/`i:` steps, where `{}` marks a member and `"."` marks a prefix that is a
    /// member too. Keys of kinds this version does not know are skipped, as upstream does.
    pub fn from_fields_v1(fields: &Value) -> Result<FieldSet, FieldsV1Error> {
        let Value::Object(map) = fields else {
            return Err(FieldsV1Error {
                reason: format!("expected a JSON object, got {fields}"),
            });
        };
        Ok(read_level(map)?.0.unwrap_or_default())
    }

    /// The `fieldsV1` encoding of the set, keys in upstream's order so identical sets encode to
    /// identical bytes.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.write_level(false))
    }

    fn write_level(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if include_self {
            out.insert(".".to_owned(), Value::Object(Map::new()));
        }
        let mut members = self.members.iter().peekable();
        let mut children = self.children.iter().peekable();
        loop {
            let next_member = members.peek().copied();
            let next_child = children.peek().map(|(element, _)| *element);
            match (next_member, next_child) {
                (None, None) => break,
                (Some(member), child) if child.is_none_or(|child| member < child) => {
                    out.insert(member.to_fields_v1_key(), Value::Object(Map::new()));
                    members.next();
                }
                (member, Some(child)) => {
                    let both = member == Some(child);
                    if both {
                        members.next();
                    }
                    let (_, set) = children.next().expect("peeked");
                    out.insert(
                        child.to_fields_v1_key(),
                        Value::Object(set.write_level(both)),
                    );
                }
                (Some(_), None) => unreachable!("handled by the guard above"),
            }
        }
        out
    }
}

/// Reads one level of a `FieldsV1` tree: the set below it (if any path is) and whether the level
/// is itself a member (`"."`, or a leaf `{}`).
fn read_level(map: &Map<String, Value>) -> Result<(Option<FieldSet>, bool), FieldsV1Error> {
    let mut children: Option<FieldSet> = None;
    let mut is_member = false;
    for (key, value) in map {
        if key == "." {
            is_member = true;
            continue;
        }
        let element =
            PathElement::from_fields_v1_key(key).map_err(|reason| FieldsV1Error { reason })?;
        let Some(element) = element else {
            continue;
        };
        let Value::Object(inner) = value else {
            return Err(FieldsV1Error {
                reason: format!("{key:?}: expected a JSON object, got {value}"),
            });
        };
        let (grandchildren, child_is_member) = read_level(inner)?;
        let set = children.get_or_insert_with(FieldSet::new);
        if child_is_member {
            set.members.insert(element.clone());
        }
        if let Some(grandchildren) = grandchildren.filter(|set| !set.is_empty()) {
            let merged = match set.children.remove(&element) {
                Some(existing) => existing.union(&grandchildren),
                None => grandchildren,
            };
            set.children.insert(element, merged);
        }
    }
    if children.is_none() {
        is_member = true;
    }
    Ok((children, is_member))
}

impl fmt::Debug for FieldSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.paths().iter().map(ToString::to_string))
            .finish()
    }
}

impl FromIterator<Path> for FieldSet {
    fn from_iter<I: IntoIterator<Item = Path>>(paths: I) -> Self {
        FieldSet::from_paths(paths)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn set(paths: &[&[&str]]) -> FieldSet {
        paths
            .iter()
            .map(|path| Path::fields(path.iter().copied()))
            .collect()
    }

    #[test]
    fn fields_v1_round_trips() {
        let cases = [
            json!({}),
            json!({"f:metadata": {"f:labels": {"f:app": {}}}}),
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}}}}
            }),
            json!({
                "f:metadata": {
                    "f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                    "f:finalizers": {".": {}, "v:\"example.com/keep\"": {}}
                },
                "f:spec": {
                    "f:replicas": {},
                    "f:template": {"f:spec": {"f:containers": {
                        "k:{\"name\":\"web\"}": {
                            ".": {},
                            "f:image": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                        }
                    }}}
                }
            }),
        ];
        for fields in cases {
            let parsed = FieldSet::from_fields_v1(&fields).unwrap();
            assert_eq!(parsed.to_fields_v1(), fields);
            // Byte for byte, not only as equal maps: the order of keys is upstream's.
            assert_eq!(
                serde_json::to_string(&parsed.to_fields_v1()).unwrap(),
                serde_json::to_string(&fields).unwrap()
            );
        }
    }

    #[test]
    fn fields_v1_members_and_prefixes_are_read_as_upstream_reads_them() {
        let fields = json!({
            "f:a": {},
            "f:b": {".": {}, "f:c": {}},
            "f:d": {"f:e": {}},
            "f:u": {"z:unknown": {}}
        });
        let parsed = FieldSet::from_fields_v1(&fields).unwrap();
        assert_eq!(
            parsed,
            set(&[&["a"], &["b"], &["b", "c"], &["d", "e"], &["u"]])
        );
        assert!(!parsed.contains(Path::fields(["d"]).elements()));
        assert!(FieldSet::from_fields_v1(&json!({"f:a": 1})).is_err());
        assert!(FieldSet::from_fields_v1(&json!([])).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"x": {}})).is_err());
    }

    #[test]
    fn set_algebra_follows_upstream() {
        let a = set(&[
            &["spec", "replicas"],
            &["spec", "paused"],
            &["metadata", "labels", "app"],
        ]);
        let b = set(&[&["spec", "replicas"], &["spec"], &["status"]]);
        assert_eq!(
            a.union(&b),
            set(&[
                &["spec", "replicas"],
                &["spec", "paused"],
                &["metadata", "labels", "app"],
                &["spec"],
                &["status"]
            ])
        );
        assert_eq!(a.intersection(&b), set(&[&["spec", "replicas"]]));
        // Difference is path by path: removing `spec` leaves `spec.paused`.
        assert_eq!(
            a.difference(&b),
            set(&[&["spec", "paused"], &["metadata", "labels", "app"]])
        );
        // Recursive difference removes everything below `spec` too.
        assert_eq!(
            a.recursive_difference(&b),
            set(&[&["metadata", "labels", "app"]])
        );
        assert!(a.difference(&a).is_empty());
        assert_eq!(a.len(), 3);
        assert_eq!(
            a.paths()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [".metadata.labels.app", ".spec.paused", ".spec.replicas"]
        );
    }
}
