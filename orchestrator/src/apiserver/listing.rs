//! Lists and the selectors they filter by: label selectors with every operator,
//! the field selectors kubectl relies on, and `limit`/`continue` paging.

use std::sync::Arc;

use base64::Engine;
use berth_api::kinds::KindRules;
use berth_api::selector::{FieldSelector, LabelSelector};
use serde_json::{json, Value};

use super::catalog::ResourceInfo;
use super::errors::ApiError;
use super::objects::decode_as;
use super::request::Query;
use crate::store::Store;

/// The filters of a list or watch.
#[derive(Debug, Clone)]
pub struct Filter {
    labels: LabelSelector,
    fields: FieldSelector,
    /// The kind's rules, which say what a field label's value is.
    rules: Arc<dyn KindRules>,
}

/// Field labels every kind supports.
const COMMON_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

impl Filter {
    /// Parses `labelSelector` and `fieldSelector`, rejecting unsupported field labels with 400.
    pub fn from_query(r: &ResourceInfo, query: &Query) -> Result<Self, ApiError> {
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(format!("unable to parse requirement: {e}")))?;
        let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        for field in fields.fields() {
            if !COMMON_FIELDS.contains(&field) && !r.rules.selects_field(field) {
                return Err(ApiError::BadRequest(format!(
                    "field label not supported: {field}"
                )));
            }
        }
        Ok(Self {
            labels,
            fields,
            rules: Arc::clone(&r.rules),
        })
    }

    /// Whether an object passes both selectors.
    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches_value(obj.pointer("/metadata/labels"))
            && self
                .fields
                .matches(|field| Some(self.rules.field_value(obj, field)))
    }
}

/// Where a paged list continues: the last key returned and the list's revision.
fn encode_continue(key: &str, revision: i64) -> String {
    let token = json!({"v": "berth.dev/v1", "rv": revision, "start": key});
    base64::engine::general_purpose::STANDARD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(String, i64), ApiError> {
    let bad = || ApiError::BadRequest(format!("continue key is not valid: {token}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let start = value
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(bad)?
        .to_owned();
    let rv = value.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
    Ok((start, rv))
}

/// The prefix that holds every object of `r` in `ns` (or all namespaces).
pub fn prefix(r: &ResourceInfo, ns: Option<&str>) -> String {
    match ns {
        Some(ns) if r.namespaced => format!("{}{ns}/", r.key_prefix()),
        _ => r.key_prefix(),
    }
}

/// Objects of one list call, and where the next page starts.
pub struct ListResult {
    /// Matching objects, with kind and apiVersion.
    pub items: Vec<Value>,
    /// Store revision of the list (`metadata.resourceVersion`).
    pub revision: i64,
    /// Continue token when more items follow.
    pub continue_token: Option<String>,
}

/// Reads one page of matching objects.
pub async fn list(
    store: &dyn Store,
    r: &ResourceInfo,
    ns: Option<&str>,
    query: &Query,
) -> Result<ListResult, ApiError> {
    let filter = Filter::from_query(r, query)?;
    let limit = query
        .number("limit")?
        .filter(|l| *l > 0)
        .map(|l| l as usize);
    let prefix = prefix(r, ns);
    let (mut start_after, mut revision) = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let (start, rv) = decode_continue(token)?;
            (Some(start), Some(rv))
        }
        None => (None, None),
    };
    let mut items = Vec::new();
    let batch = limit.map_or(0, |l| l.max(100));
    loop {
        let page = store.list(&prefix, start_after.as_deref(), batch).await?;
        revision.get_or_insert(page.revision);
        let mut last_key = None;
        for kv in &page.items {
            last_key = Some(kv.key.clone());
            let obj = decode_as(r, kv)?;
            if filter.matches(&obj) {
                items.push(obj);
                if limit.is_some_and(|l| items.len() >= l) {
                    let more_here =
                        kv.key != page.items.last().map(|k| k.key.clone()).unwrap_or_default();
                    let token = if more_here || page.more {
                        Some(encode_continue(&kv.key, revision.unwrap_or(page.revision)))
                    } else {
                        None
                    };
                    return Ok(ListResult {
                        items,
                        revision: revision.unwrap_or(page.revision),
                        continue_token: token,
                    });
                }
            }
        }
        if !page.more {
            return Ok(ListResult {
                items,
                revision: revision.unwrap_or(page.revision),
                continue_token: None,
            });
        }
        start_after = last_key;
    }
}

/// The JSON list object (`PodList`, …) clients decode.
pub fn list_object(r: &ResourceInfo, result: ListResult) -> Value {
    let mut metadata = json!({"resourceVersion": result.revision.to_string()});
    if let Some(token) = result.continue_token {
        metadata["continue"] = json!(token);
    }
    let items: Vec<Value> = result
        .items
        .into_iter()
        .map(|mut item| {
            if let Some(map) = item.as_object_mut() {
                map.remove("kind");
                map.remove("apiVersion");
            }
            item
        })
        .collect();
    json!({
        "kind": format!("{}List", r.kind),
        "apiVersion": r.api_version(),
        "metadata": metadata,
        "items": items,
    })
}
