//! Running one command on a machine: its output streamed line by line to the
//! log (tagged with the machine) while it is captured, its exit status, and
//! a timeout after which the command is killed.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use russh::client::{Handle, Msg};
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Sig};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};

use super::error::Error;
use super::host_key::Client;

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(u32),
    /// A signal (`KILL`, `TERM`, …) ended it.
    Signal(String),
    /// The server closed the channel without saying.
    Unknown,
}

impl ExitStatus {
    /// Whether the command exited with 0.
    pub fn success(&self) -> bool {
        *self == ExitStatus::Code(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(code) => write!(f, "exit status {code}"),
            ExitStatus::Signal(signal) => write!(f, "killed by SIG{signal}"),
            ExitStatus::Unknown => f.write_str("no exit status"),
        }
    }
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Its standard output (lossy UTF-8).
    pub stdout: String,
    /// Its standard error (lossy UTF-8).
    pub stderr: String,
}

/// Splits a byte stream into lines as it arrives; the last, unterminated
/// line comes out of [`Lines::finish`].
#[derive(Debug, Default)]
pub(crate) struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// Feeds `data`; returns the lines it completed (without `\n` or `\r\n`).
    pub fn push(&mut self, data: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(data);
        let mut lines = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let rest = self.pending.split_off(end + 1);
            let mut line = std::mem::replace(&mut self.pending, rest);
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            lines.push(String::from_utf8_lossy(&line).into_owned());
        }
        lines
    }

    /// The unterminated rest, if any.
    pub fn finish(&mut self) -> Option<String> {
        (!self.pending.is_empty())
            .then(|| String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned())
    }
}

/// One output stream of the command: logged by line, captured whole.
#[derive(Default)]
struct Stream {
    lines: Lines,
    captured: Vec<u8>,
}

impl Stream {
    fn push(&mut self, machine: &str, name: &str, data: &[u8]) {
        self.captured.extend_from_slice(data);
        for line in self.lines.push(data) {
            tracing::info!(machine, stream = name, "{line}");
        }
    }

    fn finish(&mut self, machine: &str, name: &str) -> String {
        if let Some(line) = self.lines.finish() {
            tracing::info!(machine, stream = name, "{line}");
        }
        String::from_utf8_lossy(&self.captured).into_owned()
    }
}

/// Runs `command` on the session, feeding `stdin` (then end-of-file) when
/// given; kills its process group after `timeout`. Output is read while
/// stdin is written: russh queues window adjustments with the channel's
/// messages, so a writer that does not read stalls once the queue is full.
pub(crate) async fn exec(
    handle: &Handle<Client>,
    machine: &str,
    command: &str,
    stdin: Option<&mut (dyn AsyncRead + Unpin + Send)>,
    timeout: Duration,
) -> Result<Output, Error> {
    let session_error = |e: russh::Error| Error::Session {
        machine: machine.to_string(),
        doing: format!("running `{command}`"),
        reason: e.to_string(),
    };
    let channel = handle.channel_open_session().await.map_err(session_error)?;
    channel
        .exec(true, with_process_group_header(command))
        .await
        .map_err(session_error)?;
    let (mut read, write) = channel.split();
    let group = AtomicU32::new(0);
    let work = async {
        let sending = send(&write, stdin);
        let collecting = collect(&mut read, machine, &group);
        tokio::pin!(sending, collecting);
        tokio::select! {
            sent = &mut sending => sent,
            // The command ended before taking all its input (it failed, or
            // never reads it): nothing will take the rest, so stop sending.
            output = &mut collecting => return Ok(output),
        }?;
        Ok(collecting.await)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result.map_err(session_error),
        Err(_) => {
            kill_group(handle, machine, group.load(Ordering::Relaxed)).await;
            let _ = write.close().await;
            Err(Error::CommandTimeout {
                machine: machine.to_string(),
                command: command.to_string(),
                timeout,
            })
        }
    }
}

/// `command` preceded by printing the shell's process id, which is its
/// process group (sshd starts every session in a new session): the first
/// line of stdout, taken off by [`Header`]. OpenSSH refuses "signal"
/// requests on root sessions (no privilege separation there), so a command
/// past its timeout is killed with `kill` on a second channel instead.
fn with_process_group_header(command: &str) -> String {
    format!("echo $$; {command}")
}

/// Takes the process-group line off the front of stdout.
#[derive(Debug, Default)]
pub(crate) struct Header {
    pending: Vec<u8>,
    done: bool,
}

impl Header {
    /// Feeds stdout `data`; returns the process group once its line is
    /// complete, and the bytes of `data` that belong to the command.
    pub fn push<'a>(&mut self, data: &'a [u8]) -> (Option<u32>, &'a [u8]) {
        if self.done {
            return (None, data);
        }
        match data.iter().position(|b| *b == b'\n') {
            None => {
                self.pending.extend_from_slice(data);
                (None, &[])
            }
            Some(end) => {
                self.pending.extend_from_slice(&data[..end]);
                self.done = true;
                let group = std::str::from_utf8(&self.pending)
                    .ok()
                    .and_then(|text| text.trim().parse().ok());
                (group, &data[end + 1..])
            }
        }
    }
}

