//! The example framework (`examples/apps/framework.rs`) driven in-process: routing, path
//! parameters, errors, JSON bodies and mounting.

// The test uses only the framework; the other example apps are dead code here.
#[allow(dead_code)]
#[path = "../examples/apps/mod.rs"]
mod apps;

use std::collections::BTreeMap;

use apps::framework::{demo_app, Reply, Request, Router, ECHO_LIMIT};
use rwgi::http::{Method, StatusCode};
use rwgi::server::prepare;
use rwgi::Input;
use rwgi_conformance::test_client::{block_on, TestRequest, TestResponse};

fn send(request: TestRequest) -> TestResponse {
    block_on(request.send(&demo_app()))
}

/// Asserts the whole response: status, the headers (`content-type`, and the `content-length`
/// the server announces), and the body.
fn assert_json(response: &TestResponse, status: StatusCode, body: &str) {
    assert_eq!(response.status(), status, "body: {}", response.text());
    assert_eq!(response.headers().len(), 2, "{:?}", response.headers());
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(
        response.header("content-length"),
        Some(&*body.len().to_string())
    );
    assert_eq!(response.text(), body);
}

#[test]
fn index_links_to_every_route() {
    let response = send(TestRequest::get("/"));
    assert_json(
        &response,
        StatusCode::OK,
        r#"{"links":{"echo":"/echo","files":"/files/{name}","hello":"/hello/{name}","self":"/","user":"/users/{id}"}}"#,
    );
}

#[test]
fn parameters_are_decoded_per_segment() {
    let response = send(TestRequest::get("/hello/caf%C3%A9"));
    assert_json(&response, StatusCode::OK, r#"{"greeting":"Hello, café!"}"#);

    let response = send(TestRequest::get("/files/a%2Fb"));
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers().len(), 2);
    assert_eq!(response.header("content-length"), Some("15"));
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(response.text(), "file name: a/b\n");

    // An unencoded `/` separates segments, so the same name unencoded is another path.
    let response = send(TestRequest::get("/files/a/b"));
    assert_json(&response, StatusCode::NOT_FOUND, r#"{"error":"not found"}"#);
}

#[test]
fn literal_segments_match_decoded() {
    let response = send(TestRequest::get("/hell%6F/x"));
    assert_json(&response, StatusCode::OK, r#"{"greeting":"Hello, x!"}"#);
}

#[test]
fn a_parameter_that_is_not_utf8_is_a_400() {
    let response = send(TestRequest::get("/hello/%FF"));
    assert_json(
        &response,
        StatusCode::BAD_REQUEST,
        r#"{"error":"path parameter `name` is not valid UTF-8"}"#,
    );
}

#[test]
fn unknown_paths_are_404() {
    for target in ["/nope", "/hello", "/hello/x/", "/users/1/2", "//"] {
        let response = send(TestRequest::get(target));
        assert_json(&response, StatusCode::NOT_FOUND, r#"{"error":"not found"}"#);
    }
}

#[test]
fn a_known_path_with_another_method_is_405_with_allow() {
    let response = send(TestRequest::post("/hello/x"));
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers().len(), 3);
    assert_eq!(response.header("content-length"), Some("30"));
    assert_eq!(response.header("allow"), Some("GET, HEAD"));
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.text(), r#"{"error":"method not allowed"}"#);

    let response = send(TestRequest::new(Method::PUT, "/users/1"));
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.header("allow"), Some("GET, HEAD, DELETE"));

    let response = send(TestRequest::get("/echo"));
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.header("allow"), Some("POST"));
}

#[test]
fn head_runs_the_get_route_without_a_body() {
    let get = send(TestRequest::get("/hello/x"));
    let head = send(TestRequest::head("/hello/x"));
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers(), get.headers());
    assert_eq!(head.body().len(), 0);

    // The server advertises the length a GET would have had (REQ-SRV-6).
    let environ = TestRequest::head("/hello/x").into_environ();
    let prepared = block_on(prepare(&demo_app(), environ));
    assert_eq!(prepared.status(), StatusCode::OK);
    assert_eq!(prepared.content_length(), Some(get.body().len() as u64));
}

#[test]
fn a_head_route_comes_before_the_get_route() {
    let router = Router::new()
        .get("/", |_: Request| async {
            Reply::text(StatusCode::OK, "get")
        })
        .route(Method::HEAD, "/", |_: Request| async {
            StatusCode::ACCEPTED
        });
    let response = block_on(TestRequest::head("/").send(&router));
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers().len(), 1);
    assert_eq!(response.header("content-length"), Some("0"));
}

