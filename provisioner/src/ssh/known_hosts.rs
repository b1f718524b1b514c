//! OpenSSH `known_hosts` as data: parse the lines, decide whether a host's key
//! is known, unknown, changed or revoked, and format the line to append.
//! Pure: reading and appending the file belong to `host_key.rs`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::hmac;

/// The name a host is recorded under: `host` on port 22, `[host]:port`
/// elsewhere, as OpenSSH writes it.
pub fn host_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_ascii_lowercase()
    } else {
        format!("[{}]:{port}", host.to_ascii_lowercase())
    }
}

/// One usable line of a known_hosts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number, for messages.
    pub line: usize,
    /// `@cert-authority` or `@revoked`, if the line had one.
    pub marker: Option<Marker>,
    /// Which hosts the line is about.
    pub hosts: Hosts,
    /// The key algorithm name, e.g. `ssh-ed25519`.
    pub key_type: String,
    /// The key in SSH wire format (the base64 field, decoded).
    pub key: Vec<u8>,
}

/// The marker at the start of a known_hosts line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// The key signs host certificates; not a host key itself (ignored here).
    CertAuthority,
    /// The key must never be accepted for the hosts listed.
    Revoked,
}

/// The host field of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hosts {
    /// `|1|salt|hash`: HMAC-SHA1 of the host name keyed with the salt.
    Hashed {
        /// The HMAC key.
        salt: Vec<u8>,
        /// HMAC-SHA1(salt, host name).
        hash: Vec<u8>,
    },
    /// Comma-separated patterns (`*`, `?`, `!negation`).
    Patterns(Vec<String>),
}

impl Hosts {
    /// Whether `name` (as from [`host_name`]) is one of these hosts.
    pub fn matches(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        match self {
            Hosts::Hashed { salt, hash } => {
                let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
                hmac::verify(&key, name.as_bytes(), hash).is_ok()
            }
            Hosts::Patterns(patterns) => {
                let mut matched = false;
                for pattern in patterns {
                    let pattern = pattern.to_ascii_lowercase();
                    if let Some(negated) = pattern.strip_prefix('!') {
                        if glob(negated.as_bytes(), name.as_bytes()) {
                            return false;
                        }
                    } else if glob(pattern.as_bytes(), name.as_bytes()) {
                        matched = true;
                    }
                }
                matched
            }
        }
    }
}

/// Shell-style match of `*` (any run) and `?` (one character).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], text) || (!text.is_empty() && glob(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}

/// Parses a known_hosts file; comments, blank and malformed lines are
/// skipped, as OpenSSH does.
pub fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .enumerate()
        .filter_map(|(index, line)| parse_line(index + 1, line))
        .collect()
}

fn parse_line(line: usize, text: &str) -> Option<Entry> {
    let text = text.trim();
    if text.is_empty() || text.starts_with('#') {
        return None;
    }
    let mut fields = text.split_whitespace();
    let mut first = fields.next()?;
    let marker = match first {
        "@cert-authority" => Some(Marker::CertAuthority),
        "@revoked" => Some(Marker::Revoked),
        _ if first.starts_with('@') => return None,
        _ => None,
    };
    if marker.is_some() {
        first = fields.next()?;
    }
    let hosts = parse_hosts(first)?;
    let key_type = fields.next()?.to_string();
    let key = STANDARD.decode(fields.next()?).ok()?;
    Some(Entry {
        line,
        marker,
        hosts,
        key_type,
        key,
    })
}

fn parse_hosts(field: &str) -> Option<Hosts> {
    if let Some(hashed) = field.strip_prefix("|1|") {
        let (salt, hash) = hashed.split_once('|')?;
        let salt = STANDARD.decode(salt).ok()?;
        let hash = STANDARD.decode(hash).ok()?;
        return (hash.len() == 20).then_some(Hosts::Hashed { salt, hash });
    }
    if field.starts_with('|') {
        return None;
    }
    Some(Hosts::Patterns(
        field.split(',').map(str::to_string).collect(),
    ))
}

/// What the known_hosts file says about the key a host presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A line for this host has exactly this key.
    Known,
    /// No line for this host has a key of this type.
    Unknown,
    /// A line for this host has a different key of the same type.
    Changed {
        /// Where the recorded key is.
        line: usize,
    },
    /// The key is marked `@revoked` for this host.
    Revoked {
        /// Where the revocation is.
        line: usize,
    },
}

