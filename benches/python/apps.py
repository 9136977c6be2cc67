"""The WSGI twins of the example apps that benches/compare.sh measures on gunicorn and granian.

`hello` is `examples/apps/hello.rs`: 200, `content-type: text/plain`, "Hello, World!\\n", no
look at the request. `echo` is `examples/apps/echo.rs`: 200, `application/json`, an object of
the request's CGI variables (PEP 3333's string-valued keys, as rwgi's `cgi_variables` gives
them) plus `body_length` and `body_sha256` of the body, read and hashed chunk by chunk.
"""

import hashlib
import json

GREETING = b"Hello, World!\n"
HELLO_HEADERS = [("content-type", "text/plain"), ("content-length", str(len(GREETING)))]


def hello(environ, start_response):
    start_response("200 OK", HELLO_HEADERS)
    return [GREETING]


CHUNK = 64 * 1024


def echo(environ, start_response):
    digest = hashlib.sha256()
    length = 0
    body = environ["wsgi.input"]
    while True:
        chunk = body.read(CHUNK)
        if not chunk:
            break
        length += len(chunk)
        digest.update(chunk)
    answer = {
        name: value
        for name, value in environ.items()
        if isinstance(value, str) and not name.startswith(("wsgi.", "gunicorn.", "granian."))
        and name.upper() == name
    }
    answer["body_length"] = length
    answer["body_sha256"] = digest.hexdigest()
    data = json.dumps(answer, separators=(",", ":")).encode()
    start_response(
        "200 OK", [("content-type", "application/json"), ("content-length", str(len(data)))]
    )
    return [data]
