//! An HTTP proxy on loopback in front of moto that answers chosen EC2 calls
//! with an error (capacity, throttling), never answers them, or passes them
//! on and holds the answer back (a controller killed mid-call), and records
//! every action it saw.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a matching call gets instead of moto's answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// An EC2 error with this code.
    Error(&'static str),
    /// No answer at all.
    Hang,
    /// Passed on to moto, whose answer is held back: the call takes effect
    /// but the caller never hears (the e2e kill test holds RunInstances).
    #[allow(dead_code)]
    Hold,
    /// Passed on to moto, then the connection is closed before its answer:
    /// the call takes effect and the caller sees a dropped connection (a
    /// controller killed right after AWS did the work).
    #[allow(dead_code)]
    Lost,
}

/// A rule: calls of `action` whose form body contains `body_contains` get
/// `answer`, `times` times.
#[derive(Debug, Clone)]
pub struct Fault {
    pub action: &'static str,
    pub body_contains: &'static str,
    pub times: usize,
    pub answer: Answer,
}

/// A rule that picks one call by its position: the call of `action`
/// after `skip` others of it gets `answer`, once.
#[derive(Debug, Clone)]
struct Nth {
    action: String,
    skip: usize,
    answer: Answer,
}

/// The rules of one proxy.
#[derive(Debug, Default)]
struct Rules {
    faults: Vec<Fault>,
    nth: Vec<Nth>,
}

impl Rules {
    /// The answer the rules give a call of `action` with form body `text`,
    /// counting it against the rule that matches.
    fn answer(&mut self, action: &str, text: &str) -> Option<Answer> {
        if let Some(i) = self.nth.iter().position(|r| r.action == action) {
            if self.nth[i].skip == 0 {
                return Some(self.nth.remove(i).answer);
            }
            self.nth[i].skip -= 1;
        }
        let found = self
            .faults
            .iter_mut()
            .find(|f| f.times > 0 && f.action == action && text.contains(f.body_contains));
        found.map(|f| {
            f.times -= 1;
            f.answer.clone()
        })
    }
}

/// The proxy; its task stops when it is dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    faults: Arc<Mutex<Rules>>,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy to `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let faults: Arc<Mutex<Rules>> = Arc::default();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let (f, s) = (faults.clone(), seen.clone());
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                connections.spawn(serve(client, upstream.clone(), f.clone(), s.clone()));
            }
        });
        Self {
            url,
            faults,
            seen,
            task,
        }
    }

    /// Adds a rule.
    pub fn fail(&self, fault: Fault) {
        self.faults.lock().unwrap().faults.push(fault);
    }

    /// Gives the call of `action` that comes after `skip` others of it
    /// `answer`, once (the third CreateTargetGroup of a flow, say).
    #[allow(dead_code)] // the provisioner's tests pick calls by body
    pub fn fail_nth(&self, action: &str, skip: usize, answer: Answer) {
        self.faults.lock().unwrap().nth.push(Nth {
            action: action.to_owned(),
            skip,
            answer,
        });
    }

    /// Every call seen so far, as `Action body`.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One client connection: requests one after another (keep-alive).
async fn serve(
    mut client: TcpStream,
    upstream: String,
    faults: Arc<Mutex<Rules>>,
    seen: Arc<Mutex<Vec<String>>>,
) {
    let mut buffer = Vec::new();
    while let Some((head, body)) = read_message(&mut client, &mut buffer).await {
        let text = String::from_utf8_lossy(&body).into_owned();
        let action = form_value(&text, "Action").unwrap_or_default();
        seen.lock().unwrap().push(format!("{action} {text}"));
        let answer = faults.lock().unwrap().answer(&action, &text);
        let response = match answer {
            Some(Answer::Hang) => {
                std::future::pending::<()>().await;
                return;
            }
            Some(Answer::Hold) => {
                let _ = forward(&upstream, &head, &body).await;
                std::future::pending::<()>().await;
                return;
            }
            Some(Answer::Lost) => {
                let _ = forward(&upstream, &head, &body).await;
                return;
            }
            Some(Answer::Error(code)) => error_response(code),
            None => match forward(&upstream, &head, &body).await {
                Some(response) => response,
                None => return,
            },
        };
        if client.write_all(&response).await.is_err() {
            return;
        }
    }
}

/// Sends one request to moto on a fresh connection and reads the answer.
async fn forward(upstream: &str, head: &str, body: &[u8]) -> Option<Vec<u8>> {
    let mut conn = TcpStream::connect(upstream).await.ok()?;
    let head: String = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\r\n"))
        .collect();
    conn.write_all(format!("{head}Connection: close\r\n\r\n").as_bytes())
        .await
        .ok()?;
    conn.write_all(body).await.ok()?;
    let mut buffer = Vec::new();
    let (head, body) = read_message(&mut conn, &mut buffer).await?;
    let head: String = head
        .split("\r\n")
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            !l.starts_with("connection:") && !l.starts_with("content-length:")
        })
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\r\n"))
        .collect();
    let mut response = format!("{head}Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    response.extend(body);
    Some(response)
}

/// One HTTP/1.1 message (head, body) with a Content-Length body, or a body
/// up to EOF when it has none.
async fn read_message(conn: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let mut chunk = [0u8; 16384];
    let end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    buffer.drain(..end + 4);
    let length = head.split("\r\n").find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    match length {
        Some(length) => {
            while buffer.len() < length {
                let n = conn.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buffer.extend_from_slice(&chunk[..n]);
            }
            let body = buffer.drain(..length).collect();
            Some((head, body))
        }
        None if head.starts_with("HTTP/") => {
            conn.read_to_end(buffer).await.ok()?;
            Some((head, std::mem::take(buffer)))
        }
        None => Some((head, Vec::new())),
    }
}

/// The value of `key` in a form body.
fn form_value(body: &str, key: &str) -> Option<String> {
    body.split('&')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_owned)
}

/// EC2's error document for `code`.
fn error_response(code: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
         <Message>injected by the test</Message></Error></Errors><RequestID>fault</RequestID></Response>"
    );
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
