//! The request framing tracker of `rwgi-server` on fuzzer-chosen bytes, read in fuzzer-chosen
//! pieces, then handed fuzzer-chosen requests as hyper would hand them to the service: it
//! never panics, answers the same whatever the reads, and refuses a request only when the
//! bytes hold both `Content-Length` and `Transfer-Encoding` and the length it reports.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The module is private to the server crate: it is compiled here from its source, as is.
#[allow(dead_code)]
#[path = "../../rwgi-server/src/framing.rs"]
mod framing;

use framing::{Declared, Tracker};

/// Pieces of HTTP/1 streams, right and wrong, for inputs that get deep into the framing.
const PIECES: [&[u8]; 16] = [
    b"GET / HTTP/1.1\r\n",
    b"POST /x HTTP/1.0\r\n",
    b"PUT /y HTTP/1.1\n",
    b"Host: h\r\n",
    b"Content-Length: 3\r\n",
    b"content-length: 0\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"transfer-encoding: gzip, chunked\r\n",
    b"Upgrade: websocket\r\n",
    b"\r\n",
    b"\n",
    b"0\r\n",
    b"3;ext=\"a;b\"\r\n",
    b"abc",
    b"T: v\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
];

fuzz_target!(|input: (Vec<(u8, Vec<u8>)>, Vec<u16>, Vec<(u8, u8)>)| {
    let (parts, cuts, requests) = input;
    // A part is one of the pieces, or raw bytes.
    let bytes: Vec<u8> = parts
        .into_iter()
        .flat_map(|(pick, raw)| match PIECES.get(usize::from(pick % 32)) {
            Some(piece) => piece.to_vec(),
            None => raw,
        })
        .collect();
    // What hyper read in each request: a body's length and the head's fields, or chunked, or
    // not HTTP/1.
    let requests: Vec<Declared> = requests
        .into_iter()
        .map(|(kind, n)| match kind % 4 {
            0 => Declared::Chunked,
            1 => Declared::Other,
            _ => Declared::Length(u64::from(n % 16), usize::from(kind / 4 % 8)),
        })
        .collect();
    let serve = |cuts: &[usize]| {
        let mut tracker = Tracker::new(20);
        let mut start = 0;
        for &cut in cuts {
            tracker.read(&bytes[start..cut]);
            start = cut;
        }
        let answers: Vec<_> = requests.iter().map(|r| tracker.request(*r)).collect();
        (answers, tracker.following())
    };
    let whole = serve(&[bytes.len()]);
    let mut cuts: Vec<usize> = cuts
        .into_iter()
        .map(|cut| usize::from(cut) % (bytes.len() + 1))
        .collect();
    cuts.push(bytes.len());
    cuts.sort_unstable();
    assert_eq!(serve(&cuts), whole, "the same answers whatever the reads");

    let refused: Vec<_> = whole.0.iter().flatten().collect();
    assert!(refused.len() <= 1, "the tracking stops at a refusal");
    if let Some(length) = refused.first() {
        let text = bytes.to_ascii_lowercase();
        let has = |needle: &[u8]| text.windows(needle.len()).any(|window| window == needle);
        assert!(has(b"content-length") && has(b"transfer-encoding"));
        assert!(length.is_empty() || has(&length.to_ascii_lowercase()));
        assert!(!whole.1, "the tracking stops at a refused head");
    }
});
