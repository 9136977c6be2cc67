//! The example apps, shared by the reference server and the tests.

pub mod echo;
pub mod framework;
pub mod hello;
