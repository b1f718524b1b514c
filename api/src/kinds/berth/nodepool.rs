//! NodePools (the type is `crate::nodepool::NodePool`): generation tracking and
//! the DESIRED, READY, MIN, MAX and CLASS columns.

use serde_json::{json, Value};

use crate::kinds::KindRules;
use crate::table::print::{int_at, optional_int, str_or_none};
use crate::table::{col, Column, AGE, NAME};

/// The rules of `berth.dev/v1` NodePool.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodePool;

impl KindRules for NodePool {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Desired", "integer", 0, "Nodes the pool should have."),
            col("Ready", "integer", 0, "Nodes of the pool that are Ready."),
            col("Min", "string", 0, "Autoscaling lower bound."),
            col("Max", "string", 0, "Autoscaling upper bound."),
            AGE,
            col("Class", "string", 1, "Machine class of the pool."),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            crate::table::name_cell(obj),
            json!(obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0)),
            json!(int_at(obj, &["status", "readyReplicas"])),
            json!(optional_int(obj, &["spec", "minReplicas"])),
            json!(optional_int(obj, &["spec", "maxReplicas"])),
            crate::table::age_cell(obj, now),
            json!(str_or_none(obj, &["spec", "machineClass"])),
        ]
    }
}
