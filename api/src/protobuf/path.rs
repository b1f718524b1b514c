//! Where in an object the codec is, so an error can name the field (`spec.containers[0].name`).
//! A borrowed linked list on the stack: nothing is allocated until an error is rendered.

use std::fmt::Write;

/// One step from the parent.
#[derive(Clone, Copy)]
pub(crate) enum Segment<'a> {
    /// The message at the top, by its short name (`Deployment`).
    Root(&'static str),
    /// A named field.
    Field(&'static str),
    /// An embedded (`json:",inline"`) message: invisible in JSON, so in the path too.
    Inline,
    /// A field the table does not name, by number.
    Number(u32),
    /// A list element.
    Index(usize),
    /// A map entry.
    Key(&'a str),
}

/// A position in the object being converted.
pub(crate) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    segment: Segment<'a>,
}

impl<'a> Path<'a> {
    pub(crate) fn root(message_name: &'static str) -> Path<'static> {
        let short = message_name.rsplit('.').next().unwrap_or(message_name);
        Path {
            parent: None,
            segment: Segment::Root(short),
        }
    }

    pub(crate) fn child<'b>(&'b self, segment: Segment<'b>) -> Path<'b> {
        Path {
            parent: Some(self),
            segment,
        }
    }

    pub(crate) fn render(&self) -> String {
        let mut segments = Vec::new();
        let mut current = Some(self);
        while let Some(path) = current {
            segments.push(path.segment);
            current = path.parent;
        }
        let mut out = String::new();
        for segment in segments.iter().rev() {
            match segment {
                Segment::Root(name) => out.push_str(name),
                Segment::Field(name) => {
                    out.push('.');
                    out.push_str(name);
                }
                Segment::Inline => {}
                Segment::Number(number) => {
                    let _ = write!(out, ".#{number}");
                }
                Segment::Index(index) => {
                    let _ = write!(out, "[{index}]");
                }
                Segment::Key(key) => {
                    let _ = write!(out, "[{key:?}]");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_json_paths() {
        let root = Path::root("k8s.io.api.apps.v1.Deployment");
        let spec = root.child(Segment::Field("spec"));
        let containers = spec.child(Segment::Field("containers"));
        let first = containers.child(Segment::Index(0));
        let inline = first.child(Segment::Inline);
        let limits = inline.child(Segment::Field("limits"));
        let cpu = limits.child(Segment::Key("cpu"));
        assert_eq!(
            cpu.render(),
            "Deployment.spec.containers[0].limits[\"cpu\"]"
        );
        assert_eq!(
            spec.child(Segment::Number(99)).render(),
            "Deployment.spec.#99"
        );
    }
}
