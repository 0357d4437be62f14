//! Panics turned into text for the report: the main body and the hooks are isolated from
//! panics, and the report says what each one said.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Polls `future` once, catching a panic as its message; the future must not be polled again
/// after one.
pub(crate) fn poll_isolated<F: Future + ?Sized>(
    future: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> Result<Poll<F::Output>, String> {
    std::panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx)))
        .map_err(|payload| panic_message(payload.as_ref()))
}

/// The text of a panic payload: `&str` and `String` payloads, else a placeholder.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}