/// Kills process group `group` (0: unknown, nothing to do) through a channel
/// of its own; a failure is logged, the timeout error says the rest.
async fn kill_group(handle: &Handle<Client>, machine: &str, group: u32) {
    if group <= 1 {
        return;
    }
    let killing = async {
        let mut channel = handle.channel_open_session().await?;
        channel
            .exec(true, format!("kill -KILL -- -{group}"))
            .await?;
        while channel.wait().await.is_some() {}
        Ok::<_, russh::Error>(())
    };
    match tokio::time::timeout(Duration::from_secs(10), killing).await {
        Ok(Ok(())) => tracing::warn!(machine, group, "timed out; process group killed"),
        Ok(Err(e)) => tracing::warn!(machine, group, "timed out; cannot kill it: {e}"),
        Err(_) => tracing::warn!(machine, group, "timed out; kill did not answer"),
    }
}

async fn send(
    write: &ChannelWriteHalf<Msg>,
    stdin: Option<&mut (dyn AsyncRead + Unpin + Send)>,
) -> Result<(), russh::Error> {
    if let Some(stdin) = stdin {
        // Large reads, so every SSH packet is as full as the server allows
        // (`Channel::data` copies through 8 KiB buffers: four times the packets).
        let mut writer = write.make_writer();
        let mut buffer = vec![0; 256 << 10];
        loop {
            let read = stdin.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            writer.write_all(&buffer[..read]).await?;
        }
    }
    write.eof().await
}

async fn collect(read: &mut ChannelReadHalf, machine: &str, group: &AtomicU32) -> Output {
    let (mut stdout, mut stderr) = (Stream::default(), Stream::default());
    let mut header = Header::default();
    let mut status = ExitStatus::Unknown;
    while let Some(message) = read.wait().await {
        match message {
            ChannelMsg::Data { data } => {
                let (found, rest) = header.push(&data);
                if let Some(found) = found {
                    group.store(found, Ordering::Relaxed);
                }
                stdout.push(machine, "stdout", rest);
            }
            ChannelMsg::ExtendedData { data, ext: 1 } => stderr.push(machine, "stderr", &data),
            ChannelMsg::ExitStatus { exit_status } => status = ExitStatus::Code(exit_status),
            ChannelMsg::ExitSignal { signal_name, .. } => {
                status = ExitStatus::Signal(signal_name_text(&signal_name))
            }
            _ => {}
        }
    }
    Output {
        status,
        stdout: stdout.finish(machine, "stdout"),
        stderr: stderr.finish(machine, "stderr"),
    }
}

fn signal_name_text(signal: &Sig) -> String {
    match signal {
        Sig::Custom(name) => name.clone(),
        other => format!("{other:?}"),
    }
}

/// Quotes `text` for a POSIX shell, so a path or name reaches a remote
/// command as one word whatever it holds.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Output arriving in these chunks.
    type Chunks = &'static [&'static [u8]];

    #[test]
    fn lines_split_across_chunks() {
        let cases: &[(Chunks, &[&str], Option<&str>)] = &[
            (&[b"a\nb\n"], &["a", "b"], None),
            (&[b"a", b"b\nc"], &["ab"], Some("c")),
            (&[b"crlf\r\n", b"\n"], &["crlf", ""], None),
            (&[b"\xffbad\n"], &["\u{fffd}bad"], None),
            (&[], &[], None),
        ];
        for (chunks, want_lines, want_rest) in cases {
            let mut lines = Lines::default();
            let got: Vec<String> = chunks.iter().flat_map(|c| lines.push(c)).collect();
            assert_eq!(got, *want_lines, "{chunks:?}");
            assert_eq!(lines.finish().as_deref(), *want_rest, "{chunks:?}");
        }
    }

    #[test]
    fn header_line_is_taken_off_stdout() {
        let cases: &[(Chunks, Option<u32>, &[u8])] = &[
            (&[b"123\nout\n"], Some(123), b"out\n"),
            (&[b"12", b"3\n", b"out"], Some(123), b"out"),
            (&[b"4\n", b"5\n"], Some(4), b"5\n"),
            (&[b"x\nout"], None, b"out"),
            (&[b"77"], None, b""),
        ];
        for (chunks, want_group, want_rest) in cases {
            let mut header = Header::default();
            let mut group = None;
            let mut rest = Vec::new();
            for chunk in *chunks {
                let (found, tail) = header.push(chunk);
                group = group.or(found);
                rest.extend_from_slice(tail);
            }
            assert_eq!(
                (group, rest.as_slice()),
                (*want_group, *want_rest),
                "{chunks:?}"
            );
        }
    }

    #[test]
    fn shell_quoting() {
        for (text, want) in [
            ("plain", "'plain'"),
            ("with space", "'with space'"),
            ("it's", r"'it'\''s'"),
            ("$(rm -rf /)", "'$(rm -rf /)'"),
        ] {
            assert_eq!(shell_quote(text), want);
        }
    }

    #[test]
    fn exit_status_text() {
        assert!(ExitStatus::Code(0).success());
        assert!(!ExitStatus::Code(1).success());
        assert_eq!(ExitStatus::Code(3).to_string(), "exit status 3");
        assert_eq!(
            ExitStatus::Signal("KILL".into()).to_string(),
            "killed by SIGKILL"
        );
    }
}
