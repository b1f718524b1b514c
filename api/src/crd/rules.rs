//! `x-kubernetes-validations`: CEL rules compiled when the schema is built and
//! evaluated with `self` (and `oldSelf` on update) bound to the value at their
//! node, reported with upstream's wording (`pkg/apiserver/schema/cel`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use cel::objects::OptionalValue;
use cel::{Context, Env, ExecutionError, Program};
use serde_json::Value;

mod library;

use super::{path, Additional, Node};
use crate::field::FieldCause;

/// One compiled validation rule.
#[derive(Debug)]
pub(super) struct Rule {
    /// Checked against the schema once the whole node is read.
    pub(super) field_path: String,
    source: String,
    message: String,
    message_expression: Option<Program>,
    reason: Option<String>,
    program: Program,
    /// Whether the rule reads `oldSelf` (a transition rule).
    pub(super) uses_old_self: bool,
    /// `optionalOldSelf`: evaluate on create too, with `oldSelf` an optional.
    pub(super) optional_old_self: Option<bool>,
}

impl Rule {
    /// The rule's CEL text.
    pub(super) fn source(&self) -> &str {
        &self.source
    }
}

const REASONS: [&str; 4] = [
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];

/// The CEL environment: the standard library with the strings, lists and
/// math extensions Kubernetes also enables, plus [`library`]'s functions.
///
/// Not there yet, compared with upstream: type checking against the schema
/// (an unknown field or a non-bool rule is found only when it runs, and a
/// rule that does not return `true` fails), cost estimates and limits, the
/// `url`, `ip`, `cidr`, `quantity`, `format`, `semver` and `authz` libraries,
/// list `indexOf`/`lastIndexOf` (the name is taken by strings), and `self` at
/// the root shows all of metadata rather than only name and generateName.
fn env() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        for extension in [
            cel::extensions::strings as fn(&mut Env) -> _,
            cel::extensions::lists,
            cel::extensions::math,
        ] {
            env.add_extension(extension).expect("CEL extension");
        }
        Arc::new(env)
    })
    .clone()
}

