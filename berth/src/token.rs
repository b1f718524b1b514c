//! `berth token create|list|delete`: bootstrap tokens for joining nodes, like
//! `kubeadm token`. A token is a `bootstrap.kubernetes.io/token` Secret in
//! `kube-system`; `berth agent --bootstrap-token` presents it once to get the
//! node its own client certificate.

use anyhow::Context;
use berth_api::bootstrap_token::{self, NewToken};
use clap::{Args, Subcommand};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, PostParams};

use crate::agent::ConnectionFlags;

/// Flags of `berth token`.
#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(flatten)]
    connection: ConnectionFlags,
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Create a bootstrap token and print it (`ID.SECRET`).
    Create {
        /// How long the token is valid (`24h`, `30m`, `90s`); `0` never expires.
        #[arg(long, default_value = "24h")]
        ttl: String,
        /// Extra groups the token authenticates with (each `system:bootstrappers:…`).
        #[arg(long, value_delimiter = ',', default_value = bootstrap_token::DEFAULT_GROUP)]
        groups: Vec<String>,
        /// A description kept with the token.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List the bootstrap tokens with their expiry and groups.
    List,
    /// Delete bootstrap tokens (by `ID` or `ID.SECRET`), so they no longer authenticate.
    Delete {
        /// The tokens.
        #[arg(required = true)]
        tokens: Vec<String>,
    },
}

/// Runs `berth token …`.
pub async fn run(args: TokenArgs) -> anyhow::Result<()> {
    let client = args.connection.client().await?;
    let secrets: Api<Secret> = Api::namespaced(client, bootstrap_token::NAMESPACE);
    match args.command {
        TokenCommand::Create {
            ttl,
            groups,
            description,
        } => {
            let ttl = berth_agent::config::parse_duration("--ttl", &ttl)?;
            for group in &groups {
                anyhow::ensure!(
                    bootstrap_token::valid_group(group),
                    "--groups {group:?}: each group must look like system:bootstrappers:NAME (lower-case letters, digits, ':' and '-')"
                );
            }
            let (id, secret) = NewToken::from_random(&rand::random());
            let expiration = if ttl.is_zero() {
                None
            } else {
                let ttl = jiff::SignedDuration::try_from(ttl).context("--ttl is too long")?;
                Some(
                    jiff::Timestamp::now()
                        .checked_add(ttl)
                        .context("--ttl is too long")?,
                )
            };
            let token = NewToken {
                id,
                secret,
                expiration,
                groups,
                description,
            };
            let object: Secret = serde_json::from_value(token.secret())?;
            secrets
                .create(&PostParams::default(), &object)
                .await
                .context("creating the bootstrap token Secret")?;
            println!("{}", token.token());
        }
        TokenCommand::List => {
            let now = jiff::Timestamp::now();
            let mut rows = vec![[
                "TOKEN".to_owned(),
                "TTL".to_owned(),
                "EXPIRES".to_owned(),
                "USAGES".to_owned(),
                "DESCRIPTION".to_owned(),
                "EXTRA GROUPS".to_owned(),
            ]];
            for secret in secrets.list(&ListParams::default()).await?.items {
                let value = serde_json::to_value(&secret)?;
                if value.get("type").and_then(|t| t.as_str()) != Some(bootstrap_token::SECRET_TYPE)
                {
                    continue;
                }
                rows.push(list_row(&value, now));
            }
            print!("{}", columns(&rows));
        }
        TokenCommand::Delete { tokens } => {
            for token in tokens {
                let id = token.split('.').next().unwrap_or_default();
                let name = bootstrap_token::secret_name(id);
                match secrets.delete(&name, &Default::default()).await {
                    Ok(_) => println!("bootstrap token \"{id}\" deleted"),
                    Err(kube::Error::Api(status)) if status.code == 404 => {
                        anyhow::bail!("bootstrap token \"{id}\" not found")
                    }
                    Err(e) => return Err(e).context(format!("deleting bootstrap token {id}")),
                }
            }
        }
    }
    Ok(())
}

/// One `berth token list` row, as `kubeadm token list` prints it.
fn list_row(secret: &serde_json::Value, now: jiff::Timestamp) -> [String; 6] {
    let get = |key| bootstrap_token::data_value(secret, key).unwrap_or_default();
    let (ttl, expires) = match bootstrap_token::expiration(secret) {
        Some(at) if at > now => {
            let left = now.duration_until(at).as_secs();
            let ttl = if left >= 3600 {
                format!("{}h", left / 3600)
            } else if left >= 60 {
                format!("{}m", left / 60)
            } else {
                format!("{left}s")
            };
            (ttl, at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        }
        Some(at) => (
            "<invalid>".to_owned(),
            at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        ),
        None => ("<forever>".to_owned(), "<never>".to_owned()),
    };
    let usages: Vec<&str> = [
        ("usage-bootstrap-authentication", "authentication"),
        ("usage-bootstrap-signing", "signing"),
    ]
    .into_iter()
    .filter(|(key, _)| get(key) == "true")
    .map(|(_, name)| name)
    .collect();
    let description = get("description");
    [
        format!("{}.{}", get("token-id"), get("token-secret")),
        ttl,
        expires,
        usages.join(","),
        if description.is_empty() {
            "<none>".to_owned()
        } else {
            description
        },
        get("auth-extra-groups"),
    ]
}

/// Rows padded into columns three spaces apart, as kubectl prints tables.
fn columns(rows: &[[String; 6]]) -> String {
    let mut widths = [0usize; 6];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_rows_show_ttl_usages_and_groups() {
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let token = NewToken {
            id: "abcdef".into(),
            secret: "0123456789abcdef".into(),
            expiration: Some("2026-01-02T00:00:00Z".parse().unwrap()),
            groups: vec![bootstrap_token::DEFAULT_GROUP.into()],
            description: String::new(),
        };
        let row = list_row(&token.secret(), now);
        assert_eq!(
            row,
            [
                "abcdef.0123456789abcdef",
                "24h",
                "2026-01-02T00:00:00Z",
                "authentication,signing",
                "<none>",
                bootstrap_token::DEFAULT_GROUP,
            ]
        );
        let forever = NewToken {
            expiration: None,
            ..token
        };
        let row = list_row(&forever.secret(), now);
        assert_eq!(row[1], "<forever>");
        assert_eq!(row[2], "<never>");
    }
}
