//! The rules of a `provider = "aws"` pool: its EC2 launch template, size,
//! capacity, limits and lifetimes, checked as the NodePool API would check
//! them but pointing at the line of `cluster.toml` that is wrong. An `ssh`
//! pool refuses these keys, and an `aws` pool the `ssh`-only ones.

use std::collections::BTreeMap;
use std::ops::Range;

use berth_api::kinds::batch::cron::parse_duration;
use berth_api::nodepool::{AwsTemplate, RootVolume, CAPACITY_TYPES, VOLUME_TYPES};
use toml::Spanned;

use super::model::{AwsPool, PoolSize};
use super::pool::quantity;
use super::raw::RawPool;
use super::validate::{key_field, Checker};
use super::ConfigError;

/// The resource names `capacity` and `limits` take, and the API's name of each.
const RESOURCES: [(&str, &str); 3] = [
    ("cpu", "cpu"),
    ("memory", "memory"),
    ("gpu", "nvidia.com/gpu"),
];

/// Checks the `aws` keys of pool `raw` at `field` (`pools[2]`), whose table
/// starts at `span`, and builds its NodePool settings.
pub(crate) fn aws_pool(
    checker: &Checker<'_>,
    raw: &RawPool,
    field: &str,
    span: Range<usize>,
) -> Result<AwsPool, ConfigError> {
    let at = |key: &str| format!("{field}.{key}");
    if let Some(machine) = raw.machines.first() {
        return Err(checker.error(
            machine.span(),
            &at("machines"),
            "a pool with provider \"aws\" lists no machines: the NodePool controller launches its instances; remove machines",
        ));
    }
    for (key, value) in [
        ("max_pods", raw.max_pods.as_ref().map(Spanned::span)),
        ("reserved_cpu", raw.reserved_cpu.as_ref().map(Spanned::span)),
        (
            "reserved_memory",
            raw.reserved_memory.as_ref().map(Spanned::span),
        ),
    ] {
        if let Some(span) = value {
            return Err(checker.error(
                span,
                &at(key),
                "is only for provider \"ssh\" pools (a NodePool has no such setting)",
            ));
        }
    }
    let instance_types = strings(checker, raw.instance_types.as_ref(), &at("instance_types"))?;
    if instance_types.is_empty() {
        let span = raw
            .instance_types
            .as_ref()
            .map_or(span.clone(), |v| v.span());
        return Err(checker.error(
            span,
            &at("instance_types"),
            "a pool with provider \"aws\" needs instance types in order of preference: instance_types = [\"m7i.xlarge\"]",
        ));
    }
    let ami =
        match &raw.ami {
            Some(ami) if !ami.get_ref().trim().is_empty() => ami.get_ref().clone(),
            other => return Err(checker.error(
                other.as_ref().map_or(span, |v| v.span()),
                &at("ami"),
                "a pool with provider \"aws\" needs the AMI its instances boot: ami = \"ami-…\"",
            )),
        };
    let template = AwsTemplate {
        instance_types,
        ami,
        subnet_ids: strings(checker, raw.subnet_ids.as_ref(), &at("subnet_ids"))?,
        security_group_ids: strings(
            checker,
            raw.security_group_ids.as_ref(),
            &at("security_group_ids"),
        )?,
        key_name: text(raw.key_name.as_ref()),
        capacity_type: capacity_type(checker, raw, field)?,
        root_volume: root_volume(checker, raw, field)?,
        iam_instance_profile: text(raw.iam_instance_profile.as_ref()),
        user_data: text(raw.user_data.as_ref()),
    };
    Ok(AwsPool {
        template,
        size: size(checker, raw, field)?,
        capacity: resources(checker, raw.capacity.as_ref(), &at("capacity"))?,
        limits: resources(checker, raw.limits.as_ref(), &at("limits"))?,
        expire_after: duration(checker, raw.expire_after.as_ref(), &at("expire_after"))?,
        consolidate_after: duration(
            checker,
            raw.consolidate_after.as_ref(),
            &at("consolidate_after"),
        )?,
    })
}

/// Refuses the `aws`-only keys in an `ssh` pool, naming the first.
pub(crate) fn refuse_aws_keys(
    checker: &Checker<'_>,
    raw: &RawPool,
    field: &str,
) -> Result<(), ConfigError> {
    match raw.aws_keys().into_iter().next() {
        None => Ok(()),
        Some((key, span)) => Err(checker.error(
            span,
            &format!("{field}.{key}"),
            "is only for provider \"aws\" pools; set provider = \"aws\" or remove it",
        )),
    }
}

fn text(value: Option<&Spanned<String>>) -> Option<String> {
    value.map(|v| v.get_ref().clone())
}

/// A list of non-empty, distinct strings.
fn strings(
    checker: &Checker<'_>,
    value: Option<&Spanned<Vec<Spanned<String>>>>,
    field: &str,
) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = Vec::new();
    for (index, item) in value
        .map(Spanned::get_ref)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{field}[{index}]");
        if item.get_ref().trim().is_empty() {
            return Err(checker.error(item.span(), &at, "must not be empty"));
        }
        if let Some(first) = out.iter().position(|s| s == item.get_ref()) {
            return Err(checker.error(
                item.span(),
                &at,
                format!("{:?} repeats {field}[{first}]", item.get_ref()),
            ));
        }
        out.push(item.get_ref().clone());
    }
    Ok(out)
}

