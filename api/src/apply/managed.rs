//! [`ManagedFields`]: who owns which fields of an object, and its `metadata.managedFields`
//! encoding. Entries are identified as upstream identifies managers: by name, operation and
//! subresource, plus the API version for updates. Decoding, encoding, ordering and the cap on
//! update entries follow kube-apiserver; nothing here decides who owns what.

#[cfg(test)]
mod tests;

use jiff::Timestamp;
use serde_json::{json, Map, Value};

use super::fieldset::FieldSet;
use super::path::Path;

/// Update entries beyond this many are folded into `ancient-changes` entries (upstream's
/// `DefaultMaxUpdateManagers`), so an object written by many clients stays small.
pub const MAX_UPDATE_MANAGERS: usize = 10;

/// The manager name old update entries are folded into.
pub const ANCIENT_CHANGES_MANAGER: &str = "ancient-changes";

/// How a manager came to own its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// Server-side apply: the entry holds exactly the fields of the manager's last applied
    /// configuration.
    Apply,
    /// Create, update or non-apply patch: the entry holds the fields the manager changed.
    Update,
}

impl Operation {
    /// The upstream spelling, `Apply` or `Update`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedFieldsEntry {
    /// The field manager's name (`kubectl`, `kube-controller-manager`).
    pub manager: String,
    /// Whether the fields came from an apply or an update.
    pub operation: Operation,
    /// The API version the field paths are written in.
    pub api_version: String,
    /// When the manager last changed the object, to the second.
    pub time: Option<Timestamp>,
    /// The subresource written through (`status`, `scale`), empty for the main resource.
    pub subresource: String,
    /// The fields owned.
    pub fields: FieldSet,
}

impl ManagedFieldsEntry {
    /// Whether `other` is the same manager: same name, operation and subresource, and for
    /// updates the same API version (an applier keeps one entry across versions).
    pub fn same_manager(&self, other: &ManagedFieldsEntry) -> bool {
        self.is(
            &other.manager,
            other.operation,
            &other.api_version,
            &other.subresource,
        )
    }

    pub(crate) fn is(
        &self,
        manager: &str,
        operation: Operation,
        api_version: &str,
        subresource: &str,
    ) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource == subresource
            && (operation == Operation::Apply || self.api_version == api_version)
    }

    /// How upstream names this manager in conflict messages: `"kubectl"`, `"m" with
    /// subresource "status"`, `"m" using apps/v1` for update entries.
    pub(crate) fn describe(&self) -> String {
        let mut out = go_quote(&self.manager);
        if !self.subresource.is_empty() {
            out.push_str(" with subresource ");
            out.push_str(&go_quote(&self.subresource));
        }
        if self.operation == Operation::Update {
            out.push_str(" using ");
            out.push_str(&self.api_version);
        }
        out
    }

    /// Upstream's manager identifier, the JSON of the entry without time and fields (and
    /// without the API version for appliers); conflicts are grouped and sorted by it.
    pub(crate) fn identifier(&self) -> String {
        let mut id = Map::new();
        id.insert("manager".into(), Value::from(self.manager.as_str()));
        id.insert("operation".into(), Value::from(self.operation.as_str()));
        if self.operation == Operation::Update && !self.api_version.is_empty() {
            id.insert("apiVersion".into(), Value::from(self.api_version.as_str()));
        }
        if !self.subresource.is_empty() {
            id.insert("subresource".into(), Value::from(self.subresource.as_str()));
        }
        Value::Object(id).to_string()
    }

    fn to_value(&self) -> Value {
        let mut entry = Map::new();
        entry.insert("manager".into(), Value::from(self.manager.as_str()));
        entry.insert("operation".into(), Value::from(self.operation.as_str()));
        if !self.api_version.is_empty() {
            entry.insert("apiVersion".into(), Value::from(self.api_version.as_str()));
        }
        if let Some(time) = self.time {
            entry.insert("time".into(), Value::from(format_time(time)));
        }
        entry.insert("fieldsType".into(), Value::from("FieldsV1"));
        entry.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if !self.subresource.is_empty() {
            entry.insert("subresource".into(), Value::from(self.subresource.as_str()));
        }
        Value::Object(entry)
    }

    fn from_value(index: usize, value: &Value) -> Result<Self, ManagedFieldsError> {
        let invalid = |reason: String| ManagedFieldsError::InvalidEntry { index, reason };
        let Value::Object(entry) = value else {
            return Err(invalid(format!("expected an object, got {value}")));
        };
        let text = |name: &str| -> Result<String, ManagedFieldsError> {
            match entry.get(name) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(text)) => Ok(text.clone()),
                Some(other) => Err(invalid(format!("{name} must be a string, got {other}"))),
            }
        };
        let operation = match text("operation")?.as_str() {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            _ => return Err(invalid("operation must be `Apply` or `Update`".into())),
        };
        let api_version = text("apiVersion")?;
        if api_version.is_empty() {
            return Err(invalid("apiVersion must not be empty".into()));
        }
        match text("fieldsType")?.as_str() {
            "FieldsV1" => {}
            "" => {
                return Err(invalid(format!(
                    "missing fieldsType in managed fields entry {index}"
                )))
            }
            other => {
                return Err(invalid(format!(
                    "invalid fieldsType {other:?} in managed fields entry {index}"
                )))
            }
        }
        let time = match text("time")?.as_str() {
            "" => None,
            time => Some(
                time.parse::<Timestamp>()
                    .map_err(|error| invalid(format!("time {time:?}: {error}")))?,
            ),
        };
        let fields = match entry.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::new(),
            Some(fields) => {
                FieldSet::from_fields_v1(fields).map_err(|error| invalid(error.to_string()))?
            }
        };
        Ok(ManagedFieldsEntry {
            manager: text("manager")?,
            operation,
            api_version,
            time,
            subresource: text("subresource")?,
            fields,
        })
    }
}

