//! [`Conflicts`]: the fields an apply would take from other managers without `force`, with the
//! message and `Status` causes kube-apiserver answers a 409 with, so `kubectl` prints what users
//! know. Nothing here decides whether a conflict happened.

use std::fmt;

use super::fieldset::FieldSet;
use super::managed::{ManagedFieldsEntry, Operation};
use super::path::Path;

/// One field an apply would take from another manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// How the other manager came to own the field.
    pub operation: Operation,
    /// The API version of the other manager's entry.
    pub api_version: String,
    /// The subresource the other manager wrote through, empty for the main resource.
    pub subresource: String,
    /// The field.
    pub path: Path,
}

impl Conflict {
    fn owner(&self) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: self.manager.clone(),
            operation: self.operation,
            api_version: self.api_version.clone(),
            time: None,
            subresource: self.subresource.clone(),
            fields: FieldSet::new(),
        }
    }

    /// The message of this conflict's `Status` cause: `conflict with "m" using apps/v1`.
    pub fn cause_message(&self) -> String {
        format!("conflict with {}", self.owner().describe())
    }

    /// The `field` of this conflict's `Status` cause: `.spec.replicas`.
    pub fn field(&self) -> String {
        self.path.to_string()
    }
}

/// Every field an apply would take from other managers: an apply fails with these (HTTP 409,
/// reason `Conflict`, one cause of type `FieldManagerConflict` per field) unless forced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Conflicts {
    /// Grouped by manager in upstream's order, fields in field-set order within a manager.
    conflicts: Vec<Conflict>,
}

impl Conflicts {
    /// The conflicts with each manager's entry over the fields given for it.
    pub(crate) fn from_owners<'a>(
        owners: impl IntoIterator<Item = (&'a ManagedFieldsEntry, FieldSet)>,
    ) -> Conflicts {
        let mut owners: Vec<(&ManagedFieldsEntry, FieldSet)> = owners.into_iter().collect();
        owners.sort_by_cached_key(|(owner, _)| owner.identifier());
        let conflicts = owners
            .into_iter()
            .flat_map(|(owner, fields)| {
                fields.paths().into_iter().map(move |path| Conflict {
                    manager: owner.manager.clone(),
                    operation: owner.operation,
                    api_version: owner.api_version.clone(),
                    subresource: owner.subresource.clone(),
                    path,
                })
            })
            .collect();
        Conflicts { conflicts }
    }

    /// The conflicts, one per field and manager.
    pub fn conflicts(&self) -> &[Conflict] {
        &self.conflicts
    }

    /// How many conflicts there are.
    pub fn len(&self) -> usize {
        self.conflicts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.conflicts.is_empty()
    }

    /// These conflicts without those on the fields in `allowed`.
    pub(crate) fn without(&self, allowed: &FieldSet) -> Conflicts {
        Conflicts {
            conflicts: self
                .conflicts
                .iter()
                .filter(|conflict| !allowed.contains(conflict.path.elements()))
                .cloned()
                .collect(),
        }
    }
}

/// Upstream's message: `Apply failed with 1 conflict: conflict with "m" using apps/v1:
/// .spec.replicas`, or for several, one `conflicts with …:` line per manager and one `- path`
/// line per field.
impl fmt::Display for Conflicts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [only] = self.conflicts.as_slice() {
            return write!(
                f,
                "Apply failed with 1 conflict: {}: {}",
                only.cause_message(),
                only.path
            );
        }
        write!(f, "Apply failed with {} conflicts: ", self.conflicts.len())?;
        let mut previous: Option<&Conflict> = None;
        for (index, conflict) in self.conflicts.iter().enumerate() {
            let same_owner =
                previous.is_some_and(|previous| previous.owner().same_manager(&conflict.owner()));
            if !same_owner {
                if index > 0 {
                    f.write_str("\n")?;
                }
                write!(f, "conflicts with {}:", conflict.owner().describe())?;
            }
            write!(f, "\n- {}", conflict.path)?;
            previous = Some(conflict);
        }
        Ok(())
    }
}
