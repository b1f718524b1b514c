//! Bootstrap tokens (upstream's `bootstrap.kubernetes.io/token` Secrets in
//! `kube-system`): the token format, the Secret a token is stored as, and the
//! rules that decide whether a presented `ID.SECRET` authenticates and as whom.
//! Pure: the caller fetches the Secret and passes the clock.

use base64::Engine;
use serde_json::{json, Map, Value};

/// The namespace bootstrap token Secrets live in.
pub const NAMESPACE: &str = "kube-system";
/// The Secret type that marks a bootstrap token.
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
/// The group every bootstrap token user is in.
pub const BOOTSTRAPPERS_GROUP: &str = "system:bootstrappers";
/// The user name prefix: the user is `system:bootstrap:ID`.
pub const USER_PREFIX: &str = "system:bootstrap:";
/// The extra group `berth token create` gives by default (kubeadm's is
/// `system:bootstrappers:kubeadm:default-node-token`).
pub const DEFAULT_GROUP: &str = "system:bootstrappers:berth:default-node-token";

/// Why a presented bootstrap token does not authenticate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    /// The Secret is not a bootstrap token Secret (wrong type).
    #[error("secret {0} is not of type {SECRET_TYPE}")]
    WrongType(String),
    /// The secret half of the token does not match, or the id inside differs.
    #[error("bootstrap token {0} does not match its secret")]
    Mismatch(String),
    /// The token expired.
    #[error("bootstrap token {id} expired at {expiration}")]
    Expired {
        /// The token id.
        id: String,
        /// When it expired (RFC 3339).
        expiration: String,
    },
    /// The token is being deleted.
    #[error("bootstrap token {0} is being deleted")]
    Deleted(String),
    /// The token is not meant for authentication.
    #[error("bootstrap token {0} is not usable for authentication (usage-bootstrap-authentication is not \"true\")")]
    NotForAuthentication(String),
    /// An extra group does not start with `system:bootstrappers:`.
    #[error("bootstrap token {id} has an invalid extra group {group:?}")]
    BadGroup {
        /// The token id.
        id: String,
        /// The group.
        group: String,
    },
}

/// The id and secret halves of `ID.SECRET` (`[a-z0-9]{6}.[a-z0-9]{16}`), or
/// `None` when the text is not a bootstrap token at all.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let ok = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (ok(id, 6) && ok(secret, 16)).then_some((id, secret))
}

/// The name of the Secret holding token `id`.
pub fn secret_name(id: &str) -> String {
    format!("bootstrap-token-{id}")
}

/// Whether `group` may be an extra group of a bootstrap token (upstream's
/// `^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$`).
pub fn valid_group(group: &str) -> bool {
    let Some(rest) = group.strip_prefix("system:bootstrappers:") else {
        return false;
    };
    !rest.is_empty()
        && rest.len() <= 256
        && rest
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b':' || b == b'-')
        && rest
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// What a token Secret is made of, for `berth token create`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// The six-character id.
    pub id: String,
    /// The sixteen-character secret.
    pub secret: String,
    /// When it expires; `None` never.
    pub expiration: Option<jiff::Timestamp>,
    /// Extra groups (each `system:bootstrappers:…`).
    pub groups: Vec<String>,
    /// A human description.
    pub description: String,
}

impl NewToken {
    /// A token with a random id and secret drawn from `random` (any bytes;
    /// each is mapped onto `[a-z0-9]`).
    pub fn from_random(random: &[u8; 22]) -> (String, String) {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let text: String = random
            .iter()
            .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
            .collect();
        (text[..6].to_owned(), text[6..].to_owned())
    }

    /// The token as the node presents it: `ID.SECRET`.
    pub fn token(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }

    /// The Secret that stores it (upstream's field names, values in `stringData`).
    pub fn secret(&self) -> Value {
        let mut data = Map::new();
        data.insert("token-id".into(), json!(self.id));
        data.insert("token-secret".into(), json!(self.secret));
        data.insert("usage-bootstrap-authentication".into(), json!("true"));
        data.insert("usage-bootstrap-signing".into(), json!("true"));
        if !self.description.is_empty() {
            data.insert("description".into(), json!(self.description));
        }
        if let Some(at) = self.expiration {
            data.insert("expiration".into(), json!(rfc3339(at)));
        }
        if !self.groups.is_empty() {
            data.insert("auth-extra-groups".into(), json!(self.groups.join(",")));
        }
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret_name(&self.id), "namespace": NAMESPACE},
            "type": SECRET_TYPE,
            "stringData": data,
        })
    }
}

fn rfc3339(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// One `data` value of a Secret, decoded (`stringData` is folded into `data`
/// by the server, but is read too).
pub fn data_value(secret: &Value, key: &str) -> Option<String> {
    if let Some(text) = secret.pointer(&format!("/stringData/{key}")) {
        return text.as_str().map(str::to_owned);
    }
    let encoded = secret.pointer(&format!("/data/{key}"))?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// When the token in `secret` expires, if it does and the field parses.
pub fn expiration(secret: &Value) -> Option<jiff::Timestamp> {
    data_value(secret, "expiration")?.parse().ok()
}

/// Whether the token Secret has expired at `now` (the tokencleaner deletes it then).
pub fn is_expired(secret: &Value, now: jiff::Timestamp) -> bool {
    expiration(secret).is_some_and(|at| at <= now)
}

/// The user and groups token `id`/`token_secret` authenticates as with the
/// stored `secret` at `now`: `system:bootstrap:ID` in `system:bootstrappers`
/// and the token's extra groups; or why not.
pub fn authenticate(
    secret: &Value,
    id: &str,
    token_secret: &str,
    now: jiff::Timestamp,
) -> Result<(String, Vec<String>), TokenRefusal> {
    let name = secret_name(id);
    if secret.get("type").and_then(Value::as_str) != Some(SECRET_TYPE) {
        return Err(TokenRefusal::WrongType(name));
    }
    if secret.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(TokenRefusal::Deleted(id.to_owned()));
    }
    let stored_secret = data_value(secret, "token-secret").unwrap_or_default();
    let stored_id = data_value(secret, "token-id").unwrap_or_default();
    if !constant_time_eq(stored_secret.as_bytes(), token_secret.as_bytes()) || stored_id != id {
        return Err(TokenRefusal::Mismatch(id.to_owned()));
    }
    if let Some(text) = data_value(secret, "expiration") {
        let expired = text.parse::<jiff::Timestamp>().map_or(true, |at| at <= now);
        if expired {
            return Err(TokenRefusal::Expired {
                id: id.to_owned(),
                expiration: text,
            });
        }
    }
    if data_value(secret, "usage-bootstrap-authentication").as_deref() != Some("true") {
        return Err(TokenRefusal::NotForAuthentication(id.to_owned()));
    }
    let mut groups = vec![BOOTSTRAPPERS_GROUP.to_owned()];
    for group in data_value(secret, "auth-extra-groups")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
    {
        if !valid_group(group) {
            return Err(TokenRefusal::BadGroup {
                id: id.to_owned(),
                group: group.to_owned(),
            });
        }
        if !groups.iter().any(|g| g == group) {
            groups.push(group.to_owned());
        }
    }
    Ok((format!("{USER_PREFIX}{id}"), groups))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
