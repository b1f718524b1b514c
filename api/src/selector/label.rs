//! Label selectors: requirements on an object's labels, ANDed together.
//! Built from the query-string syntax (see `label_parser`), from the
//! structured `spec.selector` of workloads, or from a plain label map; printed
//! back in upstream's canonical form. Never looks at anything but labels.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use serde_json::Value;

use super::go_quote;
use crate::validation::{is_qualified_name, is_valid_label_value};

/// Why a label selector could not be built; the text is upstream's, so that
/// clients and tests which match on it keep working. Every variant is the
/// client's mistake (HTTP 400 Bad Request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// One requirement of a selector string is malformed or names an invalid
    /// key or value; the text says which and why.
    #[error("unable to parse requirement: {0}")]
    Requirement(String),
    /// The selector string is malformed between requirements (a stray token, a
    /// trailing comma).
    #[error("{0}")]
    Syntax(String),
    /// A requirement built from parts (structured selector, [`Requirement::new`])
    /// has an invalid key, values, or value count.
    #[error("{0}")]
    InvalidRequirement(String),
    /// A `matchExpressions` entry names an operator other than `In`, `NotIn`,
    /// `Exists` or `DoesNotExist`.
    #[error("{} is not a valid label selector operator", go_quote(.0))]
    UnsupportedOperator(String),
    /// The structured selector is not shaped like a `LabelSelector` object.
    #[error("invalid label selector: {0}")]
    Malformed(String),
}

/// How a requirement compares a label with its values. The string-syntax
/// operators map one to one; the structured form knows only `In`, `NotIn`,
/// `Exists` and `DoesNotExist`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `key=value`: the label is present with this value.
    Equals,
    /// `key==value`: the same as `Equals`, kept apart so it prints back as written.
    DoubleEquals,
    /// `key!=value`: the label is absent or has another value.
    NotEquals,
    /// `key in (a,b)`: the label is present with one of the values.
    In,
    /// `key notin (a,b)`: the label is absent or has none of the values.
    NotIn,
    /// `key`: the label is present, whatever its value.
    Exists,
    /// `!key`: the label is absent.
    DoesNotExist,
    /// `key>n`: the label is an integer greater than `n`.
    GreaterThan,
    /// `key<n`: the label is an integer less than `n`.
    LessThan,
}

impl Operator {
    /// Upstream's name for the operator (`selection.Operator`), as used in
    /// its error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

/// Read access to an object's labels, so one selector can match a typed map,
/// a `HashMap`, or the `metadata.labels` object of raw JSON alike.
pub trait Labels {
    /// The value of label `key`, or `None` when the object does not carry it.
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: BuildHasher> Labels for HashMap<String, String, S> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// Labels of a raw object; an entry whose value is not a string counts as absent.
impl Labels for serde_json::Map<String, Value> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }
}

/// The labels of an object that has none.
struct NoLabels;

impl Labels for NoLabels {
    fn label(&self, _key: &str) -> Option<&str> {
        None
    }
}

/// One condition of a label selector: a key, an operator and its values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// Builds a requirement after validating the key as a label key, each value
    /// as a label value, and the number of values against the operator (one
    /// for `=`, `==`, `!=`, `>` and `<`; at least one for `in` and `notin`;
    /// none for exists and does-not-exist), with upstream's messages.
    pub fn new(
        key: impl Into<String>,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Self, SelectorError> {
        let key = key.into();
        let mut errors = Vec::new();
        if let Some(problem) = key_problem(&key, "key") {
            errors.push(problem);
        }
        errors.extend(value_problems(&key, operator, &values));
        if errors.is_empty() {
            Ok(Requirement {
                key,
                operator,
                values,
            })
        } else {
            Err(SelectorError::InvalidRequirement(aggregate(errors)))
        }
    }

    /// Builds a requirement whose key was already validated (by the parser),
    /// reporting only the problems with its values, unaggregated.
    pub(super) fn with_valid_key(
        key: String,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Self, String> {
        let errors = value_problems(&key, operator, &values);
        if errors.is_empty() {
            Ok(Requirement {
                key,
                operator,
                values,
            })
        } else {
            Err(aggregate(errors))
        }
    }

    /// The label key this requirement looks at.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// How the label is compared with [`Requirement::values`].
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values to compare with, in the order given (sorted and deduplicated
    /// when parsed from a string).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether `labels` satisfy this requirement. As upstream: `!=` and
    /// `notin` match objects without the key; `>` and `<` never match a value
    /// that is not an integer.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        let value = labels.label(&self.key);
        match self.operator {
            Operator::Equals | Operator::DoubleEquals | Operator::In => {
                value.is_some_and(|value| self.has_value(value))
            }
            Operator::NotEquals | Operator::NotIn => {
                value.is_none_or(|value| !self.has_value(value))
            }
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(Ok(actual)) = value.map(str::parse::<i64>) else {
                    return false;
                };
                let [wanted] = self.values.as_slice() else {
                    return false;
                };
                let Ok(wanted) = wanted.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > wanted
                } else {
                    actual < wanted
                }
            }
        }
    }

    fn has_value(&self, value: &str) -> bool {
        self.values.iter().any(|candidate| candidate == value)
    }
}

