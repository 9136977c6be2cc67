//! The soak client (`benches/soak.sh` runs it against `soak-server` with two workers).
//!
//! `soak --addr 127.0.0.1:PORT --pid MASTER_PID [--seconds 60] [--clients 16]`: for
//! `--seconds`, `--clients` tasks each pick at random, over and over: a keep-alive connection
//! with several small requests, a small request on a new connection, a large download or upload
//! (checked byte by byte, or by the SHA-256 the server answers), or a client that vanishes
//! mid-upload or mid-download. Every five seconds it samples the summed VmRSS of the master
//! and its workers. Prints one `key value` line per figure; exits 1 on any unexpected answer,
//! checksum mismatch or error on a client that did not vanish on purpose.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rwgi_bench_peers::pattern;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const STEP: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    connections: AtomicU64,
    bytes_down: AtomicU64,
    bytes_up: AtomicU64,
    vanished_up: AtomicU64,
    vanished_down: AtomicU64,
    unexpected: AtomicU64,
}

/// A small random number generator (xorshift), one per task.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

type Failure = String;

/// One connection with a read buffer.
struct Conn {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Conn {
    async fn open(addr: &str, counts: &Counts) -> Result<Conn, Failure> {
        counts.connections.fetch_add(1, Ordering::Relaxed);
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).ok();
        Ok(Conn {
            stream,
            buffer: Vec::with_capacity(64 * 1024),
        })
    }

    async fn fill(&mut self) -> Result<(), Failure> {
        let mut chunk = vec![0; 64 * 1024];
        let n = self
            .stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection".to_owned());
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    async fn line(&mut self) -> Result<Vec<u8>, Failure> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let line = self.buffer[..end].to_vec();
                self.buffer.drain(..end + 2);
                return Ok(line);
            }
            self.fill().await?;
        }
    }

    /// Reads one response; calls `sink` with each body piece. Returns the status.
    async fn response(&mut self, mut sink: impl FnMut(&[u8])) -> Result<u16, Failure> {
        let status_line = self.line().await?;
        let status_line = String::from_utf8_lossy(&status_line).into_owned();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let mut length = None;
        let mut chunked = false;
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                break;
            }
            let line = String::from_utf8_lossy(&line).to_ascii_lowercase();
            if let Some(value) = line.strip_prefix("content-length:") {
                length = value.trim().parse::<u64>().ok();
            }
            if line.starts_with("transfer-encoding:") && line.contains("chunked") {
                chunked = true;
            }
        }
        if chunked {
            loop {
                let size = self.line().await?;
                let size = u64::from_str_radix(String::from_utf8_lossy(&size).trim(), 16)
                    .map_err(|_| "bad chunk size".to_owned())?;
                if size == 0 {
                    self.line().await?;
                    break;
                }
                self.body(size, &mut sink).await?;
                self.line().await?;
            }
        } else if let Some(length) = length {
            self.body(length, &mut sink).await?;
        }
        Ok(status)
    }

    async fn body(&mut self, mut left: u64, sink: &mut impl FnMut(&[u8])) -> Result<(), Failure> {
        while left > 0 {
            if self.buffer.is_empty() {
                self.fill().await?;
            }
            let take = (self.buffer.len() as u64).min(left) as usize;
            sink(&self.buffer[..take]);
            self.buffer.drain(..take);
            left -= take as u64;
        }
        Ok(())
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| format!("write: {e}"))
    }
}

async fn small_get(conn: &mut Conn, close: bool, counts: &Counts) -> Result<(), Failure> {
    let request = if close {
        "GET /hello HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n"
    } else {
        "GET /hello HTTP/1.1\r\nHost: soak\r\n\r\n"
    };
    conn.send(request.as_bytes()).await?;
    let mut body = Vec::new();
    let status = conn.response(|piece| body.extend_from_slice(piece)).await?;
    counts.requests.fetch_add(1, Ordering::Relaxed);
    if status != 200 || body != b"hello\n" {
        return Err(format!("GET /hello: {status} {body:?}"));
    }
    Ok(())
}

async fn download(conn: &mut Conn, length: u64, seed: u64, counts: &Counts) -> Result<(), Failure> {
    let request = format!("GET /bytes/{length}/{seed} HTTP/1.1\r\nHost: soak\r\n\r\n");
    conn.send(request.as_bytes()).await?;
    let mut at = 0u64;
    let mut wrong = None;
    let status = conn
        .response(|piece| {
            for &byte in piece {
                if wrong.is_none() && byte != pattern(seed, at) {
                    wrong = Some(at);
                }
                at += 1;
            }
        })
        .await?;
    counts.requests.fetch_add(1, Ordering::Relaxed);
    counts.bytes_down.fetch_add(at, Ordering::Relaxed);
    if status != 200 || at != length || wrong.is_some() {
        return Err(format!(
            "download {length}/{seed}: status {status}, {at} bytes, first wrong byte {wrong:?}"
        ));
    }
    Ok(())
}

fn upload_bytes(length: u64, seed: u64) -> Vec<u8> {
    (0..length).map(|i| pattern(seed, i)).collect()
}

