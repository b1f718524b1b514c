//! Which checks make up a level at a version, as upstream's check registry
//! builds it: each check has versions that replace each other from a minimum
//! version on; restricted includes baseline except the baseline checks a
//! restricted check overrides; checks run in ID order, baseline IDs first.

use super::pod::PodView;
use super::{host, privileges, profiles, users, volumes};
use super::{Level, Version, Violation};

/// One check function of a pod.
type CheckFn = fn(&PodView) -> Option<Violation>;

/// One version of a check: from `minor` (of 1.x) on, until the next version.
struct Versioned {
    minor: u32,
    check: CheckFn,
    /// Baseline check IDs this restricted version replaces.
    overrides: &'static [&'static str],
}

/// A check with its ID, its level and its versions in increasing order.
struct Check {
    id: &'static str,
    level: Level,
    versions: &'static [Versioned],
}

const fn v(minor: u32, check: CheckFn) -> Versioned {
    Versioned {
        minor,
        check,
        overrides: &[],
    }
}

const fn replacing(minor: u32, check: CheckFn, overrides: &'static [&'static str]) -> Versioned {
    Versioned {
        minor,
        check,
        overrides,
    }
}

/// Every check upstream's policy registers.
const CHECKS: &[Check] = &[
    Check {
        id: "privileged",
        level: Level::Baseline,
        versions: &[v(0, privileges::privileged)],
    },
    Check {
        id: "allowPrivilegeEscalation",
        level: Level::Restricted,
        versions: &[
            v(8, privileges::allow_privilege_escalation_1_8),
            v(25, privileges::allow_privilege_escalation_1_25),
        ],
    },
    Check {
        id: "capabilities_baseline",
        level: Level::Baseline,
        versions: &[v(0, privileges::capabilities_baseline)],
    },
    Check {
        id: "capabilities_restricted",
        level: Level::Restricted,
        versions: &[
            replacing(
                22,
                privileges::capabilities_restricted_1_22,
                &["capabilities_baseline"],
            ),
            replacing(
                25,
                privileges::capabilities_restricted_1_25,
                &["capabilities_baseline"],
            ),
        ],
    },
    Check {
        id: "procMount",
        level: Level::Baseline,
        versions: &[
            v(0, privileges::proc_mount_1_0),
            v(35, privileges::proc_mount_1_35_baseline),
        ],
    },
    Check {
        id: "procMount_restricted",
        level: Level::Restricted,
        versions: &[replacing(35, privileges::proc_mount_1_0, &["procMount"])],
    },
    Check {
        id: "windowsHostProcess",
        level: Level::Baseline,
        versions: &[v(0, privileges::windows_host_process)],
    },
    Check {
        id: "hostNamespaces",
        level: Level::Baseline,
        versions: &[v(0, host::host_namespaces)],
    },
    Check {
        id: "hostPorts",
        level: Level::Baseline,
        versions: &[v(0, host::host_ports)],
    },
    Check {
        id: "hostProbesAndHostLifecycle",
        level: Level::Baseline,
        versions: &[v(34, host::host_probes_and_lifecycle)],
    },
    Check {
        id: "hostPathVolumes",
        level: Level::Baseline,
        versions: &[v(0, volumes::host_path_volumes)],
    },
    Check {
        id: "restrictedVolumes",
        level: Level::Restricted,
        versions: &[replacing(
            0,
            volumes::restricted_volumes,
            &["hostPathVolumes"],
        )],
    },
    Check {
        id: "seccompProfile_baseline",
        level: Level::Baseline,
        versions: &[
            v(0, profiles::seccomp_baseline_1_0),
            v(19, profiles::seccomp_baseline_1_19),
        ],
    },
    Check {
        id: "seccompProfile_restricted",
        level: Level::Restricted,
        versions: &[
            replacing(
                19,
                profiles::seccomp_restricted_1_19,
                &["seccompProfile_baseline"],
            ),
            replacing(
                25,
                profiles::seccomp_restricted_1_25,
                &["seccompProfile_baseline"],
            ),
        ],
    },
    Check {
        id: "appArmorProfile",
        level: Level::Baseline,
        versions: &[v(0, profiles::app_armor)],
    },
    Check {
        id: "seLinuxOptions",
        level: Level::Baseline,
        versions: &[v(0, profiles::se_linux_1_0), v(31, profiles::se_linux_1_31)],
    },
    Check {
        id: "sysctls",
        level: Level::Baseline,
        versions: &[
            v(0, profiles::sysctls_1_0),
            v(27, profiles::sysctls_1_27),
            v(29, profiles::sysctls_1_29),
            v(32, profiles::sysctls_1_32),
            v(37, profiles::sysctls_1_37),
        ],
    },
    Check {
        id: "runAsNonRoot",
        level: Level::Restricted,
        versions: &[
            v(0, users::run_as_non_root_1_0),
            v(35, users::run_as_non_root_1_35),
        ],
    },
    Check {
        id: "runAsUser",
        level: Level::Restricted,
        versions: &[
            v(23, users::run_as_user_1_23),
            v(35, users::run_as_user_1_35),
        ],
    },
];

