//! Server-sent events: a clock that sends a `tick` event to each client every period, until the
//! client goes away.
//!
//! Each request starts a producer task that sends the events into a channel the response body
//! reads from. Two extensions of the server make the stream behave:
//!
//! - **Flushing the head** ([`FlushHead`]): the client sees the stream open at once, not a
//!   period later with the first event. A server that does not offer it gets a comment line
//!   (`:`) as the first chunk instead, which pushes the head out just as well.
//! - **Disconnect notification** ([`Disconnect`]): the producer stops as soon as the client is
//!   gone, even between two events. Without it, the producer notices only when its next send
//!   finds the channel closed (the server dropped the body).
//!
//! [`Events::departures`] counts the producers that learned of a departure through the
//! notification, so tests can see the app learn of it.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use rwgi::body::Body;
use rwgi::disconnect::Disconnect;
use rwgi::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use rwgi::http::{HeaderMap, HeaderValue, StatusCode};
use rwgi::interim::FlushHead;
use rwgi::{App, Environ, Error, Response, StartResponse};
use tokio::sync::mpsc;

/// The events app: one `tick` event per `period` to every client.
#[derive(Clone, Debug)]
pub struct Events {
    period: Duration,
    departures: Arc<AtomicUsize>,
}

impl Events {
    /// Ticks every `period`.
    pub fn new(period: Duration) -> Self {
        Events {
            period,
            departures: Arc::default(),
        }
    }

    /// How many producers stopped because the server said their client went away.
    pub fn departures(&self) -> usize {
        self.departures.load(Ordering::SeqCst)
    }
}

impl Default for Events {
    fn default() -> Self {
        Events::new(Duration::from_secs(1))
    }
}

impl App for Events {
    type Body = EventStream;

    async fn call(
        &self,
        environ: Environ,
        start: StartResponse,
    ) -> Result<Response<EventStream>, Error> {
        let (sender, events) = mpsc::channel(4);
        let disconnect = environ.extension::<Disconnect>().cloned();
        tokio::spawn(produce(
            sender,
            disconnect,
            self.period,
            Arc::clone(&self.departures),
        ));
        let flush = environ.extension::<FlushHead>().is_some();
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        let body = EventStream {
            // Without the flush, a comment line is the first chunk, which sends the head.
            opening: (!flush).then(|| Bytes::from_static(b":\n\n")),
            events,
        };
        let mut response = start.start(StatusCode::OK, headers).body(body);
        if flush {
            response.extensions_mut().insert(FlushHead::new());
        }
        Ok(response)
    }
}

/// Sends a `tick` event every `period` until the client goes away.
async fn produce(
    sender: mpsc::Sender<Bytes>,
    disconnect: Option<Disconnect>,
    period: Duration,
    departures: Arc<AtomicUsize>,
) {
    let gone = async {
        match &disconnect {
            Some(disconnect) => disconnect.gone().await,
            // No notification: only a failed send below ends the loop.
            None => std::future::pending().await,
        }
    };
    tokio::pin!(gone);
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    for n in 1u64.. {
        tokio::select! {
            () = &mut gone => {
                departures.fetch_add(1, Ordering::SeqCst);
                return;
            }
            _ = tick.tick() => {
                let event = Bytes::from(format!("event: tick\ndata: {n}\n\n"));
                if sender.send(event).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The response body: the opening comment, if any, then the events as they come.
#[derive(Debug)]
pub struct EventStream {
    opening: Option<Bytes>,
    events: mpsc::Receiver<Bytes>,
}

impl futures_core::Stream for EventStream {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(opening) = self.opening.take() {
            return Poll::Ready(Some(Ok(opening)));
        }
        self.events.poll_recv(cx).map(|event| event.map(Ok))
    }
}

impl Body for EventStream {}