/// Why `metadata.managedFields` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManagedFieldsError {
    /// The value is not a list.
    #[error("metadata.managedFields must be a list, got {found}")]
    NotAList {
        /// What was there instead.
        found: String,
    },
    /// One entry is malformed.
    #[error("invalid managedFields entry {index}: {reason}")]
    InvalidEntry {
        /// The entry's position in the list.
        index: usize,
        /// What is wrong with it, in upstream's words.
        reason: String,
    },
}

/// Who owns which fields of one object: the decoded `metadata.managedFields`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagedFields {
    entries: Vec<ManagedFieldsEntry>,
}

impl ManagedFields {
    /// Wraps entries; of two entries for the same manager the later wins, as upstream decodes.
    pub fn new(entries: impl IntoIterator<Item = ManagedFieldsEntry>) -> Self {
        let mut managed = ManagedFields::default();
        for entry in entries {
            managed.upsert(entry);
        }
        managed
    }

    /// Decodes a `metadata.managedFields` list; `null` is empty.
    pub fn from_value(value: &Value) -> Result<Self, ManagedFieldsError> {
        match value {
            Value::Null => Ok(ManagedFields::default()),
            Value::Array(entries) => Ok(ManagedFields::new(
                entries
                    .iter()
                    .enumerate()
                    .map(|(index, entry)| ManagedFieldsEntry::from_value(index, entry))
                    .collect::<Result<Vec<_>, _>>()?,
            )),
            other => Err(ManagedFieldsError::NotAList {
                found: other.to_string(),
            }),
        }
    }

    /// Decodes the `metadata.managedFields` of an object; an object without them has none.
    pub fn from_object(object: &Value) -> Result<Self, ManagedFieldsError> {
        object
            .pointer("/metadata/managedFields")
            .map_or(Ok(ManagedFields::default()), ManagedFields::from_value)
    }

    /// The managed fields an update (PUT or non-apply PATCH) starts from, as upstream picks
    /// them: a client may replace them by sending its own, or clear them by sending `[]` or
    /// `[{}]`; a request without them, or with ones that do not decode, keeps the live ones.
    /// Subresource writes must not let clients set them: use `from_object(live)` there.
    pub fn for_update(live: &Value, new: &Value) -> ManagedFields {
        let live_fields = || ManagedFields::from_object(live).unwrap_or_default();
        match new.pointer("/metadata/managedFields") {
            Some(Value::Array(entries)) if entries.is_empty() => ManagedFields::default(),
            Some(Value::Array(entries))
                if entries.len() == 1 && entries[0].as_object().is_some_and(Map::is_empty) =>
            {
                ManagedFields::default()
            }
            Some(requested @ Value::Array(_)) => match ManagedFields::from_value(requested) {
                Ok(requested) if !requested.is_empty() => requested,
                _ => live_fields(),
            },
            _ => live_fields(),
        }
    }

    /// The `metadata.managedFields` list, in upstream's order: appliers first, then by time,
    /// manager, API version and subresource.
    pub fn to_value(&self) -> Value {
        let mut entries: Vec<&ManagedFieldsEntry> = self.entries.iter().collect();
        entries.sort_by(|a, b| {
            let seconds = |entry: &ManagedFieldsEntry| entry.time.map_or(0, Timestamp::as_second);
            a.operation
                .cmp(&b.operation)
                .then_with(|| seconds(a).cmp(&seconds(b)))
                .then_with(|| a.manager.cmp(&b.manager))
                .then_with(|| a.api_version.cmp(&b.api_version))
                .then_with(|| a.subresource.cmp(&b.subresource))
        });
        Value::Array(
            entries
                .into_iter()
                .map(ManagedFieldsEntry::to_value)
                .collect(),
        )
    }

