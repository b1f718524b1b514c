//! One node's `/metrics/resource` answer parsed into the samples
//! metrics-server keeps: the node's and each container's cumulative CPU
//! seconds and working set, with the time each was measured. Pure.

use std::collections::HashMap;

/// One sample: its value and when it was measured (milliseconds since the
/// epoch; the scrape's time when the line carries none).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// The value.
    pub value: f64,
    /// When it was measured, in milliseconds since the epoch.
    pub millis: i64,
}

/// A container's samples.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ContainerSamples {
    /// Cumulative CPU, in core-seconds.
    pub cpu: Option<Point>,
    /// Working set, in bytes.
    pub memory: Option<Point>,
    /// When the container started, in seconds since the epoch.
    pub start: Option<f64>,
}

/// A container as the metrics label it: namespace, pod, container.
pub type ContainerKey = (String, String, String);

/// Everything one scrape of a node said.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeScrape {
    /// The node's cumulative CPU, in core-seconds.
    pub cpu: Option<Point>,
    /// The node's working set, in bytes.
    pub memory: Option<Point>,
    /// Per container.
    pub containers: HashMap<ContainerKey, ContainerSamples>,
}

/// Splits `{a="x",b="y"}` (without the braces) into pairs, unescaping values.
fn labels(text: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(',' | ' ')) {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if name.is_empty() {
            return Ok(out);
        }
        if chars.next() != Some('=') || chars.next() != Some('"') {
            return Err(format!("label {name:?} has no quoted value"));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => return Err("a label value ends in an escape".into()),
                },
                Some('"') => break,
                Some(c) => value.push(c),
                None => return Err(format!("label {name:?} is not closed")),
            }
        }
        out.insert(name.trim().to_owned(), value);
    }
}

/// One sample line: metric name, labels, value, timestamp.
type SampleLine<'a> = (&'a str, HashMap<String, String>, f64, Option<i64>);

/// Parses one sample line.
fn sample_line(line: &str) -> Result<SampleLine<'_>, String> {
    let (name, label_map, rest) = match line.find('{') {
        Some(open) => {
            let close = line[open..]
                .rfind('}')
                .map(|c| open + c)
                .ok_or_else(|| format!("unclosed labels in {line:?}"))?;
            (
                &line[..open],
                labels(&line[open + 1..close])?,
                &line[close + 1..],
            )
        }
        None => {
            let (name, rest) = line
                .split_once(' ')
                .ok_or_else(|| format!("no value in {line:?}"))?;
            (name, HashMap::new(), rest)
        }
    };
    let mut fields = rest.split_whitespace();
    let value = fields
        .next()
        .ok_or_else(|| format!("no value in {line:?}"))?
        .parse::<f64>()
        .map_err(|e| format!("bad value in {line:?}: {e}"))?;
    let millis = fields.next().and_then(|t| t.parse::<i64>().ok());
    Ok((name.trim(), label_map, value, millis))
}

/// Parses a `/metrics/resource` body scraped at `scraped_millis`.
pub fn parse(text: &str, scraped_millis: i64) -> Result<NodeScrape, String> {
    let mut scrape = NodeScrape::default();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, mut labels, value, millis) = sample_line(line)?;
        let point = Point {
            value,
            millis: millis.unwrap_or(scraped_millis),
        };
        let mut key = || {
            (
                labels.remove("namespace").unwrap_or_default(),
                labels.remove("pod").unwrap_or_default(),
                labels.remove("container").unwrap_or_default(),
            )
        };
        match name {
            "node_cpu_usage_seconds_total" => scrape.cpu = Some(point),
            "node_memory_working_set_bytes" => scrape.memory = Some(point),
            "container_cpu_usage_seconds_total" => {
                scrape.containers.entry(key()).or_default().cpu = Some(point)
            }
            "container_memory_working_set_bytes" => {
                scrape.containers.entry(key()).or_default().memory = Some(point)
            }
            "container_start_time_seconds" => {
                scrape.containers.entry(key()).or_default().start = Some(value)
            }
            _ => {}
        }
    }
    Ok(scrape)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# HELP container_cpu_usage_seconds_total [STABLE] CPU
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container=\"spin\",namespace=\"met-e2e\",pod=\"bu\\\"sy\"} 12.5 1700000000123
container_memory_working_set_bytes{container=\"spin\",namespace=\"met-e2e\",pod=\"bu\\\"sy\"} 4096 1700000000123
container_start_time_seconds{container=\"spin\",namespace=\"met-e2e\",pod=\"bu\\\"sy\"} 1700000000
node_cpu_usage_seconds_total 100.25 1700000000100
node_memory_working_set_bytes 1.048576e+06
pod_cpu_usage_seconds_total{namespace=\"met-e2e\",pod=\"bu\\\"sy\"} 12.5 1700000000123
resource_scrape_error 0
";

    #[test]
    fn kubelet_resource_metrics_parse_into_samples() {
        let scrape = parse(TEXT, 42).unwrap();
        assert_eq!(
            scrape.cpu,
            Some(Point {
                value: 100.25,
                millis: 1_700_000_000_100
            })
        );
        assert_eq!(
            scrape.memory,
            Some(Point {
                value: 1_048_576.0,
                millis: 42
            })
        );
        let key = ("met-e2e".to_owned(), "bu\"sy".to_owned(), "spin".to_owned());
        let container = scrape.containers[&key];
        assert_eq!(container.cpu.unwrap().value, 12.5);
        assert_eq!(container.memory.unwrap().millis, 1_700_000_000_123);
        assert_eq!(container.start, Some(1_700_000_000.0));
        assert_eq!(scrape.containers.len(), 1);
    }

    #[test]
    fn malformed_lines_are_errors() {
        for bad in [
            "node_cpu_usage_seconds_total",
            "x{a=\"1\" 3",
            "x{a=1} 3",
            "x 1e",
        ] {
            assert!(parse(bad, 0).is_err(), "{bad}");
        }
    }
}
