//! Prometheus' classic text format (0.0.4), for clients that do not ask for
//! OpenMetrics: `promtool check metrics`, curl, `kubectl get --raw`, older
//! scrapers. kube-apiserver serves it by default, so berth does too.

/// Rewrites OpenMetrics text as the classic text format: a counter's
/// `# HELP`/`# TYPE` carry its sample name (with `_total`), `# UNIT` and
/// `# EOF` go, and types the classic format lacks become `untyped`.
pub(super) fn from_openmetrics(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            flush_help(&mut out, help.take(), "");
            help = Some(rest.split_once(' ').unwrap_or((rest, "")));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (suffix, kind) = match kind {
                "counter" => ("_total", "counter"),
                "gauge" | "histogram" | "summary" => ("", kind),
                _ => ("", "untyped"),
            };
            flush_help(&mut out, help.take().filter(|(h, _)| *h == name), suffix);
            out.push_str(&format!("# TYPE {name}{suffix} {kind}\n"));
            continue;
        }
        flush_help(&mut out, help.take(), "");
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    flush_help(&mut out, help, "");
    out
}

fn flush_help(out: &mut String, help: Option<(&str, &str)>, suffix: &str) {
    if let Some((name, text)) = help {
        out.push_str(&format!("# HELP {name}{suffix} {text}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_by_their_samples_and_openmetrics_markers_go() {
        let openmetrics = "# HELP requests Requests.\n# TYPE requests counter\nrequests_total{verb=\"GET\"} 3\n# HELP size Size.\n# TYPE size gauge\n# UNIT size bytes\nsize 1\n# EOF\n";
        assert_eq!(
            from_openmetrics(openmetrics),
            "# HELP requests_total Requests.\n# TYPE requests_total counter\nrequests_total{verb=\"GET\"} 3\n# HELP size Size.\n# TYPE size gauge\nsize 1\n"
        );
    }
}
