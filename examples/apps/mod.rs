//! The example apps and middleware, shared by the reference server and the tests.

pub mod access_log;
pub mod echo;
pub mod framework;
pub mod hello;
pub mod url_map;
