//! Checks of the schema's own `default`s when a CRD is stored
//! (`pkg/apiserver/schema/defaulting/validation.go` upstream): each default
//! must be pruned already and valid against its node, rules included.

use super::{path, prune, rules, validate, Node};
use crate::field::FieldCause;

/// Pushes the problems of every `default` below `s` (at `at`); like
/// upstream, defaults under `additionalProperties` are not followed.
pub(super) fn check(s: &Node, at: &str, errors: &mut Vec<FieldCause>) {
    if let Some(default) = &s.default {
        let here = path::child(at, "default");
        let mut pruned = default.clone();
        prune::prune_node(s, &mut pruned);
        if &pruned != default {
            errors.push(FieldCause::invalid(
                &here,
                default,
                "must not have unknown fields",
            ));
        }
        let mut found = Vec::new();
        validate::validate(s, default, None, "", &mut found);
        if found.is_empty() {
            rules::evaluate(s, default, None, "", &mut found);
            rules::evaluate(s, default, Some(default), "", &mut found);
        }
        errors.extend(found.into_iter().map(|mut cause| {
            cause.field = if cause.field.is_empty() {
                here.clone()
            } else if cause.field.starts_with('[') {
                format!("{here}{}", cause.field)
            } else {
                format!("{here}.{}", cause.field)
            };
            cause
        }));
    }
    for (k, p) in &s.properties {
        check(p, &path::key(&path::child(at, "properties"), k), errors);
    }
    if let Some(items) = &s.items {
        check(items, &path::child(at, "items"), errors);
    }
}
