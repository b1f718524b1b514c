//! `[aws]` checked: when berth launches instances (`aws` pools, or
//! `[aws.masters]`) the masters' `berth server` needs to know where node
//! instances download berth, and launched masters are reached with the
//! file's `[ssh]` settings and `data_dir`. An `[aws]` with neither (a
//! Terraform-made cluster without pools) only names the region.

use toml::Spanned;

use super::model::Aws;
use super::raw::RawSsh;
use super::validate::{Checker, Defaults};
use super::{ssh, ConfigError};
use crate::aws::AwsClusterConfig;

/// The `[aws]` block, resolved; None when the file has none.
pub(crate) fn aws(
    checker: &Checker<'_>,
    defaults: &Defaults<'_>,
    raw: Option<&Spanned<AwsClusterConfig>>,
    has_aws_pools: bool,
) -> Result<Option<Aws>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let config = raw.get_ref();
    let launches = has_aws_pools || config.masters.is_some();
    match &config.binary_url {
        None if !launches => {}
        None => {
            return Err(checker.error(
                raw.span(),
                "aws.binary_url",
                "missing: berth launches instances here (aws pools or [aws.masters]), and they download the berth executable from this URL (the masters' `berth server --aws-binary-url`)",
            ));
        }
        Some(url)
            if !url.get_ref().starts_with("https://") && !url.get_ref().starts_with("http://") =>
        {
            return Err(checker.error(
                url.span(),
                "aws.binary_url",
                format!("{:?} is not an http:// or https:// URL", url.get_ref()),
            ));
        }
        Some(_) => {}
    }
    let ssh = ssh::resolve(checker, defaults.ssh, &RawSsh::default(), "aws.masters")?;
    Ok(Some(Aws {
        config: config.clone(),
        ssh,
        data_dir: defaults.data_dir.clone(),
    }))
}
