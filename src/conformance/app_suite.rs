//! The app suite: drives an app with a battery of requests and checks what it does.
