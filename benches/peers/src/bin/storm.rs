//! The connection-storm client (`benches/storm.sh` runs it against each server).
//!
//! `storm --addr 127.0.0.1:PORT --pid PID [--connections 2000] [--probes 50]`:
//! 1. opens `--connections` connections at once and times the kernel's handshakes;
//! 2. while none of them has been served, sends one request on a new connection (the probe)
//!    and times its answer;
//! 3. sends a `GET /` on every storm connection and times until all are answered (an upper
//!    bound on the time the server took to accept them all);
//! 4. with the storm connections open and idle, times `--probes` requests, each on a new
//!    connection;
//! 5. reads the server's VmRSS from `/proc/PID/status` before the storm, with the connections
//!    open but unserved, and with them open and idle after one request each.
//!
//! Prints one `key value` line per figure. Every step is bounded by a timeout.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const STEP: Duration = Duration::from_secs(60);
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: storm\r\n\r\n";
const PROBE: &[u8] = b"GET / HTTP/1.1\r\nHost: storm\r\nConnection: close\r\n\r\n";

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server runs");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

/// Reads one response whose body is `Content-Length` long.
async fn read_response(stream: &mut TcpStream) -> std::io::Result<()> {
    let mut buffer = Vec::with_capacity(512);
    let mut chunk = [0; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or(0);
            if !head.starts_with("http/1.1 200") {
                return Err(std::io::Error::other(format!("unexpected answer: {head}")));
            }
            if buffer.len() >= end + 4 + length {
                return Ok(());
            }
        }
    }
}

async fn probe(addr: &str) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.expect("probe connects");
    stream.write_all(PROBE).await.expect("probe sends");
    read_response(&mut stream).await.expect("probe is answered");
    started.elapsed()
}

fn ms(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut addr = "127.0.0.1:8000".to_owned();
    let mut pid = 0u32;
    let mut connections = 2000usize;
    let mut probes = 50usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().expect("every option takes a value");
        match arg.as_str() {
            "--addr" => addr = value,
            "--pid" => pid = value.parse().expect("a process id"),
            "--connections" => connections = value.parse().expect("a count"),
            "--probes" => probes = value.parse().expect("a count"),
            other => panic!("unknown option {other}"),
        }
    }
    let rss_before = rss_kib(pid);

    // 1. The storm: every connection at once.
    let started = Instant::now();
    let mut connecting = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let addr = addr.clone();
        connecting.spawn(async move { TcpStream::connect(addr).await });
    }
    let mut storm = Vec::with_capacity(connections);
    let collect = async {
        while let Some(result) = connecting.join_next().await {
            storm.push(result.expect("connect task").expect("storm connection"));
        }
    };
    tokio::time::timeout(STEP, collect)
        .await
        .expect("the storm connects");
    let connected = started.elapsed();

    // 2. A request on a new connection while the server accepts the storm.
    let during = tokio::time::timeout(STEP, probe(&addr))
        .await
        .expect("the probe during the storm is answered");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_open = rss_kib(pid);

    // 3. One request on every storm connection.
    let mut serving = tokio::task::JoinSet::new();
    for mut stream in storm.drain(..) {
        serving.spawn(async move {
            stream.write_all(REQUEST).await?;
            read_response(&mut stream).await?;
            Ok::<_, std::io::Error>(stream)
        });
    }
    let mut failed = 0;
    let gather = async {
        while let Some(result) = serving.join_next().await {
            match result.expect("request task") {
                Ok(stream) => storm.push(stream),
                Err(_) => failed += 1,
            }
        }
    };
    tokio::time::timeout(STEP, gather)
        .await
        .expect("the storm is answered");
    let answered = started.elapsed();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_idle = rss_kib(pid);

    // 4. New connections while the storm stays open and idle.
    let mut latencies = Vec::with_capacity(probes);
    for _ in 0..probes {
        let latency = tokio::time::timeout(STEP, probe(&addr))
            .await
            .expect("a probe is answered");
        latencies.push(latency);
    }
    latencies.sort();
    let open_at_end = storm.len();
    drop(storm);

    println!("connections {connections}");
    println!("failed {failed}");
    println!("connect_all_ms {}", ms(connected));
    println!("answer_all_ms {}", ms(answered));
    println!("probe_during_storm_ms {}", ms(during));
    if !latencies.is_empty() {
        println!(
            "probe_idle_median_ms {}",
            ms(latencies[latencies.len() / 2])
        );
        println!(
            "probe_idle_p90_ms {}",
            ms(latencies[latencies.len() * 9 / 10])
        );
        println!("probe_idle_max_ms {}", ms(latencies[latencies.len() - 1]));
    }
    println!("rss_before_kib {rss_before}");
    println!("rss_open_kib {rss_open}");
    println!("rss_idle_kib {rss_idle}");
    let per = |rss: u64| rss.saturating_sub(rss_before) as f64 / connections as f64;
    println!("kib_per_open_connection {:.1}", per(rss_open));
    println!("kib_per_idle_connection {:.1}", per(rss_idle));
    println!("open_at_end {open_at_end}");
}
