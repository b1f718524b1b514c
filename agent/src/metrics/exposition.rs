//! The exposition format a scraper gets: OpenMetrics when it asks for it
//! (Prometheus does), else Prometheus' classic text format 0.0.4, which is
//! what kubelet answers `curl` and `kubectl get --raw` with and what
//! `promtool check metrics` reads. Pure: rewrites the registry's output.

use berth_observability::metrics::CONTENT_TYPE as OPENMETRICS;

/// The classic text format's content type.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `openmetrics` (an encoded registry) in the format `accept` prefers, with
/// that format's content type.
pub fn negotiate(accept: Option<&str>, openmetrics: String) -> (String, &'static str) {
    let wants_openmetrics =
        accept.is_some_and(|accept| accept.contains("application/openmetrics-text"));
    if wants_openmetrics {
        (openmetrics, OPENMETRICS)
    } else {
        (to_text(&openmetrics), TEXT_CONTENT_TYPE)
    }
}

/// OpenMetrics text as text format 0.0.4: a counter family is named with
/// its `_total` suffix in `# HELP` and `# TYPE`, and `# UNIT` and `# EOF`
/// lines are dropped.
pub fn to_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if line.starts_with("# HELP ") {
            if let Some(pending) = help.replace(line) {
                push_line(&mut out, pending);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let counter = rest
                .strip_suffix(" counter")
                .filter(|name| !name.ends_with("_total"));
            match counter {
                Some(name) => {
                    if let Some(pending) = help.take() {
                        let text = pending
                            .strip_prefix(&format!("# HELP {name} "))
                            .unwrap_or_default();
                        push_line(&mut out, &format!("# HELP {name}_total {text}"));
                    }
                    push_line(&mut out, &format!("# TYPE {name}_total counter"));
                }
                None => {
                    if let Some(pending) = help.take() {
                        push_line(&mut out, pending);
                    }
                    push_line(&mut out, line);
                }
            }
            continue;
        }
        if let Some(pending) = help.take() {
            push_line(&mut out, pending);
        }
        push_line(&mut out, line);
    }
    if let Some(pending) = help {
        push_line(&mut out, pending);
    }
    out
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(line);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_with_total_in_the_text_format() {
        let openmetrics = "# HELP runs Runs.\n# TYPE runs counter\nruns_total{a=\"1\"} 2\n\
                           # HELP up Up.\n# TYPE up gauge\nup 1\n# EOF\n";
        assert_eq!(
            to_text(openmetrics),
            "# HELP runs_total Runs.\n# TYPE runs_total counter\nruns_total{a=\"1\"} 2\n\
             # HELP up Up.\n# TYPE up gauge\nup 1\n"
        );
    }

    #[test]
    fn openmetrics_is_kept_for_scrapers_that_ask_for_it() {
        let body = "# TYPE up gauge\nup 1\n# EOF\n".to_owned();
        let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
        let (kept, content_type) = negotiate(Some(accept), body.clone());
        assert_eq!((kept.as_str(), content_type), (body.as_str(), OPENMETRICS));
        let (text, content_type) = negotiate(Some("application/json, */*"), body);
        assert_eq!(
            (text.as_str(), content_type),
            ("# TYPE up gauge\nup 1\n", TEXT_CONTENT_TYPE)
        );
    }
}
