//! Completion indexes of Indexed Jobs as upstream writes them in
//! `status.completedIndexes` / `status.failedIndexes`: ascending, with runs of
//! consecutive indexes written `first-last` ("1,3-5,7").
//! Pure parsing and formatting, no I/O.

use std::collections::BTreeSet;

/// The annotation (and label) carrying a pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// Parses an interval list; malformed parts are skipped, as upstream's
/// parser ignores what it cannot read, and indexes at or past `completions` dropped.
pub fn parse(text: Option<&str>, completions: i32) -> BTreeSet<i32> {
    let mut set = BTreeSet::new();
    for part in text
        .unwrap_or_default()
        .split(',')
        .filter(|p| !p.is_empty())
    {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<i32>(), b.parse::<i32>()),
            None => (part.parse::<i32>(), part.parse::<i32>()),
        };
        if let (Ok(first), Ok(last)) = (first, last) {
            set.extend((first.max(0)..=last.min(completions - 1)).filter(|i| *i >= 0));
        }
    }
    set
}

/// Formats `set` as upstream does: `first-last` for runs, else single numbers; `None` for the empty set (the field is then left out).
pub fn format(set: &BTreeSet<i32>) -> Option<String> {
    if set.is_empty() {
        return None;
    }
    let mut parts: Vec<String> = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter.peek() == Some(&(last + 1)) {
            last = iter.next().expect("peeked");
        }
        if last == first {
            parts.push(first.to_string());
        } else {
            parts.push(format!("{first}-{last}"));
        }
    }
    Some(parts.join(","))
}

/// The completion index a pod carries (annotation first, then label), if valid.
pub fn of_pod(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<i32> {
    let from = |map: &Option<std::collections::BTreeMap<String, String>>| {
        map.as_ref()
            .and_then(|m| m.get(COMPLETION_INDEX))
            .and_then(|v| v.parse::<i32>().ok())
            .filter(|i| *i >= 0)
    };
    from(&meta.annotations).or_else(|| from(&meta.labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_interval_lists() {
        let cases: [(&str, i32, &[i32], Option<&str>); 5] = [
            ("", 5, &[], None),
            ("1", 5, &[1], Some("1")),
            ("0-2,4", 5, &[0, 1, 2, 4], Some("0-2,4")),
            ("3,1,2", 5, &[1, 2, 3], Some("1-3")),
            ("0-9", 3, &[0, 1, 2], Some("0-2")),
        ];
        for (text, completions, expected, formatted) in cases {
            let set = parse(Some(text), completions);
            assert_eq!(set.iter().copied().collect::<Vec<_>>(), expected, "{text}");
            assert_eq!(format(&set).as_deref(), formatted, "{text}");
        }
        let pair: BTreeSet<i32> = [4, 5].into();
        assert_eq!(format(&pair).as_deref(), Some("4-5"));
    }
}
