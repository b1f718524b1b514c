//! Pod Security admission's pure rules (upstream's `pod-security-admission`):
//! the privileged/baseline/restricted levels and their versioned checks, the
//! policy a namespace's `pod-security.kubernetes.io/*` labels ask for, and the
//! exact messages users see. The API server reads namespaces and pods and
//! calls in here; nothing here performs I/O.

mod config;
mod host;
pub mod pod;
mod privileges;
mod profiles;
mod registry;
mod users;
mod volumes;

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::field::FieldCause;
pub use config::{ConfigError, Configuration};
pub use pod::PodView;

/// The prefix of the namespace labels (and audit annotations) of Pod Security.
pub const LABEL_PREFIX: &str = "pod-security.kubernetes.io/";
/// Namespace label: the level pods must meet to be created.
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";
/// Namespace label: the version of the enforced level.
pub const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";
/// Namespace label: the level whose violations are recorded for audit.
pub const AUDIT_LABEL: &str = "pod-security.kubernetes.io/audit";
/// Namespace label: the version of the audited level.
pub const AUDIT_VERSION_LABEL: &str = "pod-security.kubernetes.io/audit-version";
/// Namespace label: the level whose violations are returned as warnings.
pub const WARN_LABEL: &str = "pod-security.kubernetes.io/warn";
/// Namespace label: the version of the warned level.
pub const WARN_VERSION_LABEL: &str = "pod-security.kubernetes.io/warn-version";
/// Audit annotation upstream records the audit level's violations under.
pub const AUDIT_VIOLATIONS_ANNOTATION: &str = "pod-security.kubernetes.io/audit-violations";

/// A Pod Security Standards level, from most to least permissive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// No restrictions (the default).
    Privileged,
    /// Prevents known privilege escalations.
    Baseline,
    /// Current pod hardening best practice.
    Restricted,
}

impl Level {
    /// Parses a label value; upstream fails closed to `restricted`.
    pub fn parse(text: &str) -> Result<Level, Level> {
        match text {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err(Level::Restricted),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        })
    }
}

/// The policy version a level is evaluated at: `v1.N` or `latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// `v1.N`.
    Minor(u32),
    /// The newest checks this server knows.
    Latest,
}

impl Version {
    /// Parses `latest` or `v1.N`; upstream falls back to `latest` on error.
    pub fn parse(text: &str) -> Result<Version, Version> {
        if text == "latest" {
            return Ok(Version::Latest);
        }
        let minor = text.strip_prefix("v1.").filter(|m| {
            !m.is_empty()
                && m.bytes().all(|b| b.is_ascii_digit())
                && (m.len() == 1 || !m.starts_with('0'))
        });
        minor
            .and_then(|m| m.parse().ok())
            .map(Version::Minor)
            .ok_or(Version::Latest)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Minor(m) => write!(f, "v1.{m}"),
            Version::Latest => f.write_str("latest"),
        }
    }
}

/// A level at a version, written `restricted:latest` in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LevelVersion {
    /// The level.
    pub level: Level,
    /// Its version.
    pub version: Version,
}

impl LevelVersion {
    /// `privileged:latest`, what an unlabelled namespace gets by default.
    pub const PRIVILEGED: LevelVersion = LevelVersion {
        level: Level::Privileged,
        version: Version::Latest,
    };
}

impl fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level, self.version)
    }
}

/// The three modes of a namespace's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Violations refuse the pod.
    pub enforce: LevelVersion,
    /// Violations are recorded for audit.
    pub audit: LevelVersion,
    /// Violations are returned as warnings.
    pub warn: LevelVersion,
}

impl Default for Policy {
    /// Upstream's default without configuration: privileged everywhere.
    fn default() -> Self {
        Policy {
            enforce: LevelVersion::PRIVILEGED,
            audit: LevelVersion::PRIVILEGED,
            warn: LevelVersion::PRIVILEGED,
        }
    }
}

impl Policy {
    /// Every mode is privileged: nothing to evaluate.
    pub fn fully_privileged(&self) -> bool {
        [self.enforce, self.audit, self.warn]
            .iter()
            .all(|lv| lv.level == Level::Privileged)
    }
}

