//! ServiceAccounts: the SECRETS column.

use serde_json::{json, Value};

use crate::kinds::KindRules;
use crate::table::print::array_at;
use crate::table::{col, Column, AGE, NAME};

/// The rules of `core/v1` ServiceAccount.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceAccount;

impl KindRules for ServiceAccount {
    fn columns(&self) -> Vec<Column> {
        vec![NAME, col("Secrets", "string", 0, "Number of secrets."), AGE]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            crate::table::name_cell(obj),
            json!(array_at(obj, &["secrets"]).len()),
            crate::table::age_cell(obj, now),
        ]
    }
}
