//! PodTemplates: a stored pod template (upstream's `podtemplate` registry):
//! the pod spec's defaults and validation, generation tracking of the
//! template, and the `kubectl get podtemplates` columns.

use serde_json::{json, Value};

use super::replicationcontroller::map_selector_string;
use crate::field::FieldCause;
use crate::kinds::core::pod::spec::{default_template, validate_pod_spec};
use crate::kinds::KindRules;
use crate::table::print::containers_and_images;
use crate::table::{col, Column, NAME};

/// The rules of `core/v1` PodTemplate.
#[derive(Debug, Clone, Copy, Default)]
pub struct PodTemplate;

impl KindRules for PodTemplate {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        if let Some(map) = obj.as_object_mut() {
            default_template(map);
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        validate_pod_spec("template.spec", obj.pointer("/template/spec"))
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col(
                "Containers",
                "string",
                0,
                "Names of each container in the template.",
            ),
            col(
                "Images",
                "string",
                0,
                "Images referenced by each container in the template.",
            ),
            col(
                "Pod Labels",
                "string",
                0,
                "The labels for the pod template.",
            ),
        ]
    }

    fn cells(&self, obj: &Value, _now: jiff::Timestamp) -> Vec<Value> {
        let (containers, images) =
            containers_and_images(obj.pointer("/template/spec").unwrap_or(&Value::Null));
        vec![
            crate::table::name_cell(obj),
            json!(containers),
            json!(images),
            json!(map_selector_string(
                obj.pointer("/template/metadata/labels")
            )),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_defaulted_validated_and_printed() {
        let mut obj = json!({"metadata": {"name": "t"}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}});
        PodTemplate.default(&mut obj);
        assert_eq!(obj["template"]["spec"]["restartPolicy"], "Always");
        assert!(PodTemplate.validate(&obj).is_empty());
        let row = PodTemplate.cells(&obj, jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(
            row,
            [
                json!("t"),
                json!("web"),
                json!("nginx:1.27"),
                json!("app=web")
            ]
        );
        let empty = json!({"metadata": {"name": "t"}, "template": {"spec": {"containers": []}}});
        let causes = PodTemplate.validate(&empty);
        assert_eq!(causes[0].field, "template.spec.containers");
        assert_eq!(causes[0].message, "Required value");
    }
}