    /// Stores these managed fields in `object`'s metadata, or removes `managedFields` when there
    /// are none, as kube-apiserver does before it persists an object.
    pub fn write_into(&self, object: &mut Value) {
        let Some(object) = object.as_object_mut() else {
            return;
        };
        if self.is_empty() {
            if let Some(Value::Object(metadata)) = object.get_mut("metadata") {
                metadata.remove("managedFields");
            }
            return;
        }
        let metadata = object.entry("metadata").or_insert_with(|| json!({}));
        if !metadata.is_object() {
            *metadata = json!({});
        }
        metadata
            .as_object_mut()
            .expect("made an object above")
            .insert("managedFields".into(), self.to_value());
    }

    /// The entries, in no particular order.
    pub fn entries(&self) -> &[ManagedFieldsEntry] {
        &self.entries
    }

    /// Whether no manager owns anything.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry of `manager` for `operation` on the main resource (for updates, the first of
    /// its API versions).
    pub fn get(&self, manager: &str, operation: Operation) -> Option<&ManagedFieldsEntry> {
        self.entries.iter().find(|entry| {
            entry.manager == manager && entry.operation == operation && entry.subresource.is_empty()
        })
    }

    /// The managers owning `path`, for callers that explain ownership.
    pub fn owners(&self, path: &Path) -> Vec<&ManagedFieldsEntry> {
        self.entries
            .iter()
            .filter(|entry| entry.fields.contains(path.elements()))
            .collect()
    }

    pub(crate) fn entries_mut(&mut self) -> &mut Vec<ManagedFieldsEntry> {
        &mut self.entries
    }

    /// Adds an entry, replacing the same manager's.
    pub(crate) fn upsert(&mut self, entry: ManagedFieldsEntry) {
        match self.entries.iter_mut().find(|old| old.same_manager(&entry)) {
            Some(old) => *old = entry,
            None => self.entries.push(entry),
        }
    }

    pub(crate) fn find_mut(
        &mut self,
        manager: &str,
        operation: Operation,
        api_version: &str,
        subresource: &str,
    ) -> Option<&mut ManagedFieldsEntry> {
        self.entries
            .iter_mut()
            .find(|entry| entry.is(manager, operation, api_version, subresource))
    }

    /// Drops entries that own nothing.
    pub(crate) fn drop_empty(&mut self) {
        self.entries.retain(|entry| !entry.fields.is_empty());
    }

    /// Folds the oldest update entries into one `ancient-changes` entry per API version until
    /// at most `max` update entries remain (upstream's `capManagers`).
    pub(crate) fn cap_update_managers(&mut self, max: usize) {
        let mut updaters: Vec<usize> = (0..self.entries.len())
            .filter(|&index| self.entries[index].operation == Operation::Update)
            .collect();
        if updaters.len() <= max {
            return;
        }
        updaters.sort_by(|&a, &b| {
            let (a, b) = (&self.entries[a], &self.entries[b]);
            let seconds = |entry: &ManagedFieldsEntry| entry.time.map_or(0, Timestamp::as_second);
            seconds(a)
                .cmp(&seconds(b))
                .then_with(|| a.identifier().cmp(&b.identifier()))
        });
        let mut first_of_version: Vec<(String, usize)> = Vec::new();
        let mut remove = Vec::new();
        let mut count = updaters.len();
        for &index in &updaters {
            if count <= max {
                break;
            }
            let version = self.entries[index].api_version.clone();
            let bucket_index = self.entries.iter().position(|entry| {
                entry.is(ANCIENT_CHANGES_MANAGER, Operation::Update, &version, "")
            });
            match first_of_version.iter().find(|(seen, _)| *seen == version) {
                Some(&(_, first)) => {
                    // The first entry of this version becomes the bucket unless one exists.
                    let bucket = match bucket_index {
                        Some(bucket) => bucket,
                        None => {
                            let entry = &mut self.entries[first];
                            entry.manager = ANCIENT_CHANGES_MANAGER.to_owned();
                            entry.subresource.clear();
                            first
                        }
                    };
                    if bucket == index {
                        continue;
                    }
                    let merged = self.entries[bucket]
                        .fields
                        .union(&self.entries[index].fields);
                    self.entries[bucket].fields = merged;
                    // The bucket takes the time of the more recent update merged into it.
                    self.entries[bucket].time = self.entries[index].time;
                    remove.push(index);
                    count -= 1;
                }
                None => first_of_version.push((version, index)),
            }
        }
        remove.sort_unstable();
        for index in remove.into_iter().rev() {
            self.entries.remove(index);
        }
    }
}

/// A time as `metav1.Time` writes it: RFC 3339 in UTC, to the second.
pub(crate) fn format_time(time: Timestamp) -> String {
    Timestamp::from_second(time.as_second())
        .unwrap_or(time)
        .to_string()
}

/// Go's `%q` for the names in conflict messages.
fn go_quote(text: &str) -> String {
    // Manager names are printable; JSON quoting matches `%q` for them.
    Value::from(text).to_string()
}
