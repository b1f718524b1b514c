//! The node's `resolv.conf` (kubelet's `--resolv-conf`), parsed as kubelet
//! reads it: its nameservers are where the cluster DNS forwards, and its
//! search path and options go into pods with dnsPolicy Default. Pure.

/// What a `resolv.conf` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    /// `nameserver` addresses, in order.
    pub nameservers: Vec<String>,
    /// The search path (the last `search` line wins, as in glibc).
    pub searches: Vec<String>,
    /// `options` entries (`ndots:2`, `edns0`), in order.
    pub options: Vec<String>,
}

impl ResolvConf {
    /// Parses `text`; comments (`#`, `;`) and unknown lines are skipped.
    pub fn parse(text: &str) -> Self {
        let mut conf = Self::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or_default();
            let mut fields = line.split_whitespace();
            match fields.next() {
                Some("nameserver") => conf.nameservers.extend(fields.next().map(str::to_owned)),
                Some("search") | Some("domain") => {
                    conf.searches = fields
                        .filter(|s| *s != ".")
                        .map(|s| s.trim_end_matches('.').to_owned())
                        .collect();
                }
                Some("options") => conf.options.extend(fields.map(str::to_owned)),
                _ => {}
            }
        }
        conf
    }

    /// Reads and parses the file at `path`; a missing file is an empty one,
    /// as kubelet treats `--resolv-conf=""`.
    pub fn read(path: &std::path::Path) -> std::io::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Self::parse(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_as_kubelet_reads_them() {
        let cases: &[(&str, ResolvConf)] = &[
            ("", ResolvConf::default()),
            (
                "# comment\nnameserver 10.0.0.2\nnameserver 10.0.0.3 ; trailing\nsearch a.example. b.example\noptions ndots:2 edns0\n",
                ResolvConf {
                    nameservers: vec!["10.0.0.2".into(), "10.0.0.3".into()],
                    searches: vec!["a.example".into(), "b.example".into()],
                    options: vec!["ndots:2".into(), "edns0".into()],
                },
            ),
            (
                "search old.example\nsearch new.example .\n",
                ResolvConf {
                    searches: vec!["new.example".into()],
                    ..ResolvConf::default()
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(&ResolvConf::parse(text), expected, "{text:?}");
        }
    }
}
