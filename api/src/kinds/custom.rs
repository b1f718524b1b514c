//! The rules of a custom resource, built at run time from one version of its
//! CustomResourceDefinition: the structural schema's defaulting, pruning and
//! validation (with CEL rules and ratcheting on update), the printer columns,
//! the `selectableFields`, and the paths of the scale subresource.

use serde_json::{json, Value};

use super::{field_value_at, KindRules, ScaleMapping};
use crate::crd::{printer_cells, CustomSchema};
use crate::field::FieldCause;
use crate::table::{self, Column};

/// What one served version of a CRD says about its objects.
#[derive(Debug, Clone)]
pub struct CustomRules {
    schema: CustomSchema,
    /// `additionalPrinterColumns` as the CRD writes them.
    printer_columns: Value,
    /// `selectableFields` as dotted paths (`spec.color`).
    selectable_fields: Vec<String>,
    /// The scale subresource's paths, when it has one.
    scale: Option<ScaleMapping>,
    /// This version's `apiVersion` (`stable.example.com/v1`).
    api_version: String,
    /// The storage version's `apiVersion`; objects are written in it.
    storage_api_version: String,
    /// The warning sent with every request on a deprecated version.
    deprecation: Option<String>,
}

/// A JSON path of a CRD (`.spec.replicas`) as a JSON pointer (`/spec/replicas`).
fn pointer_of(path: &str) -> String {
    path.replace('.', "/")
}

impl CustomRules {
    /// The rules of the CRD version `version` (an element of `spec.versions`,
    /// defaulted), or the causes that make its schema unusable.
    pub fn from_version(version: &Value, field_prefix: &str) -> Result<Self, Vec<FieldCause>> {
        Self::for_group(version, field_prefix, "", "")
    }

