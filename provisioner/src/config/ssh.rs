//! How each machine is reached: its own SSH keys over the `[ssh]` defaults over
//! berth's defaults. Pure: nothing here opens a connection or reads a key file.

use std::path::PathBuf;

use toml::Spanned;

use super::model::{Auth, JumpHost, Ssh, DEFAULT_KNOWN_HOSTS, DEFAULT_SSH_PORT, DEFAULT_SSH_USER};
use super::raw::RawSsh;
use super::validate::Checker;
use super::ConfigError;

/// The settings of a machine whose own keys are `machine` (at field path
/// `field`) under the `[ssh]` keys `defaults`.
pub(crate) fn resolve(
    checker: &Checker<'_>,
    defaults: &RawSsh,
    machine: &RawSsh,
    field: &str,
) -> Result<Ssh, ConfigError> {
    let pick = |own: &Option<Spanned<String>>, default: &Option<Spanned<String>>, name: &str| match (
        own, default,
    ) {
        (Some(value), _) => Some((value.clone(), format!("{field}.{name}"))),
        (None, Some(value)) => Some((value.clone(), format!("ssh.{name}"))),
        (None, None) => None,
    };
    let user = match pick(&machine.user, &defaults.user, "user") {
        Some((user, at)) => {
            checker.require(&user, &at, valid_user(user.get_ref()))?;
            user.into_inner()
        }
        None => DEFAULT_SSH_USER.to_owned(),
    };
    let port = match (&machine.port, &defaults.port) {
        (Some(port), _) => checked_port(checker, port, &format!("{field}.port"))?,
        (None, Some(port)) => checked_port(checker, port, "ssh.port")?,
        (None, None) => DEFAULT_SSH_PORT,
    };
    let auth = auth(checker, defaults, machine, field)?;
    let known_hosts = match pick(&machine.known_hosts, &defaults.known_hosts, "known_hosts") {
        Some((path, at)) => {
            let empty = path.get_ref().trim().is_empty();
            checker.require(&path, &at, (!empty).then_some(()).ok_or("must name a file"))?;
            PathBuf::from(path.into_inner())
        }
        None => PathBuf::from(DEFAULT_KNOWN_HOSTS),
    };
    let host_key_policy = machine
        .host_key_policy
        .or(defaults.host_key_policy)
        .unwrap_or_default();
    let jump_host = match pick(&machine.jump_host, &defaults.jump_host, "jump_host") {
        Some((jump, at)) => Some(checker.require(&jump, &at, parse_jump_host(jump.get_ref()))?),
        None => None,
    };
    Ok(Ssh {
        user,
        port,
        auth,
        known_hosts,
        host_key_policy,
        jump_host,
    })
}

/// Key file or agent: the machine's own choice first, then `[ssh]`'s, then the agent.
fn auth(
    checker: &Checker<'_>,
    defaults: &RawSsh,
    machine: &RawSsh,
    field: &str,
) -> Result<Auth, ConfigError> {
    for (level, at) in [(machine, field), (defaults, "ssh")] {
        if let (Some(_), Some(agent)) = (&level.key_file, &level.agent) {
            if *agent.get_ref() {
                return Err(checker.error(
                    agent.span(),
                    &format!("{at}.agent"),
                    "set key_file or agent = true, not both",
                ));
            }
        }
    }
    let key_file = |level: &RawSsh, at: &str| -> Result<Option<Auth>, ConfigError> {
        match &level.key_file {
            Some(path) if path.get_ref().trim().is_empty() => Err(checker.error(
                path.span(),
                &format!("{at}.key_file"),
                "must name a private key file",
            )),
            Some(path) => Ok(Some(Auth::KeyFile(PathBuf::from(path.get_ref())))),
            None => Ok(None),
        }
    };
    if let Some(auth) = key_file(machine, field)? {
        return Ok(auth);
    }
    if machine.agent.as_ref().is_some_and(|agent| *agent.get_ref()) {
        return Ok(Auth::Agent);
    }
    if let Some(auth) = key_file(defaults, "ssh")? {
        return Ok(auth);
    }
    for (level, at) in [(machine, field), (defaults, "ssh")] {
        if let Some(agent) = level.agent.as_ref().filter(|agent| !*agent.get_ref()) {
            return Err(checker.error(
                agent.span(),
                &format!("{at}.agent"),
                "agent = false needs a key_file (here or in [ssh]); allowed: key_file = \"PATH\" or agent = true",
            ));
        }
    }
    Ok(Auth::Agent)
}

fn checked_port(
    checker: &Checker<'_>,
    port: &Spanned<i64>,
    field: &str,
) -> Result<u16, ConfigError> {
    let value = u16::try_from(*port.get_ref())
        .ok()
        .filter(|port| *port != 0);
    value.ok_or_else(|| checker.error(port.span(), field, "must be a port between 1 and 65535"))
}

fn valid_user(user: &str) -> Result<(), &'static str> {
    let bad = user.is_empty()
        || user
            .chars()
            .any(|c| c.is_whitespace() || c == '@' || c == ':');
    if bad {
        Err("must be a login name without spaces, '@' or ':'")
    } else {
        Ok(())
    }
}

/// Reads `[user@]host[:port]`, with an IPv6 host in brackets (`[fd00::1]:2222`).
pub fn parse_jump_host(text: &str) -> Result<JumpHost, &'static str> {
    const SHAPE: &str = "must be [user@]host[:port], e.g. admin@bastion.example.com:22";
    let (user, rest) = match text.rsplit_once('@') {
        Some((user, rest)) => {
            valid_user(user).map_err(|_| SHAPE)?;
            (Some(user.to_owned()), rest)
        }
        None => (None, text),
    };
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or(SHAPE)?;
        host.parse::<std::net::Ipv6Addr>().map_err(|_| SHAPE)?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or(SHAPE)?)),
        }
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(SHAPE);
    }
    let port = match port {
        Some(port) => port.parse::<u16>().ok().filter(|p| *p != 0).ok_or(SHAPE)?,
        None => DEFAULT_SSH_PORT,
    };
    Ok(JumpHost {
        user,
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_hosts_read_user_host_and_port() {
        type Want<'a> = Option<(Option<&'a str>, &'a str, u16)>;
        let cases: [(&str, Want<'_>); 8] = [
            ("bastion", Some((None, "bastion", 22))),
            ("ops@bastion:2222", Some((Some("ops"), "bastion", 2222))),
            ("10.0.0.9:22", Some((None, "10.0.0.9", 22))),
            ("[fd00::9]:2200", Some((None, "fd00::9", 2200))),
            ("[fd00::9]", Some((None, "fd00::9", 22))),
            ("bastion:0", None),
            ("@bastion", None),
            ("", None),
        ];
        for (text, want) in cases {
            let got = parse_jump_host(text).ok().map(|j| (j.user, j.host, j.port));
            let want = want.map(|(u, h, p)| (u.map(str::to_owned), h.to_owned(), p));
            assert_eq!(got, want, "{text}");
        }
    }
}