/// Decides what `entries` say about `key` (wire format, type `key_type`)
/// presented by the host recorded as `name`. A revocation wins over
/// everything; a matching key wins over a different recorded one (a host may
/// be listed twice); keys of other types do not make a key "changed", as in
/// OpenSSH.
pub fn check(entries: &[Entry], name: &str, key_type: &str, key: &[u8]) -> Verdict {
    let mut known = false;
    let mut changed = None;
    for entry in entries.iter().filter(|e| e.hosts.matches(name)) {
        match entry.marker {
            Some(Marker::Revoked) if entry.key == key => {
                return Verdict::Revoked { line: entry.line }
            }
            Some(_) => {}
            None if entry.key == key => known = true,
            None if entry.key_type == key_type => {
                changed.get_or_insert(entry.line);
            }
            None => {}
        }
    }
    match (known, changed) {
        (true, _) => Verdict::Known,
        (false, Some(line)) => Verdict::Changed { line },
        (false, None) => Verdict::Unknown,
    }
}

/// The key type named at the start of a key in SSH wire format (a
/// length-prefixed string, e.g. `ssh-rsa`), which is what known_hosts
/// records, whatever signature algorithm the session negotiated.
pub fn key_type(key: &[u8]) -> Option<&str> {
    let length = u32::from_be_bytes(key.get(..4)?.try_into().ok()?) as usize;
    std::str::from_utf8(key.get(4..4 + length)?).ok()
}

