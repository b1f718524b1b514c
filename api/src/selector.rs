//! Label selectors (`-l app=web,tier in (a,b)`, `spec.selector`) and field
//! selectors (`--field-selector spec.nodeName=n1`), parsed, matched and
//! printed the way upstream apimachinery does, with its error texts.
//! Pure functions over strings and maps: which fields a resource supports, and
//! how objects are fetched, belong to the caller.

mod field;
mod label;
mod label_parser;

pub use field::{
    escape_field_value, FieldOperator, FieldRequirement, FieldSelector, FieldSelectorError,
};
pub use label::{LabelSelector, Labels, Operator, Requirement, SelectorError};

/// Quotes `text` the way Go's `%q` verb does, because upstream error messages
/// quote the offending value with it (`Invalid value: "Foo_"`). Printable
/// characters are kept; control characters are escaped.
pub(crate) fn go_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for character in text.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\u{7}' => quoted.push_str("\\a"),
            '\u{8}' => quoted.push_str("\\b"),
            '\u{c}' => quoted.push_str("\\f"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\u{b}' => quoted.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                quoted.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => quoted.push_str(&format!("\\u{:04x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::go_quote;

    #[test]
    fn go_quote_escapes_like_go_percent_q() {
        let cases = [
            ("", r#""""#),
            ("Foo_", r#""Foo_""#),
            ("a\"b", r#""a\"b""#),
            ("a\\b", r#""a\\b""#),
            ("tab\there", r#""tab\there""#),
            ("nl\n", r#""nl\n""#),
            ("\u{1}", r#""\x01""#),
            ("\u{7f}", r#""\x7f""#),
            ("\u{85}", r#""\u0085""#),
            ("héllo", r#""héllo""#),
        ];
        for (input, expected) in cases {
            assert_eq!(go_quote(input), expected, "input {input:?}");
        }
    }
}