/// The policy a namespace's labels ask for over `defaults`, and the problems
/// of labels that do not parse (upstream's `PolicyToEvaluate`): a bad enforce
/// level enforces `restricted`, a bad audit or warn level is `privileged`, a
/// bad version is `latest`; warn follows a stricter enforce level unless set.
pub fn policy_from_labels(
    labels: &BTreeMap<String, String>,
    defaults: Policy,
) -> (Policy, Vec<FieldCause>) {
    let mut policy = defaults;
    let mut causes = Vec::new();
    let mut invalid = |label: &str, value: &str, why: &str| {
        causes.push(FieldCause::invalid(
            format!("metadata.labels[{label}]"),
            &Value::String(value.to_owned()),
            why,
        ))
    };
    const LEVELS: &str = "must be one of privileged, baseline, restricted";
    const VERSIONS: &str = "must be \"latest\" or \"v1.x\"";
    let mut enforce_level_set = false;
    if let Some(value) = labels.get(ENFORCE_LABEL) {
        policy.enforce.level = Level::parse(value).unwrap_or_else(|fallback| {
            invalid(ENFORCE_LABEL, value, LEVELS);
            fallback
        });
        enforce_level_set = Level::parse(value).is_ok();
    }
    if let Some(value) = labels.get(ENFORCE_VERSION_LABEL) {
        policy.enforce.version = Version::parse(value).unwrap_or_else(|fallback| {
            invalid(ENFORCE_VERSION_LABEL, value, VERSIONS);
            fallback
        });
    }
    if let Some(value) = labels.get(AUDIT_LABEL) {
        policy.audit.level = Level::parse(value).unwrap_or_else(|_| {
            invalid(AUDIT_LABEL, value, LEVELS);
            Level::Privileged
        });
    }
    if let Some(value) = labels.get(AUDIT_VERSION_LABEL) {
        policy.audit.version = Version::parse(value).unwrap_or_else(|fallback| {
            invalid(AUDIT_VERSION_LABEL, value, VERSIONS);
            fallback
        });
    }
    let warn_level_set = labels.contains_key(WARN_LABEL);
    if let Some(value) = labels.get(WARN_LABEL) {
        policy.warn.level = Level::parse(value).unwrap_or_else(|_| {
            invalid(WARN_LABEL, value, LEVELS);
            Level::Privileged
        });
    }
    let warn_version_set = labels.contains_key(WARN_VERSION_LABEL);
    if let Some(value) = labels.get(WARN_VERSION_LABEL) {
        policy.warn.version = Version::parse(value).unwrap_or_else(|fallback| {
            invalid(WARN_VERSION_LABEL, value, VERSIONS);
            fallback
        });
    }
    if !warn_level_set && enforce_level_set && policy.enforce.level > policy.warn.level {
        policy.warn.level = policy.enforce.level;
        if !warn_version_set {
            policy.warn.version = policy.enforce.version;
        }
    }
    (policy, causes)
}

/// The labels of an object (a namespace), as a sorted map of strings.
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// One failed check: upstream's forbidden reason and its detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Short reason, e.g. `privileged`.
    pub reason: String,
    /// What was wrong, e.g. `container "c" must not set securityContext.privileged=true`.
    pub detail: String,
}

