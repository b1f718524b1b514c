//! Leases: the HOLDER column.

use serde_json::{json, Value};

use crate::kinds::KindRules;
use crate::table::print::str_or_none;
use crate::table::{col, Column, AGE, NAME};

/// The rules of `coordination.k8s.io/v1` Lease.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lease;

impl KindRules for Lease {
    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Holder", "string", 0, "The current holder of the lease."),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            crate::table::name_cell(obj),
            json!(str_or_none(obj, &["spec", "holderIdentity"])),
            crate::table::age_cell(obj, now),
        ]
    }
}
