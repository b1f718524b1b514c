//! The HTTP ends of the load-balancer benchmark: a tiny HTTP/1.1 server
//! (a thread per connection, keep-alive unless the client says `close`)
//! and closed-loop clients that count requests, failures and latencies.
//! Plain blocking sockets: the load must cost little beside what it measures.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

/// The one answer the server gives.
const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";

/// How long a client waits on a connect or a read before it counts a failure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `RESPONSE` on `port` of every address until the process is killed.
pub fn serve(port: u16) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("0.0.0.0", port))?;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        std::thread::spawn(move || {
            let _ = answer(stream);
        });
    }
    Ok(())
}

/// Answers the requests of one connection until it closes or asks to.
fn answer(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let Some(end) = header_end(&buffer) else {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..n]);
            continue;
        };
        let close = String::from_utf8_lossy(&buffer[..end])
            .to_ascii_lowercase()
            .contains("connection: close");
        buffer.drain(..end);
        stream.write_all(RESPONSE)?;
        if close {
            return Ok(());
        }
    }
}

/// Where the head of the first message in `buffer` ends (after its blank line).
fn header_end(buffer: &[u8]) -> Option<usize> {
    buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// How each request reaches the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Every client sends its requests one after another on one connection.
    KeepAlive,
    /// Every request opens its own connection (`Connection: close`).
    New,
}

/// One client's tally.
#[derive(Default)]
pub struct Tally {
    /// Latency of every request that succeeded.
    pub latencies: Vec<Duration>,
    /// Requests that failed (refused, reset, timed out, not a 200).
    pub failures: u64,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.failures += other.failures;
    }

    /// The `p`-quantile of the latencies (zero for none).
    pub fn quantile(&mut self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        self.latencies.sort_unstable();
        let at = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len() - 1);
        self.latencies[at]
    }
}

/// Runs `clients` closed-loop clients against `target` until `stop` is set.
pub fn load(target: SocketAddr, mode: Mode, clients: usize, stop: Arc<AtomicBool>) -> Tally {
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || client(target, mode, &stop))
        })
        .collect();
    let mut total = Tally::default();
    for thread in threads {
        if let Ok(tally) = thread.join() {
            total.merge(tally);
        }
    }
    total
}

/// One client: requests until `stop`, reconnecting after a failure.
fn client(target: SocketAddr, mode: Mode, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    let mut connection: Option<TcpStream> = None;
    let mut buffer = Vec::with_capacity(1024);
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let outcome = match mode {
            Mode::KeepAlive => keep_alive_request(target, &mut connection, &mut buffer),
            Mode::New => new_connection_request(target, &mut buffer),
        };
        match outcome {
            Ok(()) => tally.latencies.push(started.elapsed()),
            Err(_) => {
                tally.failures += 1;
                connection = None;
            }
        }
    }
    tally
}

fn connect(target: SocketAddr) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&target, REQUEST_TIMEOUT)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    Ok(stream)
}

fn keep_alive_request(
    target: SocketAddr,
    connection: &mut Option<TcpStream>,
    buffer: &mut Vec<u8>,
) -> anyhow::Result<()> {
    if connection.is_none() {
        *connection = Some(connect(target)?);
    }
    let stream = connection.as_mut().context("a connection")?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: lb-bench\r\n\r\n")?;
    buffer.clear();
    let mut chunk = [0u8; 1024];
    while buffer.len() < RESPONSE.len() {
        let n = stream.read(&mut chunk)?;
        anyhow::ensure!(n > 0, "closed mid-response");
        buffer.extend_from_slice(&chunk[..n]);
    }
    anyhow::ensure!(buffer.as_slice() == RESPONSE, "unexpected response");
    Ok(())
}

fn new_connection_request(target: SocketAddr, buffer: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut stream = connect(target)?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: lb-bench\r\nConnection: close\r\n\r\n")?;
    buffer.clear();
    stream.read_to_end(buffer)?;
    anyhow::ensure!(buffer.as_slice() == RESPONSE, "unexpected response");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_modes_get_answers_from_the_server() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || answer(stream));
            }
        });
        for mode in [Mode::KeepAlive, Mode::New] {
            let stop = Arc::new(AtomicBool::new(false));
            let stopper = stop.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                stopper.store(true, Ordering::Relaxed);
            });
            let mut tally = load(target, mode, 2, stop);
            assert_eq!(tally.failures, 0, "{mode:?}");
            assert!(!tally.latencies.is_empty(), "{mode:?}");
            assert!(tally.quantile(0.99) >= tally.quantile(0.5));
        }
    }
}
