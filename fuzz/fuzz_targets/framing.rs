//! The request framing tracker of `rwgi-server` on fuzzer-chosen bytes, read in fuzzer-chosen
//! pieces: it never panics, reads the bytes in pieces as in one, and flags a head only when
//! the bytes hold both `Content-Length` and `Transfer-Encoding` and the length it reports.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The module is private to the server crate: it is compiled here from its source, as is.
#[allow(dead_code)]
#[path = "../../rwgi-server/src/framing.rs"]
mod framing;

use framing::{HeadLimits, Tracker};

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

fuzz_target!(|input: (Vec<(u8, Vec<u8>)>, Vec<u16>)| {
    let (parts, cuts) = input;
    // A part is one of the pieces, or raw bytes.
    let bytes: Vec<u8> = parts
        .into_iter()
        .flat_map(|(pick, raw)| match PIECES.get(usize::from(pick % 32)) {
            Some(piece) => piece.to_vec(),
            None => raw,
        })
        .collect();
    let limits = HeadLimits::new(1024, 20, 256);
    let mut whole = Tracker::new(limits);
    let flagged: Vec<_> = whole.feed(&bytes).into_iter().collect();

    let mut cuts: Vec<usize> = cuts
        .into_iter()
        .map(|cut| usize::from(cut) % (bytes.len() + 1))
        .collect();
    cuts.push(bytes.len());
    cuts.sort_unstable();
    let mut split = Tracker::new(limits);
    let mut start = 0;
    let mut in_pieces = Vec::new();
    for cut in cuts {
        in_pieces.extend(split.feed(&bytes[start..cut]));
        start = cut;
    }
    assert_eq!(in_pieces, flagged, "the same flags whatever the reads");
    assert_eq!(split.following(), whole.following());

    if let Some(flag) = flagged.first() {
        assert!(flag.head >= 1);
        let text = bytes.to_ascii_lowercase();
        let has = |needle: &[u8]| text.windows(needle.len()).any(|window| window == needle);
        assert!(has(b"content-length") && has(b"transfer-encoding"));
        assert!(flag.length.is_empty() || has(&flag.length.to_ascii_lowercase()));
        assert!(!whole.following(), "the tracking stops at a flagged head");
    }
});
