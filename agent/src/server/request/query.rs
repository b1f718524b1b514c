//! A query string decoded once (`form_urlencoded`: `+` and `%XX`), with the
//! value readers kubelet's parameters need. Pure.

use super::RequestError;

/// A decoded query string.
pub(super) struct Query(Vec<(String, String)>);

impl Query {
    pub(super) fn new(query: Option<&str>) -> Self {
        Self(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// Every value of `key`, in order.
    pub(super) fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The first value of `key`.
    pub(super) fn one(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean as Go's `strconv.ParseBool` reads it; absent is false.
    pub(super) fn flag(&self, key: &str) -> Result<bool, RequestError> {
        match self.one(key) {
            None => Ok(false),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
            Some("" | "0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
            Some(other) => Err(RequestError::BadRequest(format!(
                "{key}={other:?} is not a boolean"
            ))),
        }
    }

    /// A non-negative integer.
    pub(super) fn number(&self, key: &str) -> Result<Option<u64>, RequestError> {
        self.one(key)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    RequestError::BadRequest(format!("{key}={v:?} is not a non-negative integer"))
                })
            })
            .transpose()
    }
}
