//! Endpoints: the `kubectl get endpoints` ENDPOINTS cell (three addresses, then
//! `+ N more...`).

use serde_json::{json, Value};

use crate::kinds::KindRules;
use crate::table::print::{array_at, int_at, or_none, str_at};
use crate::table::{col, Column, AGE, NAME};

/// The rules of `core/v1` Endpoints.
#[derive(Debug, Clone, Copy, Default)]
pub struct Endpoints;

impl KindRules for Endpoints {
    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("Endpoints", "string", 0, "Endpoint addresses."),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            crate::table::name_cell(obj),
            json!(endpoints_cell(obj)),
            crate::table::age_cell(obj, now),
        ]
    }
}

fn endpoints_cell(ep: &Value) -> String {
    let mut items = Vec::new();
    for subset in array_at(ep, &["subsets"]) {
        let ports: Vec<i64> = array_at(subset, &["ports"])
            .iter()
            .map(|p| int_at(p, &["port"]))
            .collect();
        for addr in array_at(subset, &["addresses"]) {
            let ip = str_at(addr, &["ip"]).unwrap_or_default();
            if ports.is_empty() {
                items.push(ip.to_owned());
            }
            for port in &ports {
                items.push(format!("{ip}:{port}"));
            }
        }
    }
    if items.len() > 3 {
        let more = items.len() - 3;
        items.truncate(3);
        return format!("{} + {more} more...", items.join(","));
    }
    or_none(items.join(","))
}
