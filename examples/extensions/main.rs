//! An app that uses the extensions of spec §14.2–14.5 on `rwgi-server`, and falls back when a
//! server does not offer them:
//!
//! - a [`Lifespan`] that opens a store at startup, hands it to every request, and writes its
//!   counts out at shutdown, after the last request;
//! - the response outcome, to count downloads the client cut short;
//! - the server's limits, to refuse an upload before reading it (with `Expect: 100-continue`,
//!   the client then never sends it).
//!
//! ```text
//! cargo run --example extensions
//! curl localhost:8000/visits
//! curl -H 'Expect: 100-continue' --data-binary @big.file localhost:8000/upload   # 413 at once
//! ```

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rwgi::body::Full;
use rwgi::http::{HeaderMap, StatusCode};
use rwgi::input::ReadError;
use rwgi::lifespan::Lifespan;
use rwgi::outcome::{Ending, ResponseFinished};
use rwgi::{App, Environ, Error, Response, StartResponse};

/// What every request shares: visits by path, and downloads cut short.
#[derive(Clone, Debug, Default)]
struct Store {
    visits: Arc<Mutex<BTreeMap<String, u64>>>,
    cut_short: Arc<AtomicU64>,
}

/// Opens the store; writes it out at shutdown.
#[derive(Debug)]
struct OpenStore;

impl Lifespan for OpenStore {
    type State = Store;

    async fn startup(&self) -> Result<Store, Error> {
        // A real app connects to its database here; an error stops the server (REQ-LIFE-3).
        Ok(Store::default())
    }

    async fn shutdown(&self, store: Store) -> Result<(), Error> {
        let visits = store
            .visits
            .lock()
            .map_err(|_| Error::msg("a poisoned store"))?;
        eprintln!(
            "extensions example: {} paths visited, {} downloads cut short",
            visits.len(),
            store.cut_short.load(Ordering::Relaxed)
        );
        Ok(())
    }
}

/// The largest upload this app takes, whatever the server would.
const QUOTA: u64 = 1 << 20;

#[derive(Debug)]
struct Example;

impl App for Example {
    type Body = Full;

    async fn call(
        &self,
        mut environ: Environ,
        start: StartResponse,
    ) -> Result<Response<Full>, Error> {
        // Without the state, the server runs no lifespan: this app then keeps no counts.
        let store = environ.extensions().get::<Store>().cloned();
        if let Some(store) = &store {
            let mut visits = store
                .visits
                .lock()
                .map_err(|_| Error::msg("a poisoned store"))?;
            *visits.entry(environ.path_info().to_owned()).or_default() += 1;
        }
        if let (Some(finished), Some(store)) =
            (environ.extensions().get::<ResponseFinished>(), &store)
        {
            let cut_short = Arc::clone(&store.cut_short);
            finished.on_finish(move |outcome| {
                if outcome.ending() == Ending::ClientGone {
                    cut_short.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let (status, text) = match environ.path_info() {
            "/visits" => match &store {
                Some(store) => {
                    let visits = store
                        .visits
                        .lock()
                        .map_err(|_| Error::msg("a poisoned store"))?;
                    (StatusCode::OK, format!("{visits:?}\n"))
                }
                None => (StatusCode::OK, "no store on this server\n".to_owned()),
            },
            "/upload" => {
                // The smaller of the app's quota and the server's stated limit, when it states
                // one; refused before a byte of the body is read.
                let limit = environ
                    .server()
                    .limits()
                    .and_then(|limits| limits.body())
                    .map_or(QUOTA, |server| server.min(QUOTA));
                match environ.input().content_length() {
                    Some(declared) if declared > limit => (
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("at most {limit} bytes\n"),
                    ),
                    _ => {
                        let body = environ
                            .input_mut()
                            .read_to_end(usize::try_from(limit).unwrap_or(usize::MAX))
                            .await;
                        match body {
                            Ok(body) => (StatusCode::OK, format!("{} bytes\n", body.len())),
                            Err(error @ ReadError::TooLarge { .. }) => {
                                (StatusCode::PAYLOAD_TOO_LARGE, format!("{error}\n"))
                            }
                            Err(error) => (StatusCode::BAD_REQUEST, format!("{error}\n")),
                        }
                    }
                }
            }
            _ => (StatusCode::NOT_FOUND, "not found\n".to_owned()),
        };
        Ok(start.start(status, HeaderMap::new()).body(Full::new(text)))
    }
}

fn main() -> ExitCode {
    rwgi_server::Program::new(Example)
        .lifespan(OpenStore)
        .response_outcome()
        .run()
}
