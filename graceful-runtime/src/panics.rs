//! Panics turned into text for the report: the main body and the hooks are isolated from
//! panics, and the report says what each one said.

use std::any::Any;

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
