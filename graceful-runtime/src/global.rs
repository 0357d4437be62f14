//! The process-wide controller behind the free functions and `#[graceful::main]`: a thin layer
//! that holds one `Controller` for the life of the process.

use std::sync::LazyLock;

use crate::controller::Controller;
use crate::inflight;

static CONTROLLER: LazyLock<Controller> = LazyLock::new(|| Controller::new(&inflight::GLOBAL));

pub(crate) fn controller() -> &'static Controller {
    &CONTROLLER
}
