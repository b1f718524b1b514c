//! Kubernetes CEL library functions the cel crate lacks and CRD rules use
//! often: lists' `isSorted`, `sum`, `min`, `max` and regex `find`/`findAll`.

use std::sync::Arc;

use cel::extractors::This;
use cel::{Context, ExecutionError, Value};

type Result<T> = std::result::Result<T, ExecutionError>;

/// Adds the functions to a rule's evaluation context.
pub(super) fn register(context: &mut Context) {
    let added = [
        context.add_function("isSorted", is_sorted),
        context.add_function("sum", sum),
        context.add_function("min", |This(list): This<Arc<Vec<Value>>>| {
            extreme(&list, "min", std::cmp::Ordering::Less)
        }),
        context.add_function("max", |This(list): This<Arc<Vec<Value>>>| {
            extreme(&list, "max", std::cmp::Ordering::Greater)
        }),
        context.add_function("find", find),
        context.add_function("findAll", find_all),
    ];
    for result in added {
        result.expect("Kubernetes CEL function");
    }
}

fn is_sorted(This(list): This<Arc<Vec<Value>>>) -> Result<bool> {
    for pair in list.windows(2) {
        match pair[0].partial_cmp(&pair[1]) {
            Some(std::cmp::Ordering::Greater) => return Ok(false),
            Some(_) => {}
            None => {
                return Err(ExecutionError::function_error(
                    "isSorted",
                    "no such overload",
                ))
            }
        }
    }
    Ok(true)
}

fn sum(This(list): This<Arc<Vec<Value>>>) -> Result<Value> {
    let mut int: i64 = 0;
    let mut float: f64 = 0.0;
    let mut is_float = false;
    for v in list.iter() {
        match v {
            Value::Int(i) => {
                int = int
                    .checked_add(*i)
                    .ok_or_else(|| ExecutionError::function_error("sum", "integer overflow"))?
            }
            Value::Float(f) => {
                is_float = true;
                float += f;
            }
            _ => return Err(ExecutionError::function_error("sum", "no such overload")),
        }
    }
    Ok(if is_float {
        Value::Float(float + int as f64)
    } else {
        Value::Int(int)
    })
}

fn extreme(list: &[Value], name: &str, want: std::cmp::Ordering) -> Result<Value> {
    let mut best = list
        .first()
        .ok_or_else(|| ExecutionError::function_error(name, "list is empty"))?;
    for v in &list[1..] {
        match v.partial_cmp(best) {
            Some(o) if o == want => best = v,
            Some(_) => {}
            None => return Err(ExecutionError::function_error(name, "no such overload")),
        }
    }
    Ok(best.clone())
}

fn regex(pattern: &str, name: &str) -> Result<regex::Regex> {
    regex::Regex::new(pattern).map_err(|e| ExecutionError::function_error(name, e))
}

fn find(This(text): This<Arc<String>>, pattern: Arc<String>) -> Result<Value> {
    let re = regex(&pattern, "find")?;
    Ok(Value::from(
        re.find(&text).map(|m| m.as_str()).unwrap_or(""),
    ))
}

fn find_all(This(text): This<Arc<String>>, pattern: Arc<String>) -> Result<Value> {
    let re = regex(&pattern, "findAll")?;
    let found: Vec<Value> = re
        .find_iter(&text)
        .map(|m| Value::from(m.as_str()))
        .collect();
    Ok(Value::from(found))
}
