//! The app's lifespan (spec §14.3) around the serve loop: startup before the first request,
//! shutdown after the last.

use std::any::Any;
use std::sync::Arc;

use rwgi::lifespan::{BoxLifespan, Running};

/// How every message about a failed startup begins.
pub(crate) const STARTUP_FAILED: &str = "the app's startup failed";

/// Runs the app's startup on the runtime; an error or a panic becomes the message the server
/// stops with (REQ-LIFE-3).
pub(crate) async fn startup(lifespan: &BoxLifespan) -> Result<Arc<Running>, String> {
    match tokio::spawn(lifespan.startup()).await {
        Ok(Ok(running)) => Ok(Arc::new(running)),
        Ok(Err(error)) => Err(format!("{STARTUP_FAILED}: {error}")),
        Err(error) => Err(format!(
            "{STARTUP_FAILED}: it panicked: {}",
            panic_message(error.try_into_panic().ok())
        )),
    }
}

/// Runs the app's shutdown (REQ-LIFE-4); `false` when it failed, which is logged.
pub(crate) async fn shutdown(running: &Running) -> bool {
    let error = match tokio::spawn(running.shutdown()).await {
        Ok(Ok(())) => return true,
        Ok(Err(error)) => error.to_string(),
        Err(error) => format!("panicked: {}", panic_message(error.try_into_panic().ok())),
    };
    tracing::error!("the app's shutdown failed: {error}");
    false
}

fn panic_message(payload: Option<Box<dyn Any + Send>>) -> String {
    match payload {
        Some(payload) => match payload.downcast::<String>() {
            Ok(message) => *message,
            Err(payload) => payload.downcast_ref::<&str>().map_or_else(
                || "(no message)".to_owned(),
                |message| (*message).to_owned(),
            ),
        },
        None => "(cancelled)".to_owned(),
    }
}