/// The line (with its newline) that records `key` for the host `name`.
pub fn entry_line(name: &str, key_type: &str, key: &[u8]) -> String {
    format!("{name} {key_type} {}\n", STANDARD.encode(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const KEY_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIBbJ2Cr0QOdUqk+mjdvxyx0ViVfAN08cHHJ6ZY5rXHdO";

    fn key(b64: &str) -> Vec<u8> {
        STANDARD.decode(b64).unwrap()
    }

    /// `|1|salt|hash` for `name`, computed the way `ssh-keygen -H` does.
    fn hashed(name: &str, salt: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
        let hash = hmac::sign(&key, name.as_bytes());
        format!(
            "|1|{}|{}",
            STANDARD.encode(salt),
            STANDARD.encode(hash.as_ref())
        )
    }

    #[test]
    fn host_names_follow_openssh() {
        for (host, port, want) in [
            ("example.org", 22, "example.org"),
            ("Example.ORG", 22, "example.org"),
            ("127.0.0.1", 2222, "[127.0.0.1]:2222"),
            ("::1", 22, "::1"),
            ("::1", 2200, "[::1]:2200"),
        ] {
            assert_eq!(host_name(host, port), want, "{host}:{port}");
        }
    }

    #[test]
    fn hosts_match_patterns_and_hashes() {
        let cases: &[(&str, &str, bool)] = &[
            ("example.org", "example.org", true),
            ("EXAMPLE.org", "example.org", true),
            ("a.org,example.org", "example.org", true),
            ("a.org,b.org", "example.org", false),
            ("*.org", "example.org", true),
            ("*.org,!example.org", "example.org", false),
            ("exampl?.org", "example.org", true),
            ("[127.0.0.1]:2222", "[127.0.0.1]:2222", true),
            ("127.0.0.1", "[127.0.0.1]:2222", false),
            ("[127.0.0.1]:*", "[127.0.0.1]:2222", true),
        ];
        for (field, name, want) in cases {
            let hosts = parse_hosts(field).unwrap();
            assert_eq!(hosts.matches(name), *want, "{field} vs {name}");
        }
        let field = hashed("[127.0.0.1]:2222", b"0123456789abcdefghij");
        let hosts = parse_hosts(&field).unwrap();
        assert!(hosts.matches("[127.0.0.1]:2222"));
        assert!(!hosts.matches("[127.0.0.1]:2223"));
        assert!(!hosts.matches("127.0.0.1"));
    }

    /// A line `ssh-keygen -H` wrote for `[127.0.0.1]:2222`.
    #[test]
    fn hashed_line_from_ssh_keygen_matches() {
        let key = "AAAAC3NzaC1lZDI1NTE5AAAAICExoGtKXD/Amj2v/Pxmy35/wb7lPEGnyxOjeUUB585i";
        let line = format!(
            "|1|CUuuC4rLWji9znKPsZ8Tp0mPKe0=|h6CUTBigq1sG7n1ZMFSFQ/+EUy8= ssh-ed25519 {key}"
        );
        let entries = parse(&line);
        assert_eq!(entries.len(), 1);
        assert!(entries[0].hosts.matches("[127.0.0.1]:2222"));
        assert!(!entries[0].hosts.matches("127.0.0.1"));
        assert!(!entries[0].hosts.matches("[127.0.0.1]:2223"));
    }

    #[test]
    fn parse_skips_what_openssh_skips() {
        let text = format!(
            "# comment\n\n   \nexample.org ssh-ed25519 {KEY_A} root@x\n\
             @revoked bad.org ssh-ed25519 {KEY_B}\n@cert-authority *.org ssh-ed25519 {KEY_B}\n\
             @unknown x ssh-ed25519 {KEY_A}\nshort.org ssh-ed25519\nbad64.org ssh-ed25519 !!!\n\
             |2|x|y ssh-ed25519 {KEY_A}\n"
        );
        let entries = parse(&text);
        let summary: Vec<_> = entries.iter().map(|e| (e.line, e.marker)).collect();
        assert_eq!(
            summary,
            vec![
                (4, None),
                (5, Some(Marker::Revoked)),
                (6, Some(Marker::CertAuthority))
            ]
        );
        assert_eq!(entries[0].key, key(KEY_A));
        assert_eq!(entries[0].key_type, "ssh-ed25519");
    }

    #[test]
    fn verdicts() {
        let rsa = "AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7";
        let hashed_b = hashed("[10.0.0.2]:2222", b"salt-salt-salt-salt!");
        let text = format!(
            "example.org ssh-ed25519 {KEY_A}\n\
             other.org ssh-ed25519 {KEY_B}\n\
             other.org ssh-ed25519 {KEY_A}\n\
             rsa-only.org ssh-rsa {rsa}\n\
             {hashed_b} ssh-ed25519 {KEY_B}\n\
             @revoked revoked.org ssh-ed25519 {KEY_A}\n\
             revoked.org ssh-ed25519 {KEY_A}\n\
             @cert-authority ca.org ssh-ed25519 {KEY_B}\n"
        );
        let entries = parse(&text);
        let cases: &[(&str, &str, Verdict)] = &[
            ("example.org", KEY_A, Verdict::Known),
            ("example.org", KEY_B, Verdict::Changed { line: 1 }),
            ("nowhere.org", KEY_A, Verdict::Unknown),
            ("other.org", KEY_A, Verdict::Known),
            ("rsa-only.org", KEY_A, Verdict::Unknown),
            ("[10.0.0.2]:2222", KEY_B, Verdict::Known),
            ("[10.0.0.2]:2222", KEY_A, Verdict::Changed { line: 5 }),
            ("10.0.0.2", KEY_B, Verdict::Unknown),
            ("revoked.org", KEY_A, Verdict::Revoked { line: 6 }),
            ("ca.org", KEY_B, Verdict::Unknown),
        ];
        for (name, presented, want) in cases {
            let got = check(&entries, name, "ssh-ed25519", &key(presented));
            assert_eq!(&got, want, "{name} presenting {presented}");
        }
    }

    #[test]
    fn key_type_comes_from_the_key() {
        let rsa = "AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7";
        let cases: &[(Vec<u8>, Option<&str>)] = &[
            (key(KEY_A), Some("ssh-ed25519")),
            (key(rsa), Some("ssh-rsa")),
            (vec![0, 0, 0], None),
            (vec![0, 0, 0, 9, b'a'], None),
            (vec![0, 0, 0, 1, 0xff], None),
        ];
        for (blob, want) in cases {
            assert_eq!(key_type(blob), *want, "{blob:?}");
        }
    }

    #[test]
    fn appended_line_round_trips() {
        let name = host_name("127.0.0.1", 2201);
        let line = entry_line(&name, "ssh-ed25519", &key(KEY_A));
        assert_eq!(line, format!("[127.0.0.1]:2201 ssh-ed25519 {KEY_A}\n"));
        let entries = parse(&line);
        assert_eq!(
            check(&entries, &name, "ssh-ed25519", &key(KEY_A)),
            Verdict::Known
        );
    }
}