/// `spot = true` or `capacity_type`, not both.
fn capacity_type(
    checker: &Checker<'_>,
    raw: &RawPool,
    field: &str,
) -> Result<Option<String>, ConfigError> {
    match (&raw.spot, &raw.capacity_type) {
        (Some(_), Some(kind)) => Err(checker.error(
            kind.span(),
            &format!("{field}.capacity_type"),
            "set spot or capacity_type, not both",
        )),
        (Some(spot), None) => Ok(spot.get_ref().then(|| "spot".to_owned())),
        (None, Some(kind)) if CAPACITY_TYPES.contains(&kind.get_ref().as_str()) => {
            Ok(Some(kind.get_ref().clone()))
        }
        (None, Some(kind)) => Err(checker.error(
            kind.span(),
            &format!("{field}.capacity_type"),
            format!(
                "{:?} is not a capacity type; allowed: {}",
                kind.get_ref(),
                quoted(CAPACITY_TYPES)
            ),
        )),
        (None, None) => Ok(None),
    }
}

/// `root_volume_gib` (above 0) with an optional `root_volume_type`.
fn root_volume(
    checker: &Checker<'_>,
    raw: &RawPool,
    field: &str,
) -> Result<Option<RootVolume>, ConfigError> {
    let type_ = match &raw.root_volume_type {
        Some(kind) if !VOLUME_TYPES.contains(&kind.get_ref().as_str()) => {
            return Err(checker.error(
                kind.span(),
                &format!("{field}.root_volume_type"),
                format!(
                    "{:?} is not an EBS volume type; allowed: {}",
                    kind.get_ref(),
                    quoted(VOLUME_TYPES)
                ),
            ))
        }
        kind => text(kind.as_ref()),
    };
    let Some(size) = &raw.root_volume_gib else {
        return match &raw.root_volume_type {
            Some(kind) => Err(checker.error(
                kind.span(),
                &format!("{field}.root_volume_type"),
                "needs root_volume_gib (the volume's size)",
            )),
            None => Ok(None),
        };
    };
    let size_gib = checker.require(
        size,
        &format!("{field}.root_volume_gib"),
        i32::try_from(*size.get_ref())
            .ok()
            .filter(|n| *n > 0)
            .ok_or("must be a size in GiB greater than 0"),
    )?;
    Ok(Some(RootVolume { size_gib, type_ }))
}

/// `replicas`, or `min_replicas`/`max_replicas`, or neither (autoscaled from 0).
fn size(checker: &Checker<'_>, raw: &RawPool, field: &str) -> Result<PoolSize, ConfigError> {
    let count = |value: &Option<Spanned<i64>>, key: &str| {
        value
            .as_ref()
            .map(|v| {
                checker.require(
                    v,
                    &format!("{field}.{key}"),
                    i32::try_from(*v.get_ref())
                        .ok()
                        .filter(|n| *n >= 0)
                        .ok_or("must be greater than or equal to 0"),
                )
            })
            .transpose()
    };
    let replicas = count(&raw.replicas, "replicas")?;
    let min = count(&raw.min_replicas, "min_replicas")?;
    let max = count(&raw.max_replicas, "max_replicas")?;
    if let (Some(_), Some(bound)) = (
        replicas,
        raw.min_replicas.as_ref().or(raw.max_replicas.as_ref()),
    ) {
        let key = if raw.min_replicas.is_some() {
            "min_replicas"
        } else {
            "max_replicas"
        };
        return Err(checker.error(
            bound.span(),
            &format!("{field}.{key}"),
            "set replicas (a fixed size) or min_replicas/max_replicas (autoscaled), not both",
        ));
    }
    if let (Some(min), Some(max), Some(value)) = (min, max, &raw.max_replicas) {
        if max < min {
            return Err(checker.error(
                value.span(),
                &format!("{field}.max_replicas"),
                format!("must be greater than or equal to min_replicas ({min})"),
            ));
        }
    }
    Ok(match replicas {
        Some(replicas) => PoolSize::Fixed(replicas),
        None => PoolSize::Autoscaled { min, max },
    })
}

/// `capacity`/`limits`: quantities by `cpu`, `memory` and `gpu`, keyed by the API's names.
fn resources(
    checker: &Checker<'_>,
    value: Option<&Spanned<BTreeMap<Spanned<String>, Spanned<String>>>>,
    field: &str,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for (key, quantity_text) in value.map(Spanned::get_ref).into_iter().flatten() {
        let at = key_field(field, key.get_ref());
        let Some((_, name)) = RESOURCES.iter().find(|(k, _)| k == key.get_ref()) else {
            let allowed: Vec<&str> = RESOURCES.iter().map(|(k, _)| *k).collect();
            return Err(checker.error(
                key.span(),
                &at,
                format!("unknown resource; allowed: {}", quoted(&allowed)),
            ));
        };
        quantity(checker, Some(quantity_text), &at)?;
        out.insert((*name).to_owned(), quantity_text.get_ref().clone());
    }
    Ok(out)
}

/// A Go duration (`30s`, `720h`) or `Never`.
fn duration(
    checker: &Checker<'_>,
    value: Option<&Spanned<String>>,
    field: &str,
) -> Result<Option<String>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    let text = value.get_ref();
    let ok = text == "Never" || parse_duration(text).is_ok_and(|nanos| nanos >= 0.0);
    if ok {
        Ok(Some(text.clone()))
    } else {
        Err(checker.error(
            value.span(),
            field,
            format!("{text:?} must be a duration such as 30s or 720h, or Never"),
        ))
    }
}

/// `"a", "b"` for an error's list of allowed values.
fn quoted(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}
