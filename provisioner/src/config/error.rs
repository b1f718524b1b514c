//! Errors of `cluster.toml`: every one names the file, line and column, the
//! field path and what is allowed, so a user can fix the file without guessing.

use std::fmt;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// A place in the file: `cluster.toml:12:5` (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file as the user named it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Location {
    /// The line and column of byte `offset` in `text`.
    pub fn at(file: &str, text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = text.get(..offset).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Self {
            file: file.to_owned(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Why a `cluster.toml` was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file as the user named it.
        file: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not TOML, or its shape is wrong: an unknown key, a value of
    /// the wrong type, a missing field or an enum value that does not exist.
    #[error("{at}: {}{message}", field_prefix(.field))]
    Syntax {
        /// Where.
        at: Location,
        /// The field path, when the error falls inside one.
        field: Option<String>,
        /// What the parser said, with the allowed keys or values.
        message: String,
    },
    /// The file parses but a value breaks a rule of the cluster model.
    #[error("{at}: {field}: {message}")]
    Invalid {
        /// Where.
        at: Location,
        /// The field path, e.g. `pools[1].taints[0]`.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

fn field_prefix(field: &Option<String>) -> String {
    field
        .as_ref()
        .map(|field| format!("{field}: "))
        .unwrap_or_default()
}

/// Turns a `toml` error into a [`ConfigError::Syntax`] pointing at its span,
/// with the field path found by walking the parsed document.
pub(crate) fn syntax(file: &str, text: &str, error: &toml::de::Error) -> ConfigError {
    let offset = error.span().map_or(0, |span| span.start);
    // The parser reports a field missing from the top level as an empty span
    // at the start: no field to name.
    let span = error.span().filter(|span| span.end > 0);
    let field = DeTable::parse(text)
        .ok()
        .and_then(|document| span.and_then(|span| path_in_table(document.get_ref(), &span)));
    ConfigError::Syntax {
        at: Location::at(file, text, offset),
        field,
        message: plain_words(error.message().trim_end()),
    }
}

/// serde names the Rust struct it expected; say what to write instead.
fn plain_words(message: &str) -> String {
    const TABLES: [(&str, &str); 5] = [
        (
            "struct RawMachine",
            "a machine table like { host = \"10.0.0.1\" }",
        ),
        ("struct RawPool", "a pool table ([[pools]])"),
        ("struct RawMasters", "a table ([masters])"),
        ("struct RawSsh", "a table ([ssh])"),
        ("struct RawCluster", "a table"),
    ];
    TABLES.iter().fold(message.to_owned(), |text, (from, to)| {
        text.replace(from, to)
    })
}

/// The path of the deepest key or value whose span contains `span`.
fn path_in_table(table: &DeTable<'_>, span: &Range<usize>) -> Option<String> {
    table.iter().find_map(|(key, value)| {
        let name = key_segment(key.get_ref());
        if let Some(inner) = path_in_value(value, span) {
            return Some(join(&name, &inner));
        }
        (contains(key.span(), span) || contains(value.span(), span)).then_some(name)
    })
}

fn path_in_value(value: &Spanned<DeValue<'_>>, span: &Range<usize>) -> Option<String> {
    match value.get_ref() {
        DeValue::Table(table) => path_in_table(table, span),
        DeValue::Array(array) => array.into_iter().enumerate().find_map(|(index, item)| {
            let here = format!("[{index}]");
            match path_in_value(item, span) {
                Some(inner) => Some(join(&here, &inner)),
                None => contains(item.span(), span).then_some(here),
            }
        }),
        _ => None,
    }
}

fn contains(outer: Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer.start < outer.end
}

/// A map key as one segment of a field path: bare when TOML allows it bare, quoted otherwise.
pub(crate) fn key_segment(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

fn join(outer: &str, inner: &str) -> String {
    if inner.starts_with('[') {
        format!("{outer}{inner}")
    } else {
        format!("{outer}.{inner}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_count_lines_and_characters() {
        let text = "a = 1\nbé = 2\n";
        let cases = [(0, 1, 1), (4, 1, 5), (6, 2, 1), (9, 2, 3)];
        for (offset, line, column) in cases {
            let at = Location::at("f.toml", text, offset);
            assert_eq!((at.line, at.column), (line, column), "offset {offset}");
        }
        assert_eq!(Location::at("f.toml", text, 6).to_string(), "f.toml:2:1");
    }

    #[test]
    fn paths_name_the_deepest_field() {
        let text = "[[pools]]\nname = \"a\"\n[[pools]]\nname = \"b\"\ntaints = [\"x\", \"y\"]\n[labels]\n\"a/b\" = \"c\"\n";
        let document = DeTable::parse(text).unwrap();
        let at = |needle: &str| {
            let start = text.find(needle).unwrap();
            path_in_table(document.get_ref(), &(start..start + needle.len()))
        };
        assert_eq!(at("\"y\"").as_deref(), Some("pools[1].taints[1]"));
        assert_eq!(at("\"b\"").as_deref(), Some("pools[1].name"));
        assert_eq!(at("\"c\"").as_deref(), Some("labels.\"a/b\""));
    }
}