impl Violation {
    /// A violation with this reason and detail.
    pub fn new(reason: impl Into<String>, detail: impl Into<String>) -> Self {
        Violation {
            reason: reason.into(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Violation {
    /// `reason (detail)`, or the reason alone without detail.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{} ({})", self.reason, self.detail)
        }
    }
}

/// Every violation of `pod` against `lv`, in upstream's check order.
pub fn evaluate(lv: LevelVersion, pod: &PodView) -> Vec<Violation> {
    registry::evaluate(lv.level, lv.version, pod)
}

/// Upstream's aggregate detail: each `reason (detail)`, joined with `, `.
pub fn forbidden_detail(violations: &[Violation]) -> String {
    let parts: Vec<String> = violations.iter().map(Violation::to_string).collect();
    parts.join(", ")
}

/// Upstream's aggregate reason: the reasons alone, joined with `, `.
pub fn forbidden_reasons(violations: &[Violation]) -> String {
    let parts: Vec<&str> = violations.iter().map(|v| v.reason.as_str()).collect();
    parts.join(", ")
}

/// What Pod Security decides about one pod or pod template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// The reason to refuse it (`violates PodSecurity "restricted:latest": …`),
    /// when enforced and violated.
    pub forbidden: Option<String>,
    /// The value of the `audit-violations` audit annotation, when the audit level is violated.
    pub audit: Option<String>,
    /// Warnings for the client (`would violate PodSecurity …`).
    pub warnings: Vec<String>,
}

/// Evaluates a pod (`enforce` true) or a workload's pod template (`enforce`
/// false: templates only get audit and warn) against a namespace policy, as
/// upstream's `EvaluatePod` does; warnings are only given when not refused.
pub fn decide(policy: &Policy, pod: &PodView, enforce: bool) -> Decision {
    let mut cache: Vec<(LevelVersion, Vec<Violation>)> = Vec::new();
    let mut results = |lv: LevelVersion| {
        if let Some((_, found)) = cache.iter().find(|(seen, _)| *seen == lv) {
            return found.clone();
        }
        let found = evaluate(lv, pod);
        cache.push((lv, found.clone()));
        found
    };
    let mut decision = Decision::default();
    if enforce {
        let violations = results(policy.enforce);
        if !violations.is_empty() {
            decision.forbidden = Some(format!(
                "violates PodSecurity \"{}\": {}",
                policy.enforce,
                forbidden_detail(&violations)
            ));
        }
    }
    let audit = results(policy.audit);
    if !audit.is_empty() {
        decision.audit = Some(would_violate(policy.audit, &audit));
    }
    if decision.forbidden.is_none() {
        let warn = results(policy.warn);
        if !warn.is_empty() {
            decision.warnings.push(would_violate(policy.warn, &warn));
        }
    }
    decision
}

fn would_violate(lv: LevelVersion, violations: &[Violation]) -> String {
    format!(
        "would violate PodSecurity \"{lv}\": {}",
        forbidden_detail(violations)
    )
}

/// Upstream's warning for labels on an exempt namespace that ask for more
/// than the defaults: `namespace "x" is exempt from Pod Security, and the
/// policy (enforce=restricted:latest) will be ignored`; None when nothing
/// would be ignored.
pub fn exempt_namespace_warning(
    namespace: &str,
    policy: &Policy,
    labels: &BTreeMap<String, String>,
    defaults: &Policy,
) -> Option<String> {
    let equivalent = |a: LevelVersion, b: LevelVersion| {
        (a.level == Level::Privileged && b.level == Level::Privileged) || a == b
    };
    if policy.fully_privileged()
        || (equivalent(policy.enforce, defaults.enforce)
            && equivalent(policy.audit, defaults.audit)
            && equivalent(policy.warn, defaults.warn))
    {
        return None;
    }
    let modes = [
        (
            "enforce",
            policy.enforce,
            ENFORCE_LABEL,
            ENFORCE_VERSION_LABEL,
        ),
        ("audit", policy.audit, AUDIT_LABEL, AUDIT_VERSION_LABEL),
        ("warn", policy.warn, WARN_LABEL, WARN_VERSION_LABEL),
    ];
    let ignored: Vec<String> = modes
        .iter()
        .filter(|(_, lv, level, version)| {
            lv.level != Level::Privileged
                && (labels.contains_key(*level) || labels.contains_key(*version))
        })
        .map(|(mode, lv, _, _)| format!("{mode}={lv}"))
        .collect();
    Some(format!(
        "namespace \"{namespace}\" is exempt from Pod Security, and the policy ({}) will be ignored",
        ignored.join(", ")
    ))
}

/// The pod template of a workload resource upstream evaluates (group and
/// plural name), or None for other resources or a missing template.
pub fn pod_template<'a>(group: &str, plural: &str, obj: &'a Value) -> Option<PodView<'a>> {
    let pointer = match (group, plural) {
        ("", "podtemplates") => "/template",
        ("", "replicationcontrollers")
        | ("apps", "replicasets" | "deployments" | "statefulsets" | "daemonsets")
        | ("batch", "jobs") => "/spec/template",
        ("batch", "cronjobs") => "/spec/jobTemplate/spec/template",
        _ => return None,
    };
    let template = pod::set(obj.pointer(pointer))?;
    Some(view(template))
}

/// A pod (or template) as the checks see it; a missing part reads as empty.
pub fn view(obj: &Value) -> PodView<'_> {
    static EMPTY: Value = Value::Null;
    PodView {
        metadata: obj.get("metadata").unwrap_or(&EMPTY),
        spec: obj.get("spec").unwrap_or(&EMPTY),
    }
}