async fn upload(conn: &mut Conn, length: u64, seed: u64, counts: &Counts) -> Result<(), Failure> {
    let body = upload_bytes(length, seed);
    let expected = format!("{length} {:x}", Sha256::digest(&body));
    let head = format!("POST /upload HTTP/1.1\r\nHost: soak\r\nContent-Length: {length}\r\n\r\n");
    conn.send(head.as_bytes()).await?;
    for piece in body.chunks(256 * 1024) {
        conn.send(piece).await?;
    }
    let mut answer = Vec::new();
    let status = conn
        .response(|piece| answer.extend_from_slice(piece))
        .await?;
    counts.requests.fetch_add(1, Ordering::Relaxed);
    counts.bytes_up.fetch_add(length, Ordering::Relaxed);
    if status != 200 || answer != expected.as_bytes() {
        return Err(format!(
            "upload {length}/{seed}: status {status}, answer {:?}",
            String::from_utf8_lossy(&answer)
        ));
    }
    Ok(())
}

async fn one_round(addr: &str, rng: &mut Rng, counts: &Counts) -> Result<(), Failure> {
    let seed = rng.below(1000);
    match rng.below(10) {
        // Keep-alive: several small requests, a small upload among them.
        0..=2 => {
            let mut conn = Conn::open(addr, counts).await?;
            for _ in 0..(2 + rng.below(8)) {
                if rng.below(3) == 0 {
                    upload(&mut conn, 1 + rng.below(4096), seed, counts).await?;
                } else {
                    small_get(&mut conn, false, counts).await?;
                }
            }
        }
        // A new connection per small request.
        3..=4 => {
            let mut conn = Conn::open(addr, counts).await?;
            small_get(&mut conn, true, counts).await?;
        }
        // Large bodies down and up, then a small request on the same connection.
        5 => {
            let mut conn = Conn::open(addr, counts).await?;
            download(&mut conn, (1 << 20) + rng.below(4 << 20), seed, counts).await?;
            small_get(&mut conn, false, counts).await?;
        }
        6 => {
            let mut conn = Conn::open(addr, counts).await?;
            upload(&mut conn, (1 << 20) + rng.below(4 << 20), seed, counts).await?;
            small_get(&mut conn, false, counts).await?;
        }
        7 => {
            let mut conn = Conn::open(addr, counts).await?;
            download(&mut conn, rng.below(64 * 1024), seed, counts).await?;
        }
        // Vanishing mid-upload.
        8 => {
            let mut conn = Conn::open(addr, counts).await?;
            let length = 1 << 20;
            let head =
                format!("POST /upload HTTP/1.1\r\nHost: soak\r\nContent-Length: {length}\r\n\r\n");
            conn.send(head.as_bytes()).await?;
            let sent = rng.below(length);
            conn.send(&upload_bytes(sent, seed)).await?;
            counts.vanished_up.fetch_add(1, Ordering::Relaxed);
        }
        // Vanishing mid-download.
        _ => {
            let mut conn = Conn::open(addr, counts).await?;
            let request = format!(
                "GET /bytes/{}/{seed} HTTP/1.1\r\nHost: soak\r\n\r\n",
                8 << 20
            );
            conn.send(request.as_bytes()).await?;
            let mut received = 0;
            let want = rng.below(1 << 20);
            while received < want {
                conn.fill().await?;
                received = conn.buffer.len() as u64;
            }
            counts.vanished_down.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The summed VmRSS of `pid` and its children.
fn tree_rss_kib(pid: u32) -> u64 {
    let mut total = rss_kib(pid);
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let Some((_, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            if rest.split_whitespace().nth(1) == Some(&pid.to_string()) {
                total += rss_kib(child);
            }
        }
    }
    total
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let mut addr = "127.0.0.1:8000".to_owned();
    let mut pid = 0u32;
    let mut seconds = 60u64;
    let mut clients = 16u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().expect("every option takes a value");
        match arg.as_str() {
            "--addr" => addr = value,
            "--pid" => pid = value.parse().expect("a process id"),
            "--seconds" => seconds = value.parse().expect("seconds"),
            "--clients" => clients = value.parse().expect("a count"),
            other => panic!("unknown option {other}"),
        }
    }
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let end = started + Duration::from_secs(seconds);
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let (addr, counts, failures) = (addr.clone(), Arc::clone(&counts), Arc::clone(&failures));
        tasks.spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (client + 1).wrapping_mul(0x2545_F491));
            while Instant::now() < end {
                let round = tokio::time::timeout(STEP, one_round(&addr, &mut rng, &counts)).await;
                let failure = match round {
                    Ok(Ok(())) => continue,
                    Ok(Err(failure)) => failure,
                    Err(_) => "a round took over 30 s".to_owned(),
                };
                counts.unexpected.fetch_add(1, Ordering::Relaxed);
                failures.lock().unwrap().push(failure);
            }
        });
    }
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tick.tick() => samples.push((started.elapsed().as_secs(), tree_rss_kib(pid))),
            next = tasks.join_next() => if next.is_none() { break },
        }
    }
    samples.push((started.elapsed().as_secs(), tree_rss_kib(pid)));
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    println!("seconds {}", started.elapsed().as_secs());
    println!("requests {}", get(&counts.requests));
    println!("connections {}", get(&counts.connections));
    println!("mib_down {}", get(&counts.bytes_down) >> 20);
    println!("mib_up {}", get(&counts.bytes_up) >> 20);
    println!("vanished_mid_upload {}", get(&counts.vanished_up));
    println!("vanished_mid_download {}", get(&counts.vanished_down));
    println!("unexpected {}", get(&counts.unexpected));
    let rss: Vec<String> = samples
        .iter()
        .map(|(at, kib)| format!("{at}s:{}", kib / 1024))
        .collect();
    println!("rss_mib {}", rss.join(" "));
    for failure in failures.lock().unwrap().iter().take(10) {
        println!("failure {failure}");
    }
    if get(&counts.unexpected) == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
