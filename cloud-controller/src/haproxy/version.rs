//! Which `haproxy.cfg` the running HAProxy loaded. A reload by signal
//! (`kill -USR2`) cannot fail: HAProxy logs `Loading failure!` and keeps the
//! old file. So the rendered file carries a stamp of its own text in
//! `global`'s `description`, which HAProxy reports in `show info` on its
//! stats socket; after a reload the provider asks, and a reload that left
//! the old file running is an error the controller retries and shows.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PREFIX: &str = "berth-config-";

/// `text` with its stamp as the first line of `global`. The stamp is a
/// hash of the rest, so an unchanged render keeps its stamp.
pub fn stamp(text: &str) -> String {
    let line = format!("    description {PREFIX}{:016x}\n", fnv1a(text.as_bytes()));
    match text.find("global\n") {
        Some(at) => {
            let after = at + "global\n".len();
            format!("{}{line}{}", &text[..after], &text[after..])
        }
        None => text.to_owned(),
    }
}

/// The stamp a rendered file carries.
pub fn stamp_of(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix("description "))
        .filter(|value| value.starts_with(PREFIX))
}

/// The `description` the HAProxy serving `socket` reports.
pub async fn running_stamp(socket: &Path) -> std::io::Result<Option<String>> {
    let mut stream = tokio::net::UnixStream::connect(socket).await?;
    stream.write_all(b"show info\n").await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok(answer
        .lines()
        .find_map(|line| line.strip_prefix("description: "))
        .map(|value| value.trim().to_owned()))
}

/// Waits until the HAProxy behind `socket` runs the file stamped `wanted`:
/// after a reload the old process may answer for a moment, and the new one
/// takes a while to start.
pub async fn wait_until_running(
    socket: &Path,
    wanted: &str,
    patience: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let seen = running_stamp(socket).await;
        if matches!(&seen, Ok(Some(running)) if running == wanted) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let seen = match seen {
                Ok(Some(running)) => format!("it still runs {running}"),
                Ok(None) => "it reports no berth stamp".to_owned(),
                Err(e) => format!("its stats socket {} answered {e}", socket.display()),
            };
            return Err(format!(
                "HAProxy did not load the new file ({wanted}) within {patience:?}: {seen}; its log says why"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// FNV-1a, 64 bits: stable across builds and Rust versions, unlike std's
/// hasher, so a restarted controller stamps an unchanged file alike.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stamp_opens_global_and_follows_the_text() {
        let text = "# head\nglobal\n    stats socket /s\n\ndefaults\n    mode tcp\n";
        let stamped = stamp(text);
        assert!(
            stamped.starts_with("# head\nglobal\n    description berth-config-"),
            "{stamped}"
        );
        assert!(stamped.ends_with("\n    stats socket /s\n\ndefaults\n    mode tcp\n"));
        assert_eq!(stamp(text), stamped, "stable");
        assert_ne!(stamp_of(&stamp("global\n    x\n")), stamp_of(&stamped));
        assert_eq!(
            stamp_of(&stamped).map(str::len),
            Some(PREFIX.len() + 16),
            "{stamped}"
        );
    }

    #[test]
    fn another_description_is_not_a_stamp() {
        assert_eq!(stamp_of("global\n    description my lb\n"), None);
    }
}