/// The newest minor version any check knows: `latest` and every newer
/// version evaluate as this one.
pub fn newest_minor() -> u32 {
    CHECKS
        .iter()
        .filter_map(|c| c.versions.last())
        .map(|v| v.minor)
        .max()
        .unwrap_or(0)
}

/// The version of `check` that applies at `minor`, if the check exists then.
fn at(check: &Check, minor: u32) -> Option<&Versioned> {
    check.versions.iter().rev().find(|v| v.minor <= minor)
}

/// The checks of `level` at `version`, in the order upstream runs them: by
/// ID, baseline checks first. Privileged has none.
fn checks_for(level: Level, version: Version) -> Vec<(&'static str, CheckFn)> {
    let newest = newest_minor();
    let minor = match version {
        Version::Latest => newest,
        Version::Minor(m) => m.min(newest),
    };
    let applicable = |wanted: Level| {
        CHECKS
            .iter()
            .filter(move |c| c.level == wanted)
            .filter_map(move |c| Some((c.id, at(c, minor)?)))
    };
    let mut chosen: Vec<(Level, &'static str, CheckFn)> = match level {
        Level::Privileged => return Vec::new(),
        Level::Baseline => applicable(Level::Baseline)
            .map(|(id, v)| (Level::Baseline, id, v.check))
            .collect(),
        Level::Restricted => {
            let restricted: Vec<_> = applicable(Level::Restricted).collect();
            let overridden: Vec<&str> = restricted
                .iter()
                .flat_map(|(_, v)| v.overrides.iter().copied())
                .collect();
            applicable(Level::Baseline)
                .filter(|(id, _)| !overridden.contains(id))
                .map(|(id, v)| (Level::Baseline, id, v.check))
                .chain(
                    restricted
                        .into_iter()
                        .map(|(id, v)| (Level::Restricted, id, v.check)),
                )
                .collect()
        }
    };
    chosen.sort_by(|a, b| (a.0 != Level::Baseline, a.1).cmp(&(b.0 != Level::Baseline, b.1)));
    chosen.into_iter().map(|(_, id, f)| (id, f)).collect()
}

/// Runs the checks of `level` at `version` on `pod`: every violation, in upstream's order.
pub fn evaluate(level: Level, version: Version, pod: &PodView) -> Vec<Violation> {
    checks_for(level, version)
        .into_iter()
        .filter_map(|(_, check)| check(pod))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(level: Level, version: Version) -> Vec<&'static str> {
        checks_for(level, version)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    #[test]
    fn restricted_runs_baseline_ids_first_without_overridden_ones() {
        assert_eq!(
            ids(Level::Restricted, Version::Latest),
            [
                "appArmorProfile",
                "hostNamespaces",
                "hostPorts",
                "hostProbesAndHostLifecycle",
                "privileged",
                "seLinuxOptions",
                "sysctls",
                "windowsHostProcess",
                "allowPrivilegeEscalation",
                "capabilities_restricted",
                "procMount_restricted",
                "restrictedVolumes",
                "runAsNonRoot",
                "runAsUser",
                "seccompProfile_restricted",
            ]
        );
    }

    #[test]
    fn older_versions_use_the_checks_of_their_time() {
        let old = ids(Level::Restricted, Version::Minor(21));
        assert!(old.contains(&"capabilities_baseline"));
        assert!(old.contains(&"procMount"));
        assert!(!old.contains(&"runAsUser"));
        assert!(!ids(Level::Baseline, Version::Minor(33)).contains(&"hostProbesAndHostLifecycle"));
        assert_eq!(
            ids(Level::Baseline, Version::Minor(99)),
            ids(Level::Baseline, Version::Latest)
        );
        assert!(ids(Level::Privileged, Version::Latest).is_empty());
    }
}
