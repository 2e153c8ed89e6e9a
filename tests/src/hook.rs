//! A small HTTP server playing an access hook (`auth.hooks.*`): it records each POSTed JSON body
//! and answers as a test's `answer` function says (a status after a delay), so a test can allow,
//! deny and time out publishes and plays, and read the notifications the gateway sends.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// The largest hook body read.
const MAX_BODY: usize = 64 * 1024;

/// What the hook answers to one request: an HTTP status, sent after a delay.
pub type Answer = (u16, Duration);

/// A loopback hook server, serving on background threads for the life of the process.
pub struct HookServer {
    addr: SocketAddr,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl HookServer {
    /// Binds 127.0.0.1:0; `answer` decides each request from its JSON body.
    pub fn start(answer: impl Fn(&Value) -> Answer + Send + Sync + 'static) -> HookServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(answer);
        let seen = Arc::clone(&bodies);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (seen, answer) = (Arc::clone(&seen), Arc::clone(&answer));
                // One thread per request: a slow answer must not hold up the next request.
                std::thread::spawn(move || serve_one(stream, &seen, &*answer));
            }
        });
        HookServer { addr, bodies }
    }

    /// `http://127.0.0.1:PORT/{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    /// Waits up to `timeout` for a body (received so far, or later) for which `pred` holds.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let find = || {
            let bodies = self.bodies.lock().expect("never poisoned");
            bodies.iter().find(|b| pred(b)).cloned()
        };
        let mut found = None;
        crate::wait_until(timeout, || {
            found = find();
            found.is_some()
        });
        found
    }

    /// Every body received so far.
    pub fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().expect("never poisoned").clone()
    }
}

fn serve_one(stream: TcpStream, seen: &Mutex<Vec<Value>>, answer: &dyn Fn(&Value) -> Answer) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(body) = read_body(&stream) else {
        return;
    };
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (status, delay) = answer(&value);
    seen.lock().expect("never poisoned").push(value);
    std::thread::sleep(delay);
    let reply = format!("HTTP/1.1 {status} Hook\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let mut stream = stream;
    let _ = stream.write_all(reply.as_bytes());
}

fn read_body(stream: &TcpStream) -> Option<Vec<u8>> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0usize;
    let mut first = true;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if first {
            first = false;
            continue;
        }
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok()?;
            }
        }
    }
    if length > MAX_BODY {
        return None;
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}