/// Upstream's canonical text: `!key`, `key`, `key=v`, `key==v`, `key!=v`,
/// `key in (a,b)`, `key notin (a,b)`, `key>n`, `key<n`, values sorted.
impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let (operator, parenthesised) = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => ("=", false),
            Operator::DoubleEquals => ("==", false),
            Operator::NotEquals => ("!=", false),
            Operator::In => (" in ", true),
            Operator::NotIn => (" notin ", true),
            Operator::GreaterThan => (">", false),
            Operator::LessThan => ("<", false),
        };
        f.write_str(operator)?;
        if parenthesised {
            f.write_str("(")?;
        }
        let mut values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        values.sort_unstable();
        f.write_str(&values.join(","))?;
        if parenthesised {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A set of requirements on labels, all of which must hold. The empty selector
/// matches everything; [`LabelSelector::nothing`] (a null structured selector)
/// matches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    matches_nothing: bool,
}

impl LabelSelector {
    /// Parses the query-string syntax of `?labelSelector=` and `kubectl -l`:
    /// `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`,
    /// `k>n`, `k<n`, joined by commas. Whitespace between tokens is ignored;
    /// an empty string selects everything. Requirements are sorted by key.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut requirements = super::label_parser::parse(selector)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            matches_nothing: false,
        })
    }

    /// The selector that matches every object (the empty selector).
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// The selector that matches no object: what a null structured selector
    /// means upstream.
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            matches_nothing: true,
        }
    }

    /// A selector requiring every label of `labels` with its value, as for a
    /// Service's or ReplicationController's `spec.selector` map. The labels
    /// are not validated: they come from objects that already were.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Self {
        LabelSelector {
            requirements: labels
                .iter()
                .map(|(key, value)| Requirement {
                    key: key.clone(),
                    operator: Operator::Equals,
                    values: vec![value.clone()],
                })
                .collect(),
            matches_nothing: false,
        }
    }

    /// Converts the structured selector of workloads (`matchLabels` and
    /// `matchExpressions`), as upstream's `LabelSelectorAsSelector` does:
    /// validates keys and values, rejects unknown operators, and requires
    /// values for `In`/`NotIn` and none for `Exists`/`DoesNotExist`.
    pub fn from_label_selector(selector: &metav1::LabelSelector) -> Result<Self, SelectorError> {
        let match_labels = selector.match_labels.iter().flatten();
        let match_expressions = selector.match_expressions.iter().flatten();
        let mut requirements = Vec::new();
        for (key, value) in match_labels {
            requirements.push(Requirement::new(
                key.clone(),
                Operator::Equals,
                vec![value.clone()],
            )?);
        }
        for expression in match_expressions {
            let operator = match expression.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => return Err(SelectorError::UnsupportedOperator(other.to_string())),
            };
            let values = expression.values.clone().unwrap_or_default();
            requirements.push(Requirement::new(expression.key.clone(), operator, values)?);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            matches_nothing: false,
        })
    }

    /// Converts a structured selector given as raw JSON (a Deployment's
    /// `spec.selector`): `null` matches nothing, `{}` matches everything.
    pub fn from_value(selector: &Value) -> Result<Self, SelectorError> {
        if selector.is_null() {
            return Ok(LabelSelector::nothing());
        }
        let typed: metav1::LabelSelector = serde_json::from_value(selector.clone())
            .map_err(|error| SelectorError::Malformed(error.to_string()))?;
        LabelSelector::from_label_selector(&typed)
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether this selector has no requirements and so matches everything.
    pub fn is_empty(&self) -> bool {
        !self.matches_nothing && self.requirements.is_empty()
    }

    /// Whether this is the selector that matches nothing.
    pub fn is_nothing(&self) -> bool {
        self.matches_nothing
    }

    /// Whether an object with `labels` is selected.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        !self.matches_nothing
            && self
                .requirements
                .iter()
                .all(|requirement| requirement.matches(labels))
    }

    /// Whether an object is selected, given its raw `metadata.labels`
    /// (absent, `null` or not an object all mean "no labels").
    pub fn matches_value(&self, labels: Option<&Value>) -> bool {
        match labels.and_then(Value::as_object) {
            Some(labels) => self.matches(labels),
            None => self.matches(&NoLabels),
        }
    }

    /// The single value label `key` must have, when the selector pins it
    /// (`key=v`, `key==v` or `key in (v)`), so a caller can use an index.
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        let requirement = self.requirements.iter().find(|r| r.key == key)?;
        match (requirement.operator, requirement.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [value]) => Some(value),
            _ => None,
        }
    }
}