/// Whether a pod update must be evaluated again (upstream's
/// `isSignificantPodUpdate`): containers added or removed, an image changed,
/// or an ephemeral container added or changed.
pub fn significant_pod_update(old: &Value, new: &Value) -> bool {
    let image = |c: &Value| pod::text(c.get("image"));
    for field in ["containers", "initContainers"] {
        let before: Vec<&Value> = pod::list(old.pointer(&format!("/spec/{field}"))).collect();
        let after: Vec<&Value> = pod::list(new.pointer(&format!("/spec/{field}"))).collect();
        if before.len() != after.len()
            || before.iter().zip(&after).any(|(a, b)| image(a) != image(b))
        {
            return true;
        }
    }
    let before: Vec<&Value> = pod::list(old.pointer("/spec/ephemeralContainers")).collect();
    pod::list(new.pointer("/spec/ephemeralContainers")).any(|c| {
        match before.iter().find(|o| pod::name(o) == pod::name(c)) {
            None => true,
            Some(o) => image(o) != image(c),
        }
    })
}

/// Whether a namespace update must check its existing pods (upstream's
/// `ValidateNamespace`): the enforce policy changed to a stricter level or
/// another version, and is not privileged.
pub fn enforce_tightened(old: &Policy, new: &Policy) -> bool {
    if new.enforce == old.enforce || new.enforce.level == Level::Privileged {
        return false;
    }
    !(new.enforce.version == old.enforce.version && new.enforce.level <= old.enforce.level)
}

/// The most pods a namespace label change checks (upstream's default).
pub const NAMESPACE_MAX_PODS_TO_CHECK: usize = 3000;

/// The warnings of a namespace label change for its existing `pods` against
/// the new `enforce` level (upstream's `EvaluatePodsInNamespace`): one line
/// saying pods violate it, then one per distinct set of reasons naming the
/// first pod by name and how many others share it. Pods of one controller
/// are checked once before their siblings.
pub fn namespace_pod_warnings(
    namespace: &str,
    enforce: LevelVersion,
    pods: &[Value],
) -> Vec<String> {
    let ordered = prioritize(pods);
    let total = ordered.len();
    let checked = &ordered[..total.min(NAMESPACE_MAX_PODS_TO_CHECK)];
    // (reasons, first pod name by name order, count), in first-seen order.
    let mut found: Vec<(String, String, usize)> = Vec::new();
    for pod in checked {
        let violations = evaluate(enforce, &view(pod));
        if violations.is_empty() {
            continue;
        }
        let reasons = forbidden_reasons(&violations);
        let name = pod::text(pod.pointer("/metadata/name"));
        match found.iter_mut().find(|(r, _, _)| *r == reasons) {
            Some((_, first, count)) => {
                if name < *first {
                    *first = name;
                }
                *count += 1;
            }
            None => found.push((reasons, name, 1)),
        }
    }
    let mut warnings = Vec::new();
    if checked.len() < total {
        warnings.push(format!(
            "new PodSecurity enforce level only checked against the first {} of {total} existing pods",
            checked.len()
        ));
    }
    if !found.is_empty() {
        warnings.push(format!(
            "existing pods in namespace \"{namespace}\" violate the new PodSecurity enforce level \"{enforce}\""
        ));
    }
    let mut lines: Vec<String> = found
        .into_iter()
        .map(|(reasons, first, count)| match count {
            1 => format!("{first}: {reasons}"),
            2 => format!("{first} (and 1 other pod): {reasons}"),
            n => format!("{first} (and {} other pods): {reasons}", n - 1),
        })
        .collect();
    lines.sort();
    warnings.extend(lines);
    warnings
}

/// Pods without a controller and the first pod of each controller, then the
/// other pods of controllers already seen (upstream's `prioritizePods`).
fn prioritize(pods: &[Value]) -> Vec<&Value> {
    let controller = |pod: &Value| {
        pod::list(pod.pointer("/metadata/ownerReferences"))
            .find(|o| pod::is_true(o.get("controller")))
            .map(|o| pod::text(o.get("uid")))
    };
    let mut seen = Vec::new();
    let (mut first, mut rest) = (Vec::new(), Vec::new());
    for pod in pods {
        match controller(pod) {
            None => first.push(pod),
            Some(uid) if seen.contains(&uid) => rest.push(pod),
            Some(uid) => {
                seen.push(uid);
                first.push(pod);
            }
        }
    }
    first.extend(rest);
    first
}

#[cfg(test)]
mod tests;