/// Reads and compiles a node's `x-kubernetes-validations` (at `at`), pushing
/// the CRD-time errors upstream reports for bad rules.
pub(super) fn parse(value: &Value, at: &str, errors: &mut Vec<FieldCause>) -> Vec<Arc<Rule>> {
    let Some(list) = value.as_array() else {
        errors.push(super::type_error(at, value, "array"));
        return Vec::new();
    };
    let mut rules = Vec::new();
    for (i, raw) in list.iter().enumerate() {
        let here = path::index(at, i);
        let text = |key: &str| {
            raw.get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let (source, message, message_expr) =
            (text("rule"), text("message"), text("messageExpression"));
        let field_path = text("fieldPath");
        let reason = raw.get("reason").and_then(Value::as_str).map(str::to_owned);
        let before = errors.len();
        let trimmed_msg = message.trim();
        if source.trim().is_empty() {
            errors.push(FieldCause::required(
                path::child(&here, "rule"),
                "rule is not specified",
            ));
        } else if !message.is_empty() && trimmed_msg.is_empty() {
            errors.push(FieldCause::invalid(
                path::child(&here, "message"),
                &Value::from(message.as_str()),
                "message must be non-empty if specified",
            ));
        } else if trimmed_msg.contains('\n') {
            errors.push(FieldCause::invalid(
                path::child(&here, "message"),
                &Value::from(message.as_str()),
                "message must not contain line breaks",
            ));
        } else if source.trim().contains('\n') && trimmed_msg.is_empty() {
            errors.push(FieldCause::required(
                path::child(&here, "message"),
                "message must be specified if rule contains line breaks",
            ));
        }
        if !message_expr.is_empty() && message_expr.trim().is_empty() {
            errors.push(FieldCause::required(
                path::child(&here, "messageExpression"),
                "messageExpression must be non-empty if specified",
            ));
        }
        if let Some(reason) = &reason {
            if !REASONS.contains(&reason.as_str()) {
                errors.push(FieldCause::not_supported(
                    path::child(&here, "reason"),
                    &Value::from(reason.as_str()),
                    &REASONS,
                ));
            }
        }
        if !field_path.is_empty() && field_path.trim().is_empty() {
            errors.push(FieldCause::invalid(
                path::child(&here, "fieldPath"),
                &Value::from(field_path.as_str()),
                "fieldPath must be non-empty if specified",
            ));
        }
        if field_path.contains('\n') {
            errors.push(FieldCause::invalid(
                path::child(&here, "fieldPath"),
                &Value::from(field_path.as_str()),
                "fieldPath must not contain line breaks",
            ));
        }
        if errors.len() > before {
            continue;
        }
        let program = match env().compile(&source) {
            Ok(program) => program,
            Err(err) => {
                errors.push(rule_invalid(
                    &path::child(&here, "rule"),
                    raw,
                    &format!("compilation failed: {err}"),
                ));
                continue;
            }
        };
        let message_expression = if message_expr.trim().is_empty() {
            None
        } else {
            match env().compile(&message_expr) {
                Ok(program) => Some(program),
                Err(err) => {
                    errors.push(rule_invalid(
                        &path::child(&here, "messageExpression"),
                        raw,
                        &format!("messageExpression compilation failed: {err}"),
                    ));
                    continue;
                }
            }
        };
        let uses_old_self = program.references().has_variable("oldSelf");
        let optional_old_self = raw.get("optionalOldSelf").and_then(Value::as_bool);
        rules.push(Arc::new(Rule {
            source,
            message,
            message_expression,
            field_path,
            reason,
            program,
            uses_old_self,
            optional_old_self,
        }));
    }
    rules
}

/// `Invalid value` for a rule, which upstream prints as Go prints the
/// `ValidationRule` struct.
fn rule_invalid(at: &str, raw: &Value, detail: &str) -> FieldCause {
    let text = |key: &str| format!("{:?}", raw.get(key).and_then(Value::as_str).unwrap_or(""));
    let reason = match raw.get("reason").and_then(Value::as_str) {
        Some(r) => format!("(*apiextensions.FieldValueErrorReason)({r:?})"),
        None => "(*apiextensions.FieldValueErrorReason)(nil)".to_owned(),
    };
    let optional = match raw.get("optionalOldSelf").and_then(Value::as_bool) {
        Some(b) => format!("(*bool)({b})"),
        None => "(*bool)(nil)".to_owned(),
    };
    FieldCause {
        reason: "FieldValueInvalid",
        field: at.to_owned(),
        message: format!(
            "Invalid value: apiextensions.ValidationRule{{Rule:{}, Message:{}, MessageExpression:{}, Reason:{reason}, FieldPath:{}, OptionalOldSelf:{optional}}}: {detail}",
            text("rule"),
            text("message"),
            text("messageExpression"),
            text("fieldPath"),
        ),
    }
}

/// Evaluates every rule below `s` for `value` (and `old`, on update).
pub(super) fn evaluate(
    s: &Node,
    value: &Value,
    old: Option<&Value>,
    at: &str,
    errors: &mut Vec<FieldCause>,
) {
    if value.is_null() {
        return;
    }
    for rule in &s.rules {
        run(s, rule, value, old, at, errors);
    }
    for n in &s.all_of {
        evaluate(n, value, old, at, errors);
    }
    match value {
        Value::Array(items) => {
            let Some(item_schema) = &s.items else { return };
            for (i, item) in items.iter().enumerate() {
                let old_item = old.and_then(|o| correlate(s, item, o));
                evaluate(item_schema, item, old_item, &path::index(at, i), errors);
            }
        }
        Value::Object(map) => {
            if let Some(Additional::Schema(sub)) = &s.additional {
                for (k, v) in map {
                    let old_v = old.and_then(|o| o.get(k));
                    evaluate(sub, v, old_v, &path::key(at, k), errors);
                }
            }
            for (k, v) in map {
                if let Some(prop) = s.property(k) {
                    let old_v = old.and_then(|o| o.get(k));
                    evaluate(prop, v, old_v, &path::child(at, k), errors);
                }
            }
        }
        _ => {}
    }
}

/// The old item of a `x-kubernetes-list-type: map` list with the same keys;
/// other lists do not correlate.
pub(super) fn correlate<'a>(s: &Node, item: &Value, old: &'a Value) -> Option<&'a Value> {
    if s.list_type.as_deref() != Some("map") {
        return None;
    }
    let keys = |v: &Value| -> Vec<Option<Value>> {
        s.list_map_keys.iter().map(|k| v.get(k).cloned()).collect()
    };
    let want = keys(item);
    old.as_array()?.iter().find(|o| keys(o) == want)
}