#[test]
fn echo_returns_the_json_body() {
    let body = r#"{"a":[1,2,{"b":null}],"c":"é"}"#;
    let response = send(
        TestRequest::post("/echo")
            .header("content-type", "application/json")
            .body(body),
    );
    assert_json(&response, StatusCode::OK, body);
}

#[test]
fn a_body_over_the_limit_is_413() {
    let expected = r#"{"error":"request body is larger than the limit of 65536 bytes"}"#;
    let response = send(TestRequest::post("/echo").body(vec![b' '; ECHO_LIMIT + 1]));
    assert_json(&response, StatusCode::PAYLOAD_TOO_LARGE, expected);

    // Without a declared length the limit holds while reading.
    let chunks = rwgi::body::StreamBody::new(Chunks(vec![vec![b' '; ECHO_LIMIT], b"1".to_vec()]));
    let response = send(TestRequest::post("/echo").body(Input::from_body(chunks)));
    assert_json(&response, StatusCode::PAYLOAD_TOO_LARGE, expected);

    // Exactly at the limit is fine.
    let mut body = vec![b' '; ECHO_LIMIT - 1];
    body.push(b'7');
    let response = send(TestRequest::post("/echo").body(body));
    assert_json(&response, StatusCode::OK, "7");
}

#[test]
fn a_body_that_is_not_json_is_400() {
    let response = send(TestRequest::post("/echo").body("{nope"));
    assert_json(
        &response,
        StatusCode::BAD_REQUEST,
        r#"{"error":"invalid JSON body: key must be a string at line 1 column 2"}"#,
    );
    let response = send(TestRequest::post("/echo"));
    assert_json(
        &response,
        StatusCode::BAD_REQUEST,
        r#"{"error":"invalid JSON body: EOF while parsing a value at line 1 column 0"}"#,
    );
}

#[test]
fn user_ids_must_be_numbers() {
    let response = send(TestRequest::get("/users/42"));
    assert_json(
        &response,
        StatusCode::OK,
        r#"{"id":42,"links":{"self":"/users/42"},"name":"user 42"}"#,
    );

    let response = send(TestRequest::get("/users/abc"));
    assert_json(
        &response,
        StatusCode::BAD_REQUEST,
        r#"{"error":"invalid path parameter `id`: invalid digit found in string"}"#,
    );

    let response = send(TestRequest::new(Method::DELETE, "/users/42"));
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.headers().is_empty());
    assert!(response.body().is_empty());
}

#[test]
fn mounted_under_a_prefix_routes_on_path_info_and_links_carry_the_prefix() {
    let response = send(TestRequest::get("/prefix/").mount("/prefix"));
    assert_json(
        &response,
        StatusCode::OK,
        r#"{"links":{"echo":"/prefix/echo","files":"/prefix/files/{name}","hello":"/prefix/hello/{name}","self":"/prefix/","user":"/prefix/users/{id}"}}"#,
    );

    // The prefix itself, with an empty path_info, routes as `/`.
    let bare = send(TestRequest::get("/prefix").mount("/prefix"));
    assert_eq!(bare.status(), StatusCode::OK);
    assert_eq!(bare.body(), response.body());

    let response = send(TestRequest::get("/prefix/users/7").mount("/prefix"));
    assert_json(
        &response,
        StatusCode::OK,
        r#"{"id":7,"links":{"self":"/prefix/users/7"},"name":"user 7"}"#,
    );
}

#[test]
fn handlers_can_capture_state_and_fail() {
    let greeting = String::from("hi");
    let router = Router::new()
        .get("/greet", move |_: Request| {
            let text = greeting.clone();
            async move { Reply::text(StatusCode::OK, text) }
        })
        .get("/broken", |_: Request| async {
            // JSON object keys must be strings: serializing this fails.
            let map = BTreeMap::from([((1, 2), 3)]);
            Reply::json(StatusCode::OK, &map)
        })
        .get("/missing", |request: Request| async move {
            request.parse_param::<u32>("id").map(|_| StatusCode::OK)
        });

    let response = block_on(TestRequest::get("/greet").send(&router));
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text(), "hi");

    // An app error reaches the server, which answers 500 and logs why (REQ-ERR-2).
    let response = block_on(TestRequest::get("/broken").send(&router));
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.failure(), Some("app error: key must be a string"));

    let response = block_on(TestRequest::get("/missing").send(&router));
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        response.failure(),
        Some("app error: the route has no path parameter `id`")
    );
}

/// A body that yields the given chunks and declares no length.
struct Chunks(Vec<Vec<u8>>);

impl futures_core::Stream for Chunks {
    type Item = Result<bytes::Bytes, rwgi::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let next = (!self.0.is_empty()).then(|| Ok(self.0.remove(0).into()));
        std::task::Poll::Ready(next)
    }
}