/// Upstream's canonical text (`metav1.FormatLabelSelector` without its
/// `<none>`): requirements joined by `,`; empty for everything and nothing.
impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, requirement) in self.requirements.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(selector: &str) -> Result<Self, Self::Err> {
        LabelSelector::parse(selector)
    }
}

impl TryFrom<&metav1::LabelSelector> for LabelSelector {
    type Error = SelectorError;

    fn try_from(selector: &metav1::LabelSelector) -> Result<Self, Self::Error> {
        LabelSelector::from_label_selector(selector)
    }
}

/// Upstream's `field.Invalid(path, value, detail)` rendered as text.
pub(super) fn invalid(path: &str, quoted_value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {quoted_value}: {detail}")
}

/// The problem with `key` as a label key, reported against `path`.
pub(super) fn key_problem(key: &str, path: &str) -> Option<String> {
    let errors = is_qualified_name(key);
    (!errors.is_empty()).then(|| invalid(path, &go_quote(key), &errors.join("; ")))
}

/// Upstream's checks of a requirement's values: their number against the
/// operator, integers for `>`/`<`, then each as a label value.
fn value_problems(key: &str, operator: Operator, values: &[String]) -> Vec<String> {
    let mut errors = Vec::new();
    match operator {
        Operator::In | Operator::NotIn if values.is_empty() => errors.push(invalid(
            "values",
            &go_string_slice(values),
            "for 'in', 'notin' operators, values set can't be empty",
        )),
        Operator::Equals | Operator::DoubleEquals | Operator::NotEquals if values.len() != 1 => {
            errors.push(invalid(
                "values",
                &go_string_slice(values),
                "exact-match compatibility requires one single value",
            ))
        }
        Operator::Exists | Operator::DoesNotExist if !values.is_empty() => errors.push(invalid(
            "values",
            &go_string_slice(values),
            "values set must be empty for exists and does not exist",
        )),
        Operator::GreaterThan | Operator::LessThan => {
            if values.len() != 1 {
                errors.push(invalid(
                    "values",
                    &go_string_slice(values),
                    "for 'Gt', 'Lt' operators, exactly one value is required",
                ));
            }
            for (index, value) in values.iter().enumerate() {
                if value.parse::<i64>().is_err() {
                    errors.push(invalid(
                        &format!("values[{index}]"),
                        &go_quote(value),
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    ));
                }
            }
        }
        _ => {}
    }
    for (index, value) in values.iter().enumerate() {
        let problems = is_valid_label_value(value);
        if !problems.is_empty() {
            errors.push(invalid(
                &format!("values[{index}][{key}]"),
                &go_quote(value),
                &problems.join("; "),
            ));
        }
    }
    errors
}

/// Go's `%#v` of a `[]string`; an empty list prints as the nil slice because
/// that is what upstream's structured conversion passes.
fn go_string_slice(values: &[String]) -> String {
    if values.is_empty() {
        return "[]string(nil)".to_string();
    }
    let quoted: Vec<String> = values.iter().map(|value| go_quote(value)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// Upstream's error aggregate: one message alone, several as `[a, b]`,
/// duplicates dropped.
fn aggregate(errors: Vec<String>) -> String {
    let mut unique: Vec<String> = Vec::with_capacity(errors.len());
    for error in errors {
        if !unique.contains(&error) {
            unique.push(error);
        }
    }
    if unique.len() == 1 {
        unique.remove(0)
    } else {
        format!("[{}]", unique.join(", "))
    }
}

#[cfg(test)]
mod tests;
