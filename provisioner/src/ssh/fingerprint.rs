//! Key fingerprints as OpenSSH prints them (`SHA256:` + unpadded base64 of
//! the SHA-256 of the key's wire form), so error messages can be compared
//! with `ssh-keygen -l` on the machine.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;

/// The `SHA256:…` fingerprint of a public key in SSH wire format.
pub fn sha256(key: &[u8]) -> String {
    format!(
        "SHA256:{}",
        STANDARD_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, key))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    /// Pairs printed by `ssh-keygen -l -f key.pub`.
    #[test]
    fn matches_ssh_keygen() {
        let cases = [(
            "AAAAC3NzaC1lZDI1NTE5AAAAICExoGtKXD/Amj2v/Pxmy35/wb7lPEGnyxOjeUUB585i",
            "SHA256:h2eppFhFnCh9Nd+mebQypdTpROuesz3G62SrIViv/Bo",
        ), (
            "AAAAB3NzaC1yc2EAAAADAQABAAABAQDQG7jg1JueRdeIAuMaDY4aZ3PCAgY6L/PEhSjvpjgrKCcU1lAuRN45/2Kl9rhGqP90GxBBzE/phAoSzMCWMqe4q5ig2fxdB5mD0oGYzjpCi6J/yfASoerTyiS9mXbGVTbBQOflZRSObcyzy4BgVmpk7h1qPU3axA9GG7zc+MIEpyiXMO0V4yS9hBzJAvVqCXZA1epyI7cbQ4BwUawlfrGN+zWwaUvdR8M8QEqxresklLD8PteM7Df83yWKOCg3WJv8qTtzdWohK615VZJ93IORL8r0frJfyEnALTnGc6PHqUrU0kYLwVXNHvsrotsXpyPzIqCQ+chnFcpgfCOnVWY/",
            "SHA256:DkYiMk7kveBvGhN/3jFGp3Fixa7l4xhSbqwfo8EJIbA",
        )];
        for (key, want) in cases {
            assert_eq!(sha256(&STANDARD.decode(key).unwrap()), want);
        }
    }
}
