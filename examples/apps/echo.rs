//! An app that describes the request it got: for testing servers and proxies.
//!
//! [`Echo`] answers `200 OK` with a JSON object of the request's CGI variables, exactly as a
//! PEP 3333 server would set them ([`Environ::cgi_variables`]), plus `body_length` and
//! `body_sha256` of the request body. The body is hashed chunk by chunk as it arrives, so an
//! upload of any size takes constant memory.

use rwgi::body::Full;
use rwgi::http::header::CONTENT_TYPE;
use rwgi::http::{HeaderMap, HeaderValue, StatusCode};
use rwgi::{App, Environ, Error, Response, StartResponse};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Answers with the request's CGI variables and the length and SHA-256 of its body, as JSON.
///
/// A request body that fails while being read (the client went away) makes the app fail, so
/// the server answers `500` if it still can.
#[derive(Clone, Copy, Debug, Default)]
pub struct Echo;

impl App for Echo {
    type Body = Full;

    async fn call(
        &self,
        mut environ: Environ,
        start: StartResponse,
    ) -> Result<Response<Full>, Error> {
        let mut hasher = Sha256::new();
        let mut length: u64 = 0;
        while let Some(chunk) = environ.input_mut().chunk().await {
            let chunk = chunk?;
            length += chunk.len() as u64;
            hasher.update(&chunk);
        }
        let mut object: Map<String, Value> = environ
            .cgi_variables()
            .into_map()
            .into_iter()
            .map(|(name, value)| (name, Value::String(value)))
            .collect();
        object.insert("body_length".to_owned(), Value::from(length));
        object.insert(
            "body_sha256".to_owned(),
            Value::String(format!("{:x}", hasher.finalize())),
        );
        let json = serde_json::to_vec(&object).map_err(Error::new)?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(start.start(StatusCode::OK, headers).body(Full::new(json)))
    }
}
