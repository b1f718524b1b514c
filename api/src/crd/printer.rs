//! `additionalPrinterColumns` cells: the small JSONPath subset CRDs use
//! (`.spec.replicas`, `.status.conditions[?(@.type=="Ready")].status`), one
//! raw cell per column, formatted by the caller (dates become ages).

use serde_json::Value;

/// One cell per column of `columns` (a CRD version's
/// `additionalPrinterColumns`) for `obj`, after the Name cell the caller
/// adds: the value at the column's `jsonPath`, `null` when absent or not
/// convertible to the column's type.
pub fn printer_cells(columns: &Value, obj: &Value) -> Vec<Value> {
    let Some(columns) = columns.as_array() else {
        return Vec::new();
    };
    columns
        .iter()
        .map(|column| {
            let path = column.get("jsonPath").and_then(Value::as_str).unwrap_or("");
            let ty = column
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("string");
            let found = evaluate(path, obj);
            cell(ty, found)
        })
        .collect()
}

/// The first match, as upstream's table convertor turns it into a cell:
/// strings columns print any value (objects as JSON), integer and number
/// columns convert between the two, dates stay strings for the caller to
/// render as an age (`<invalid>` when not a timestamp); anything else is null.
fn cell(ty: &str, found: Vec<&Value>) -> Value {
    let Some(first) = found.into_iter().next() else {
        return Value::Null;
    };
    match (ty, first) {
        (_, Value::Null) => Value::Null,
        ("string", Value::String(_)) => first.clone(),
        ("string", Value::Number(_)) => Value::String(super::path::go_number(first)),
        ("string", other) => Value::String(super::validate::canonical(other)),
        ("integer", Value::Number(n)) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => Value::from(n.as_f64().unwrap_or(0.0) as i64),
        },
        ("number", Value::Number(n)) => Value::from(n.as_f64().unwrap_or(0.0)),
        ("boolean", Value::Bool(_)) => first.clone(),
        ("date", Value::String(s)) => {
            if s.parse::<jiff::Timestamp>().is_ok() {
                first.clone()
            } else {
                Value::from("<invalid>")
            }
        }
        _ => Value::Null,
    }
}

/// One step of a parsed JSONPath.
#[derive(Debug, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
    Filter { field: Vec<String>, value: Value },
}

/// Parses the subset: `.a.b`, `[0]`, `[*]`, `['a.b']`, `[?(@.x=="y")]`;
/// also `{...}` wrappers as kubectl accepts them.
fn parse(path: &str) -> Option<Vec<Step>> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let mut steps = Vec::new();
    let mut rest = path.strip_prefix('$').unwrap_or(path);
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end > 0 {
                steps.push(Step::Field(r[..end].to_owned()));
            }
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = bracket_end(r)?;
            let inner = r[..end].trim();
            rest = &r[end + 1..];
            if inner == "*" {
                steps.push(Step::All);
            } else if let Ok(i) = inner.parse::<usize>() {
                steps.push(Step::Index(i));
            } else if let Some(f) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
                let (lhs, rhs) = f.split_once("==")?;
                let field = lhs
                    .trim()
                    .strip_prefix("@.")?
                    .split('.')
                    .map(str::to_owned)
                    .collect();
                let rhs = rhs.trim();
                let value = if let Some(s) = unquote(rhs) {
                    Value::String(s)
                } else {
                    serde_json::from_str(rhs).ok()?
                };
                steps.push(Step::Filter { field, value });
            } else {
                steps.push(Step::Field(unquote(inner)?));
            }
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            steps.push(Step::Field(rest[..end].to_owned()));
            rest = &rest[end..];
        }
    }
    Some(steps)
}

fn bracket_end(r: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in r.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ']') => return Some(i),
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    for q in ['\'', '"'] {
        if let Some(inner) = s.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return Some(inner.to_owned());
        }
    }
    None
}

/// Every value `path` selects in `obj`, in document order.
fn evaluate<'a>(path: &str, obj: &'a Value) -> Vec<&'a Value> {
    let Some(steps) = parse(path) else {
        return Vec::new();
    };
    let mut current = vec![obj];
    for step in &steps {
        let mut next = Vec::new();
        for value in current {
            match step {
                Step::Field(name) => next.extend(value.get(name.as_str())),
                Step::Index(i) => next.extend(value.get(*i)),
                Step::All => match value {
                    Value::Array(items) => next.extend(items.iter()),
                    Value::Object(map) => next.extend(map.values()),
                    _ => {}
                },
                Step::Filter { field, value: want } => {
                    if let Value::Array(items) = value {
                        next.extend(items.iter().filter(|item| {
                            field
                                .iter()
                                .try_fold(*item, |v, f| v.get(f.as_str()))
                                .is_some_and(|got| got == want)
                        }));
                    }
                }
            }
        }
        current = next;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_follow_the_jsonpath_subset() {
        let columns = json!([
            {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Ready", "type": "string",
             "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            {"name": "Missing", "type": "string", "jsonPath": ".spec.nothing"},
            {"name": "First", "type": "string", "jsonPath": ".spec.list[0]"},
            {"name": "Wrong", "type": "integer", "jsonPath": ".spec.cronSpec"},
            {"name": "Bool", "type": "string", "jsonPath": ".spec.flag"},
            {"name": "Ratio", "type": "integer", "jsonPath": ".spec.ratio"},
            {"name": "Count", "type": "number", "jsonPath": ".spec.replicas"},
            {"name": "Obj", "type": "string", "jsonPath": ".spec.obj"},
            {"name": "BadDate", "type": "date", "jsonPath": ".spec.cronSpec"},
            {"name": "Big", "type": "string", "jsonPath": ".spec.big"},
        ]);
        let obj = json!({
            "metadata": {"creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"cronSpec": "* * * * */5", "replicas": 3, "list": ["a", "b"], "flag": true,
                     "ratio": 2.7, "obj": {"b": 1e7, "a": [true, 1e-7]}, "big": 1e7},
            "status": {"conditions": [
                {"type": "Synced", "status": "False"},
                {"type": "Ready", "status": "True"}
            ]}
        });
        assert_eq!(
            printer_cells(&columns, &obj),
            vec![
                json!("* * * * */5"),
                json!(3),
                json!("True"),
                json!("2024-01-01T00:00:00Z"),
                Value::Null,
                json!("a"),
                Value::Null,
                json!("true"),
                json!(2),
                json!(3.0),
                json!("{\"a\":[true,1e-7],\"b\":10000000}"),
                json!("<invalid>"),
                json!("1e+07"),
            ]
        );
    }

    #[test]
    fn parses_bracket_fields_and_wildcards() {
        let obj = json!({"metadata": {"labels": {"app.kubernetes.io/name": "x"}}, "a": [1, 2]});
        assert_eq!(
            evaluate(".metadata.labels['app.kubernetes.io/name']", &obj),
            vec![&json!("x")]
        );
        assert_eq!(evaluate("{.a[*]}", &obj), vec![&json!(1), &json!(2)]);
        assert!(evaluate(".a[", &obj).is_empty());
    }
}
