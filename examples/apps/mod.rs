//! The example apps, shared by the reference server and the tests.

pub mod checksum;
pub mod echo;
pub mod events;
pub mod framework;
pub mod hello;
