//! Where in an object the patcher is, kept as a chain of borrowed steps so that walking costs
//! nothing and the text (`spec.template.spec.containers[name=web].env`) is only built for errors.

use std::fmt;

use serde_json::Value;

/// One position in the object being patched.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Path<'a> {
    /// The top of the object.
    Root,
    /// Field `name` of the map at the parent position.
    Field(&'a Path<'a>, &'a str),
    /// The element whose merge key `key` has `value`, in the list at the parent position.
    Keyed(&'a Path<'a>, &'a str, &'a Value),
}

impl<'a> Path<'a> {
    /// The position of field `name` below this one.
    pub(crate) fn field(&'a self, name: &'a str) -> Path<'a> {
        Path::Field(self, name)
    }

    /// The position of the list element whose merge key `key` is `value`.
    pub(crate) fn keyed(&'a self, key: &'a str, value: &'a Value) -> Path<'a> {
        Path::Keyed(self, key, value)
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Field(parent, name) => {
                parent.write(f)?;
                if !matches!(parent, Path::Root) {
                    f.write_str(".")?;
                }
                f.write_str(name)
            }
            Path::Keyed(parent, key, value) => {
                parent.write(f)?;
                match value {
                    Value::String(text) => write!(f, "[{key}={text}]"),
                    other => write!(f, "[{key}={other}]"),
                }
            }
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if matches!(self, Path::Root) {
            f.write_str("the top level")
        } else {
            self.write(f)
        }
    }
}

/// The JSON type of a value, as named in error messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Path;

    #[test]
    fn path_reads_like_a_field_path() {
        let root = Path::Root;
        let spec = root.field("spec");
        let containers = spec.field("containers");
        let web = json!("web");
        let element = containers.keyed("name", &web);
        let port = json!(80);
        let ports = element.field("ports");
        let http = ports.keyed("containerPort", &port);
        assert_eq!(root.to_string(), "the top level");
        assert_eq!(
            http.to_string(),
            "spec.containers[name=web].ports[containerPort=80]"
        );
    }
}