    /// The rules of version `version` of a CRD of `group`, whose objects are
    /// stored in version `storage_version` (`conversion: None` only renames).
    pub fn for_group(
        version: &Value,
        field_prefix: &str,
        group: &str,
        storage_version: &str,
    ) -> Result<Self, Vec<FieldCause>> {
        let name = version.get("name").and_then(Value::as_str).unwrap_or("");
        let deprecation = (version.get("deprecated") == Some(&Value::Bool(true))).then(|| {
            version
                .get("deprecationWarning")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{group}/{name} {{kind}} is deprecated"))
        });
        let schema_value = version
            .pointer("/schema/openAPIV3Schema")
            .cloned()
            .unwrap_or_else(
                || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
            );
        let schema = CustomSchema::new(
            &schema_value,
            &format!("{field_prefix}.schema.openAPIV3Schema"),
        )?;
        let selectable_fields = version
            .get("selectableFields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|f| f.get("jsonPath").and_then(Value::as_str))
            .map(|path| path.trim_start_matches('.').to_owned())
            .collect();
        let scale = version.pointer("/subresources/scale").map(|scale| {
            let path = |key: &str| scale.get(key).and_then(Value::as_str).map(pointer_of);
            ScaleMapping {
                spec_replicas: path("specReplicasPath").unwrap_or_else(|| "/spec/replicas".into()),
                status_replicas: path("statusReplicasPath")
                    .unwrap_or_else(|| "/status/replicas".into()),
                label_selector: path("labelSelectorPath"),
            }
        });
        Ok(Self {
            schema,
            printer_columns: version
                .get("additionalPrinterColumns")
                .cloned()
                .unwrap_or_else(|| json!([])),
            selectable_fields,
            scale,
            api_version: format!("{group}/{name}"),
            storage_api_version: format!("{group}/{storage_version}"),
            deprecation,
        })
    }

    fn printer_columns(&self) -> &[Value] {
        self.printer_columns
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// Column types and formats come from the CRD at run time, so the column
/// definition is leaked once per distinct text; a handful of short strings
/// per CRD version.
fn interned(text: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static TEXTS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut texts = TEXTS
        .get_or_init(Default::default)
        .lock()
        .expect("interned texts poisoned");
    if let Some(found) = texts.get(text) {
        return found;
    }
    let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
    texts.insert(leaked);
    leaked
}

impl KindRules for CustomRules {
    /// Custom objects count every change but metadata and status (upstream).
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        self.schema.default(obj);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        self.schema.validate(obj)
    }

    fn update_causes(&self, old: &Value, new: &Value) -> Vec<FieldCause> {
        self.schema.validate_update(new, old)
    }

    fn prune(&self, obj: &mut Value) -> Option<Vec<String>> {
        Some(self.schema.prune(obj))
    }

    /// Objects stored in another version of the CRD are served in this one;
    /// with `conversion: None` only `apiVersion` changes, as upstream.
    fn convert_from_storage(&self, obj: &mut Value) {
        if let Some(map) = obj.as_object_mut() {
            if map.get("apiVersion").and_then(Value::as_str) != Some(self.api_version.as_str()) {
                map.insert("apiVersion".into(), json!(self.api_version));
            }
        }
    }

    fn convert_to_storage(&self, obj: &Value) -> Option<Value> {
        if self.api_version == self.storage_api_version {
            return None;
        }
        let mut stored = obj.clone();
        stored["apiVersion"] = json!(self.storage_api_version);
        Some(stored)
    }

    fn deprecation_warning(&self, kind: &str) -> Option<String> {
        self.deprecation
            .as_ref()
            .map(|warning| warning.replace("{kind}", kind))
    }

    fn scale_mapping(&self) -> ScaleMapping {
        self.scale.clone().unwrap_or_default()
    }

    fn columns(&self) -> Vec<Column> {
        if self.printer_columns().is_empty() {
            return vec![table::NAME, table::AGE];
        }
        let mut columns = vec![table::NAME];
        for column in self.printer_columns() {
            let text = |key: &str| column.get(key).and_then(Value::as_str).unwrap_or("");
            let kind = match text("type") {
                "date" => "date",
                other => interned(other),
            };
            columns.push(Column {
                name: interned(text("name")),
                kind,
                priority: column.get("priority").and_then(Value::as_i64).unwrap_or(0) as i32,
                description: interned(text("description")),
            });
        }
        columns
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        if self.printer_columns().is_empty() {
            return vec![table::name_cell(obj), table::age_cell(obj, now)];
        }
        let mut row = vec![table::name_cell(obj)];
        for (column, cell) in self
            .printer_columns()
            .iter()
            .zip(printer_cells(&self.printer_columns, obj))
        {
            let is_date = column.get("type").and_then(Value::as_str) == Some("date");
            row.push(match (&cell, is_date) {
                (Value::String(at), true) => match at.parse::<jiff::Timestamp>() {
                    Ok(at) => json!(table::human_duration(now.as_second() - at.as_second())),
                    Err(_) => json!("<invalid>"),
                },
                (Value::Null, _) => json!("<none>"),
                _ => cell,
            });
        }
        row
    }

    fn selects_field(&self, field: &str) -> bool {
        self.selectable_fields.iter().any(|f| f == field)
    }

    fn field_value(&self, obj: &Value, field: &str) -> String {
        field_value_at(obj, field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crontab_version() -> Value {
        json!({
            "name": "v1", "served": true, "storage": true,
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "properties": {
                    "cronSpec": {"type": "string"},
                    "image": {"type": "string"},
                    "replicas": {"type": "integer", "default": 1, "minimum": 0}}},
                "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}}},
            "additionalPrinterColumns": [
                {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
                {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
            "selectableFields": [{"jsonPath": ".spec.image"}],
            "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas"}},
        })
    }

    #[test]
    fn printer_columns_become_table_columns_with_dates_as_ages() {
        let rules = CustomRules::from_version(&crontab_version(), "spec.versions[0]").unwrap();
        let names: Vec<&str> = rules.columns().iter().map(|c| c.name).collect();
        assert_eq!(names, ["Name", "Spec", "Replicas", "Age"]);
        let crontab = json!({"metadata": {"name": "my-new-cron-object",
            "creationTimestamp": "2026-01-01T11:55:00Z"},
            "spec": {"cronSpec": "* * * * */5", "replicas": 2}});
        let row = rules.cells(&crontab, "2026-01-01T12:00:00Z".parse().unwrap());
        assert_eq!(
            row,
            [
                json!("my-new-cron-object"),
                json!("* * * * */5"),
                json!(2),
                json!("5m")
            ]
        );
    }

    #[test]
    fn schema_defaults_prunes_and_validates() {
        let rules = CustomRules::from_version(&crontab_version(), "spec.versions[0]").unwrap();
        let mut obj = json!({"spec": {"cronSpec": "x", "unknown": 1}});
        assert_eq!(rules.prune(&mut obj), Some(vec!["spec.unknown".to_owned()]));
        rules.default(&mut obj);
        assert_eq!(obj["spec"]["replicas"], 1);
        let bad = json!({"spec": {"replicas": -1}});
        assert!(!rules.validate(&bad).is_empty());
        assert!(rules.selects_field("spec.image"));
        assert!(!rules.selects_field("spec.cronSpec"));
        assert_eq!(rules.scale_mapping().status_replicas, "/status/replicas");
    }
}
