//! The rules of one `[[pools]]` entry: its name, provider, machines (or, for
//! `aws`, its NodePool settings), labels and taints as a kubelet would
//! register them, and its per-node reservations.

use berth_api::quantity::Quantity;
use berth_api::validation::{is_dns1123_label, is_qualified_name, is_valid_label_value};
use toml::Spanned;

use super::aws_pool::{aws_pool, refuse_aws_keys};
use super::model::{Pool, Provider, Taint, GPU_TAINT_KEY, GPU_TAINT_VALUE, POOL_LABEL};
use super::node_labels::check_node_label;
use super::raw::RawPool;
use super::taint::parse_taint;
use super::validate::{key_field, machine, Checker, Defaults, Labels};
use super::ConfigError;

/// Most pods a node may be told to take (kubelet's own bound is the pod CIDR size).
const MAX_PODS_LIMIT: i64 = 1024;

/// Checks one pool at `field` (`pools[2]`) and builds it.
pub(crate) fn pool(
    checker: &Checker<'_>,
    defaults: &Defaults<'_>,
    raw: &Spanned<RawPool>,
    field: &str,
) -> Result<Pool, ConfigError> {
    let span = raw.span();
    let raw = raw.get_ref();
    checker.problems(
        &raw.name,
        &format!("{field}.name"),
        is_dns1123_label(raw.name.get_ref()),
    )?;
    let name = raw.name.get_ref().clone();
    let provider = raw
        .provider
        .as_ref()
        .map_or(Provider::Ssh, |p| *p.get_ref());
    let (machines, aws) = match provider {
        Provider::Aws => (Vec::new(), Some(aws_pool(checker, raw, field, span)?)),
        Provider::Ssh => {
            refuse_aws_keys(checker, raw, field)?;
            if raw.machines.is_empty() {
                return Err(checker.error(
                    span,
                    &format!("{field}.machines"),
                    "a pool with provider \"ssh\" needs at least one machine: machines = [{ host = \"...\" }]",
                ));
            }
            let machines = raw
                .machines
                .iter()
                .enumerate()
                .map(|(index, m)| {
                    machine(checker, defaults, m, &format!("{field}.machines[{index}]"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            (machines, None)
        }
    };
    let labels = labels(checker, raw, field, &name)?;
    let taints = taints(checker, raw, field)?;
    let max_pods = match &raw.max_pods {
        Some(value) => Some(
            checker.require(
                value,
                &format!("{field}.max_pods"),
                u32::try_from(*value.get_ref())
                    .ok()
                    .filter(|n| (1..=MAX_PODS_LIMIT).contains(&i64::from(*n)))
                    .ok_or(format!("must be between 1 and {MAX_PODS_LIMIT}")),
            )?,
        ),
        None => None,
    };
    Ok(Pool {
        name,
        provider,
        machines,
        labels,
        taints,
        gpu: raw.gpu,
        max_pods,
        reserved_cpu: quantity(
            checker,
            raw.reserved_cpu.as_ref(),
            &format!("{field}.reserved_cpu"),
        )?,
        reserved_memory: quantity(
            checker,
            raw.reserved_memory.as_ref(),
            &format!("{field}.reserved_memory"),
        )?,
        aws,
    })
}

fn labels(
    checker: &Checker<'_>,
    raw: &RawPool,
    field: &str,
    pool: &str,
) -> Result<Labels, ConfigError> {
    let mut labels = Labels::new();
    for (key, value) in &raw.labels {
        let at = key_field(&format!("{field}.labels"), key.get_ref());
        checker.problems(key, &at, is_qualified_name(key.get_ref()))?;
        checker.problems(value, &at, is_valid_label_value(value.get_ref()))?;
        checker.require(key, &at, check_node_label(key.get_ref()))?;
        if key.get_ref() == POOL_LABEL && value.get_ref() != pool {
            return Err(checker.error(key.span(), &at, format!(
                "{POOL_LABEL} is set by berth to the pool's name ({pool:?}); remove it or set it to {pool:?}"
            )));
        }
        labels.insert(key.get_ref().clone(), value.get_ref().clone());
    }
    labels.insert(POOL_LABEL.to_owned(), pool.to_owned());
    Ok(labels)
}

fn taints(checker: &Checker<'_>, raw: &RawPool, field: &str) -> Result<Vec<Taint>, ConfigError> {
    let mut taints: Vec<Taint> = Vec::new();
    for (index, spec) in raw.taints.iter().enumerate() {
        let at = format!("{field}.taints[{index}]");
        let taint = checker.require(spec, &at, parse_taint(spec.get_ref()))?;
        if let Some(first) = taints
            .iter()
            .position(|t| t.key == taint.key && t.effect == taint.effect)
        {
            return Err(checker.error(
                spec.span(),
                &at,
                format!(
                    "taints must be unique by key and effect pair: {} repeats taints[{first}]",
                    taint
                ),
            ));
        }
        taints.push(taint);
    }
    let gpu_taint = Taint {
        key: GPU_TAINT_KEY.to_owned(),
        value: GPU_TAINT_VALUE.to_owned(),
        effect: "NoSchedule".to_owned(),
    };
    let present = taints
        .iter()
        .any(|t| t.key == gpu_taint.key && t.effect == gpu_taint.effect);
    if raw.gpu && !present {
        taints.push(gpu_taint);
    }
    Ok(taints)
}

/// A non-negative quantity at `field`, when set.
pub(super) fn quantity(
    checker: &Checker<'_>,
    value: Option<&Spanned<String>>,
    field: &str,
) -> Result<Option<Quantity>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    let quantity = checker.require(value, field, Quantity::parse(value.get_ref()))?;
    if quantity.signum() < 0 {
        return Err(checker.error(value.span(), field, "must be greater than or equal to 0"));
    }
    Ok(Some(quantity))
}
