//! `berth secrets reencrypt`: rewrites every Secret through the API, unchanged,
//! so each is stored again with the first provider of the server's
//! `--encryption-provider-config` — the step between "new key first" and
//! "old key removed" of a key rotation (upstream's recipe is
//! `kubectl get secrets -A -o json | kubectl replace -f -`).

use anyhow::Context;
use clap::{Args, Subcommand};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, PostParams};
use kube::ResourceExt;

use crate::agent::ConnectionFlags;

/// Secrets listed per request.
const PAGE: u32 = 500;
/// Replace attempts per Secret before giving up on concurrent writers.
const ATTEMPTS: usize = 5;

/// Flags of `berth secrets`.
#[derive(Args, Debug)]
pub struct SecretsArgs {
    #[command(flatten)]
    connection: ConnectionFlags,
    #[command(subcommand)]
    command: SecretsCommand,
}

#[derive(Subcommand, Debug)]
enum SecretsCommand {
    /// Rewrite every Secret unchanged, so it is stored with the first
    /// provider of the server's encryption configuration (run after a key
    /// rotation's "new key first" restart, before the old key is removed).
    Reencrypt,
}

/// Runs `berth secrets …`.
pub async fn run(args: SecretsArgs) -> anyhow::Result<()> {
    let client = args.connection.client().await?;
    match args.command {
        SecretsCommand::Reencrypt => {
            let (rewritten, gone) = reencrypt_all(&client).await?;
            println!("{rewritten} secrets rewritten with the first encryption provider");
            if gone > 0 {
                println!("{gone} secrets were deleted while rewriting");
            }
        }
    }
    Ok(())
}

/// Replaces every Secret, page by page; answers how many were rewritten and
/// how many disappeared before their turn.
async fn reencrypt_all(client: &kube::Client) -> anyhow::Result<(usize, usize)> {
    let all: Api<Secret> = Api::all(client.clone());
    let (mut rewritten, mut gone) = (0, 0);
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let page = all.list(&params).await.context("listing Secrets")?;
        for secret in page.items {
            let namespace = secret.namespace().unwrap_or_default();
            let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
            if rewrite(&api, secret).await? {
                rewritten += 1;
            } else {
                gone += 1;
            }
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok((rewritten, gone)),
        }
    }
}

/// Replaces `secret` with itself at its resourceVersion, reading it again
/// after a conflict; false when it was deleted meanwhile.
async fn rewrite(api: &Api<Secret>, mut secret: Secret) -> anyhow::Result<bool> {
    let name = secret.name_any();
    let namespace = secret.namespace().unwrap_or_default();
    for _ in 0..ATTEMPTS {
        match api.replace(&name, &PostParams::default(), &secret).await {
            Ok(_) => return Ok(true),
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(false),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                match api
                    .get_opt(&name)
                    .await
                    .with_context(|| format!("reading Secret {namespace}/{name} again"))?
                {
                    Some(current) => secret = current,
                    None => return Ok(false),
                }
            }
            Err(e) => return Err(e).context(format!("rewriting Secret {namespace}/{name}")),
        }
    }
    anyhow::bail!(
        "Secret {namespace}/{name} kept changing: {ATTEMPTS} rewrites conflicted; run the command again"
    )
}
