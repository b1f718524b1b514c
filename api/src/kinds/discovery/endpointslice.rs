//! EndpointSlices: the ADDRESSTYPE, PORTS and ENDPOINTS columns.

use serde_json::{json, Value};

use crate::kinds::KindRules;
use crate::table::print::{array_at, int_at, or_none, str_at};
use crate::table::{col, Column, AGE, NAME};

/// The rules of `discovery.k8s.io/v1` EndpointSlice.
#[derive(Debug, Clone, Copy, Default)]
pub struct EndpointSlice;

impl KindRules for EndpointSlice {
    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            col("AddressType", "string", 0, "Type of the addresses."),
            col("Ports", "string", 0, "Ports of the endpoints."),
            col("Endpoints", "string", 0, "Endpoint addresses."),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let ports: Vec<String> = array_at(obj, &["ports"])
            .iter()
            .map(|p| int_at(p, &["port"]).to_string())
            .collect();
        let addrs: Vec<&str> = array_at(obj, &["endpoints"])
            .iter()
            .flat_map(|e| array_at(e, &["addresses"]).iter().filter_map(Value::as_str))
            .collect();
        vec![
            crate::table::name_cell(obj),
            json!(str_at(obj, &["addressType"]).unwrap_or_default()),
            json!(or_none(ports.join(","))),
            json!(or_none(addrs.join(","))),
            crate::table::age_cell(obj, now),
        ]
    }
}
