//! Read-only access to the parts of a pod (or a pod template) the Pod Security
//! checks look at, over `serde_json::Value`, plus the small text helpers every
//! check's message uses. Missing or mistyped fields read as unset; never panics.

use serde_json::Value;

/// A pod's metadata and spec, as a check sees them.
#[derive(Debug, Clone, Copy)]
pub struct PodView<'a> {
    /// `metadata` of the pod or template (annotations are read).
    pub metadata: &'a Value,
    /// `spec` of the pod or template.
    pub spec: &'a Value,
}

impl<'a> PodView<'a> {
    /// Every container in upstream's visiting order: init containers, then
    /// containers, then ephemeral containers.
    pub fn containers(&self) -> impl Iterator<Item = &'a Value> {
        let spec = self.spec;
        ["initContainers", "containers", "ephemeralContainers"]
            .into_iter()
            .flat_map(move |field| list(spec.get(field)))
    }

    /// A field of the pod-level `securityContext`, if set (not null).
    pub fn security(&self, pointer: &str) -> Option<&'a Value> {
        set(self.spec.get("securityContext")?.pointer(pointer))
    }

    /// An annotation of the pod, if present.
    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        self.metadata.get("annotations")?.get(key)?.as_str()
    }

    /// Every annotation of the pod with a string value.
    pub fn annotations(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.metadata
            .get("annotations")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
    }

    /// `spec.os.name` is `windows`: checks of Linux-only fields let it pass.
    pub fn is_windows(&self) -> bool {
        self.spec.pointer("/os/name").and_then(Value::as_str) == Some("windows")
    }

    /// `spec.hostUsers: false`: the pod runs in a user namespace.
    pub fn in_user_namespace(&self) -> bool {
        self.spec.get("hostUsers").and_then(Value::as_bool) == Some(false)
    }
}

/// The items of a JSON list, none when absent or not a list.
pub fn list(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    value.and_then(Value::as_array).into_iter().flatten()
}

/// `value` unless it is absent or null (Go's nil pointer).
pub fn set(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

/// A container's name.
pub fn name(container: &Value) -> String {
    text(container.get("name"))
}

/// A field of a container's `securityContext`, if set (not null).
pub fn security<'a>(container: &'a Value, pointer: &str) -> Option<&'a Value> {
    set(container.get("securityContext")?.pointer(pointer))
}

/// A string field's value, empty when absent or not a string.
pub fn text(value: Option<&Value>) -> String {
    value.and_then(Value::as_str).unwrap_or("").to_owned()
}

/// A boolean field is set to true.
pub fn is_true(value: Option<&Value>) -> bool {
    value.and_then(Value::as_bool) == Some(true)
}

/// Upstream's `joinQuote`: `"a", "b"`.
pub fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let inner: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("\"{}\"", inner.join("\", \""))
}

/// `singular` for one, `plural` otherwise.
pub fn pluralize<'s>(singular: &'s str, plural: &'s str, count: usize) -> &'s str {
    if count == 1 {
        singular
    } else {
        plural
    }
}

/// `container "a"` / `containers "a", "b"`, the subject of most messages.
pub fn containers_phrase<S: AsRef<str>>(names: &[S]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

/// The "setters" of a field: `pod` when the pod level set it, then the
/// containers that did, joined with ` and ` (upstream's `badSetters`).
pub fn setters(pod: bool, containers: &[String]) -> String {
    let mut parts = Vec::new();
    if pod {
        parts.push("pod".to_owned());
    }
    if !containers.is_empty() {
        parts.push(containers_phrase(containers));
    }
    parts.join(" and ")
}

/// `containers "a", "b" use hostPorts 80, 90`: who (`names`) uses which
/// things (`listed`, `count` of them), each noun in singular or plural.
pub fn uses_phrase(
    (one, many): (&str, &str),
    names: &[String],
    (thing, things): (&str, &str),
    count: usize,
    listed: &str,
) -> String {
    format!(
        "{} {} {} {} {listed}",
        pluralize(one, many, names.len()),
        join_quote(names),
        pluralize("uses", "use", names.len()),
        pluralize(thing, things, count),
    )
}

/// Runs one check on a pod made of `metadata` and `spec`; its violation as
/// messages show it. For the check families' tests.
#[cfg(test)]
pub fn run_check(
    check: fn(&PodView) -> Option<super::Violation>,
    metadata: Value,
    spec: Value,
) -> Option<String> {
    check(&PodView {
        metadata: &metadata,
        spec: &spec,
    })
    .map(|v| v.to_string())
}

/// Sorted, without duplicates (upstream's `sets.String.List()`).
pub fn sorted_set(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items.dedup();
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_are_visited_init_first_then_regular_then_ephemeral() {
        let spec = json!({
            "containers": [{"name": "c"}],
            "initContainers": [{"name": "i"}],
            "ephemeralContainers": [{"name": "e"}],
        });
        let meta = json!({});
        let pod = PodView {
            metadata: &meta,
            spec: &spec,
        };
        let names: Vec<String> = pod.containers().map(name).collect();
        assert_eq!(names, ["i", "c", "e"]);
    }

    #[test]
    fn messages_quote_and_pluralize_as_upstream() {
        assert_eq!(containers_phrase(&["a"]), "container \"a\"");
        assert_eq!(containers_phrase(&["a", "b"]), "containers \"a\", \"b\"");
        assert_eq!(setters(true, &["a".into()]), "pod and container \"a\"");
        assert_eq!(setters(true, &[]), "pod");
        assert_eq!(join_quote::<&str>(&[]), "");
    }
}
