//! A small HTTP/1.1 proxy in front of a store (Azurite) that injects faults into requests:
//! 503 and 500 answers, slow answers, uploads cut off mid-body, and answers lost after the
//! store has done the request. Seeded, so a failing run can be replayed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Chances per thousand requests of each fault.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    pub busy_503: u32,
    pub error_500: u32,
    /// The answer comes two seconds late.
    pub slow: u32,
    /// A request with a body is cut off half way and its connection closed.
    pub cut_upload: u32,
    /// The store does the request, but its answer never reaches the client.
    pub lost_answer: u32,
    /// Only requests whose first line holds this text (`comp=blocklist`, `_runner/progress`).
    pub only: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    Busy503,
    Error500,
    Slow,
    CutUpload,
    LostAnswer,
}

pub const KINDS: [Fault; 5] = [
    Fault::Busy503,
    Fault::Error500,
    Fault::Slow,
    Fault::CutUpload,
    Fault::LostAnswer,
];

struct Shared {
    upstream: u16,
    faults: Mutex<Faults>,
    seed: Mutex<u64>,
    injected: [AtomicUsize; 5],
    requests: AtomicUsize,
    stop: AtomicBool,
}

pub struct FaultProxy {
    pub port: u16,
    shared: Arc<Shared>,
}

impl FaultProxy {
    pub fn start(upstream: u16, faults: Faults, seed: u64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            upstream,
            faults: Mutex::new(faults),
            seed: Mutex::new(seed.max(1)),
            injected: Default::default(),
            requests: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let shared = accepting.clone();
                std::thread::spawn(move || {
                    let _ = serve(client, &shared);
                });
            }
        });
        FaultProxy { port, shared }
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.shared.faults.lock().unwrap() = faults;
    }

    pub fn injected(&self, fault: Fault) -> usize {
        self.shared.injected[fault as usize].load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl Shared {
    /// The fault for the next request, if any.
    fn draw(&self, head: &[u8], has_body: bool) -> Option<Fault> {
        let f = *self.faults.lock().unwrap();
        let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
        if let Some(only) = f.only
            && !String::from_utf8_lossy(line).contains(only)
        {
            return None;
        }
        let roll = {
            let mut s = self.seed.lock().unwrap();
            *s ^= *s << 13;
            *s ^= *s >> 7;
            *s ^= *s << 17;
            (*s % 1000) as u32
        };
        let mut edge = 0;
        for (fault, chance) in [
            (Fault::Busy503, f.busy_503),
            (Fault::Error500, f.error_500),
            (Fault::Slow, f.slow),
            (Fault::CutUpload, if has_body { f.cut_upload } else { 0 }),
            (Fault::LostAnswer, f.lost_answer),
        ] {
            edge += chance;
            if roll < edge {
                self.injected[fault as usize].fetch_add(1, Ordering::SeqCst);
                return Some(fault);
            }
        }
        None
    }
}

/// One client connection: its requests in turn, each passed on or faulted.
fn serve(client: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let mut upstream: Option<(TcpStream, BufReader<TcpStream>)> = None;
    loop {
        let Some(head) = read_head(&mut reader)? else {
            return Ok(());
        };
        shared.requests.fetch_add(1, Ordering::SeqCst);
        let length = content_length(&head).unwrap_or(0);
        let fault = shared.draw(&head, length > 0);
        if fault == Some(Fault::CutUpload) {
            let mut half = vec![0u8; length / 2];
            reader.read_exact(&mut half)?;
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        match fault {
            Some(Fault::Busy503) => {
                answer(&mut client, "503 Service Unavailable", "ServerBusy")?;
                continue;
            }
            Some(Fault::Error500) => {
                answer(&mut client, "500 Internal Server Error", "InternalError")?;
                continue;
            }
            Some(Fault::Slow) => std::thread::sleep(Duration::from_secs(2)),
            _ => {}
        }
        // The store may have closed an idle connection: one fresh attempt.
        let mut response = None;
        for _ in 0..2 {
            if upstream.is_none() {
                let stream = TcpStream::connect(("127.0.0.1", shared.upstream))?;
                let reader = BufReader::new(stream.try_clone()?);
                upstream = Some((stream, reader));
            }
            let Some((to_store, from_store)) = upstream.as_mut() else {
                return Ok(());
            };
            let sent = to_store
                .write_all(&head)
                .and_then(|_| to_store.write_all(&body));
            match sent.and_then(|_| read_head(from_store)) {
                Ok(Some(r)) => {
                    response = Some(r);
                    break;
                }
                _ => upstream = None,
            }
        }
        let (Some(response), Some((_, from_store))) = (response, upstream.as_mut()) else {
            return Ok(());
        };
        let no_body = head.starts_with(b"HEAD ")
            || response.starts_with(b"HTTP/1.1 204")
            || response.starts_with(b"HTTP/1.1 304");
        let response_body = if no_body {
            Vec::new()
        } else if is_chunked(&response) {
            read_chunked(from_store)?
        } else {
            let mut b = vec![0u8; content_length(&response).unwrap_or(0)];
            from_store.read_exact(&mut b)?;
            b
        };
        if fault == Some(Fault::LostAnswer) {
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        client.write_all(&response)?;
        client.write_all(&response_body)?;
    }
}

fn answer(client: &mut TcpStream, status: &str, code: &str) -> std::io::Result<()> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>"
    );
    write!(
        client,
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nx-ms-error-code: {code}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A request or response head up to its blank line; `None` at a clean end of stream.
fn read_head(reader: &mut impl BufRead) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        if reader.read_until(b'\n', &mut head)? == 0 {
            return Ok(None);
        }
        if head[before..] == *b"\r\n" && before > 0 {
            return Ok(Some(head));
        }
    }
}

fn header<'a>(head: &'a [u8], name: &str) -> Option<&'a str> {
    std::str::from_utf8(head).ok()?.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn content_length(head: &[u8]) -> Option<usize> {
    header(head, "content-length")?.parse().ok()
}

fn is_chunked(head: &[u8]) -> bool {
    header(head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
}

/// A chunked body as it came, chunk sizes and trailer included.
fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    loop {
        let mut line = Vec::new();
        reader.read_until(b'\n', &mut line)?;
        raw.extend_from_slice(&line);
        let text = String::from_utf8_lossy(&line);
        let size = usize::from_str_radix(text.trim().split(';').next().unwrap_or("0"), 16)
            .map_err(std::io::Error::other)?;
        if size == 0 {
            // Trailer lines up to the blank one.
            loop {
                let mut trailer = Vec::new();
                reader.read_until(b'\n', &mut trailer)?;
                raw.extend_from_slice(&trailer);
                if trailer == b"\r\n" || trailer.is_empty() {
                    return Ok(raw);
                }
            }
        }
        let mut chunk = vec![0u8; size + 2];
        reader.read_exact(&mut chunk)?;
        raw.extend_from_slice(&chunk);
    }
}
