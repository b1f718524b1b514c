//! The JSON paths CRDs use to point into their own schema (`fieldPath` of a
//! validation rule, `selectableFields`): `.a.b`, `['a.b']`, checked against
//! the schema and normalized to a field path, as upstream's `ValidFieldPath`.

use super::{path, Additional, Node};

/// Resolves `json_path` in `schema`: the field path it names (`spec[a.b]`
/// for map keys) and the schema it reaches, or upstream's reason why not.
pub(super) fn resolve<'a>(
    json_path: &str,
    schema: &'a Node,
    allow_array_notation: bool,
) -> Result<(String, Option<&'a Node>), String> {
    let mut at = String::new();
    let mut node = Some(schema);
    let tokens = tokenize(json_path);
    let mut tokens = tokens.iter().map(String::as_str);
    let step = |at: &mut String, node: &mut Option<&'a Node>, name: &str| {
        let Some(n) = *node else {
            return Err("does not refer to a valid field".to_owned());
        };
        if !n.properties.is_empty() {
            *at = path::child(at, name);
            *node = Some(n.property(name).ok_or("does not refer to a valid field")?);
        } else if let Some(additional) = &n.additional {
            *at = path::key(at, name);
            *node = match additional {
                Additional::Schema(sub) => Some(sub),
                Additional::Allowed(_) => None,
            };
        } else {
            return Err("does not refer to a valid field".to_owned());
        }
        Ok(())
    };
    while let Some(tok) = tokens.next() {
        match tok {
            "[" => {
                if !allow_array_notation {
                    return Err("array notation is not allowed".to_owned());
                }
                let quoted = tokens.next().ok_or("unexpected end of JSON path")?;
                let inner = quoted
                    .strip_prefix('\'')
                    .and_then(|q| q.strip_suffix('\''))
                    .filter(|_| quoted.len() >= 2)
                    .ok_or_else(|| format!("expected single quoted string but got {quoted}"))?;
                step(&mut at, &mut node, &inner.replace("\\'", "'"))?;
                match tokens.next() {
                    Some("]") => {}
                    Some(other) => return Err(format!("expected ] but got {other}")),
                    None => return Err("unexpected end of JSON path".to_owned()),
                }
            }
            "." => {
                let name = tokens.next().ok_or("unexpected end of JSON path")?;
                step(&mut at, &mut node, name)?;
            }
            other => return Err(format!("expected [ or . but got: {other}")),
        }
    }
    Ok((at, node))
}

/// Splits on `.`, `[` and `]` (each its own token), keeping single-quoted
/// strings whole.
fn tokenize(s: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' && current.is_empty() {
            current.push(c);
            let mut prev = c;
            for d in chars.by_ref() {
                current.push(d);
                if d == '\'' && prev != '\\' {
                    break;
                }
                prev = d;
            }
            tokens.push(std::mem::take(&mut current));
            continue;
        }
        if matches!(c, '.' | '[' | ']') {
            if !current.is_empty() {
                tokens.push(std::mem::take(&mut current));
            }
            tokens.push(c.to_string());
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}