fn run(
    s: &Node,
    rule: &Rule,
    value: &Value,
    old: Option<&Value>,
    at: &str,
    errors: &mut Vec<FieldCause>,
) {
    let optional = rule.optional_old_self == Some(true);
    if rule.uses_old_self && old.is_none() && !optional {
        return;
    }
    // Ratcheting: an unchanged value keeps passing its non-transition rules.
    if !rule.uses_old_self && old == Some(value) {
        return;
    }
    let mut context = Context::with_env(env());
    library::register(&mut context);
    context.add_variable_from_value("self", to_cel(value));
    if optional {
        let wrapped = match old {
            Some(old) => OptionalValue::of(to_cel(old)),
            None => OptionalValue::none(),
        };
        context.add_variable_from_value("oldSelf", cel::Value::Opaque(Arc::new(wrapped)));
    } else if let Some(old) = old {
        context.add_variable_from_value("oldSelf", to_cel(old));
    }
    let ty = Value::String(s.ty.clone());
    let shown = rule_error_string(rule);
    match rule.program.execute(&context) {
        Ok(cel::Value::Bool(true)) => {}
        Ok(_) => {
            let at = match super::fieldpath::resolve(&rule.field_path, s, true) {
                Ok((p, _)) if !p.is_empty() => path::child(at, &p),
                _ => at.to_owned(),
            };
            let detail = rule
                .message_expression
                .as_ref()
                .and_then(|m| message(m, &context))
                .unwrap_or_else(|| {
                    if rule.message.is_empty() {
                        format!("failed rule: {shown}")
                    } else {
                        rule.message.trim().to_owned()
                    }
                });
            errors.push(match rule.reason.as_deref() {
                Some("FieldValueForbidden") => FieldCause::forbidden(at, detail),
                Some("FieldValueRequired") => FieldCause::required(at, detail),
                Some("FieldValueDuplicate") => FieldCause::duplicate(at, &ty),
                _ => FieldCause::invalid(at, &ty, detail),
            });
        }
        Err(ExecutionError::NoSuchOverload(_)) => errors.push(FieldCause::invalid(
            at,
            &ty,
            format!("'no such overload': call arguments did not match a supported operator, function or macro signature for rule: {shown}"),
        )),
        Err(err) => errors.push(FieldCause::invalid(
            at,
            &ty,
            format!("{} evaluating rule: {shown}", go_error(&err)),
        )),
    }
}

/// A runtime error as cel-go words the common ones.
fn go_error(err: &ExecutionError) -> String {
    match err {
        ExecutionError::NoSuchKey(key) => format!("no such key: {key}"),
        ExecutionError::DivisionByZero(_) => "division by zero".to_owned(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".to_owned(),
        ExecutionError::Overflow(..) => "integer overflow".to_owned(),
        ExecutionError::IndexOutOfBounds(i) => match i {
            cel::Value::Int(i) => format!("index out of bounds: {i}"),
            other => format!("index out of bounds: {other:?}"),
        },
        other => other.to_string(),
    }
}

fn rule_error_string(rule: &Rule) -> String {
    if rule.message.is_empty() {
        rule.source.trim().to_owned()
    } else {
        rule.message.trim().to_owned()
    }
}

/// A `messageExpression`'s text, or None when it fails or is unusable (the
/// rule's message is used instead, as upstream does).
fn message(program: &Program, context: &Context) -> Option<String> {
    match program.execute(context) {
        Ok(cel::Value::String(s)) => {
            let s = s.trim();
            (!s.is_empty() && !s.contains('\n') && s.len() <= 5 * 1024).then(|| s.to_owned())
        }
        _ => None,
    }
}

/// A JSON value as CEL sees it: integers as `int`, other numbers as `double`.
fn to_cel(value: &Value) -> cel::Value {
    match value {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => cel::Value::Int(i),
            None => cel::Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => cel::Value::from(s.as_str()),
        Value::Array(items) => cel::Value::from(items.iter().map(to_cel).collect::<Vec<_>>()),
        Value::Object(map) => {
            let converted: HashMap<String, cel::Value> =
                map.iter().map(|(k, v)| (k.clone(), to_cel(v))).collect();
            cel::Value::from(converted)
        }
    }
}

#[cfg(test)]
mod tests;
