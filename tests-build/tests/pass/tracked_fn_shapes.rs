//! Every fn shape #[graceful::tracked] supports compiles, keeps its signature, and counts.

use std::fmt::Display;
use std::future::Future;

#[graceful::tracked]
fn sync_free(value: u32) -> u32 {
    assert_eq!(graceful::in_flight(), 1);
    value + 1
}

#[graceful::tracked(name = "upload")]
async fn async_free(bytes: Vec<u8>) -> usize {
    assert_eq!(graceful::in_flight(), 1);
    bytes.len()
}

#[graceful::tracked]
fn generic<T: Clone + Display>(value: &T) -> String
where
    T: Send,
{
    value.to_string()
}

#[graceful::tracked]
fn impl_trait_argument_and_return(
    items: impl IntoIterator<Item = u32>,
) -> impl Iterator<Item = u32> {
    items.into_iter().map(|item| item * 2)
}

#[graceful::tracked]
async fn async_generic<T: Send + 'static>(value: T) -> T {
    tokio::task::yield_now().await;
    value
}

/// Hand-written: only the synchronous part is counted.
#[graceful::tracked]
fn returns_future() -> impl Future<Output = u32> + Send {
    async { 7 }
}

#[graceful::tracked]
unsafe fn unsafe_fn() -> u8 {
    1
}

struct Service {
    hits: u32,
}

impl Service {
    #[graceful::tracked]
    fn by_ref(&self) -> u32 {
        self.hits
    }

    #[graceful::tracked]
    fn by_mut(&mut self) {
        self.hits += 1;
    }

    #[graceful::tracked]
    fn by_value(self) -> u32 {
        self.hits
    }

    #[graceful::tracked]
    async fn async_by_ref(&self) -> u32 {
        tokio::task::yield_now().await;
        self.hits
    }

    #[graceful::tracked]
    pub(crate) async fn async_by_mut(&mut self) -> u32 {
        self.hits += 1;
        self.hits
    }
}

trait Handler {
    fn handle(&self, request: &str) -> usize;

    #[graceful::tracked]
    fn default_method(&self) -> usize {
        1
    }
}

impl Handler for Service {
    #[graceful::tracked]
    fn handle(&self, request: &str) -> usize {
        request.len()
    }
}

#[async_trait::async_trait]
trait AsyncHandler {
    async fn handle_async(&self, request: String) -> usize;

    #[graceful::tracked]
    async fn default_async(&mut self) -> usize {
        tokio::task::yield_now().await;
        assert_eq!(graceful::in_flight(), 1);
        2
    }
}

#[async_trait::async_trait(?Send)]
trait LocalHandler {
    async fn handle_local(self) -> u32;
}

#[async_trait::async_trait(?Send)]
impl LocalHandler for Service {
    #[graceful::tracked(name = "local")]
    async fn handle_local(self) -> u32 {
        tokio::task::yield_now().await;
        assert_eq!(graceful::in_flight(), 1);
        self.hits
    }
}

#[async_trait::async_trait]
impl AsyncHandler for Service {
    #[graceful::tracked]
    async fn handle_async(&self, request: String) -> usize {
        // The guard sits inside async_trait's boxed future: the whole call is counted.
        tokio::task::yield_now().await;
        assert_eq!(graceful::in_flight(), 1);
        request.len()
    }
}

#[graceful::tracked]
extern "C" fn extern_c() -> i32 {
    3
}

/// A tracked handler stays usable where a `Send` future is required (as axum needs).
fn requires_send_handler<F, Fut>(handler: F) -> F
where
    F: Fn(Vec<u8>) -> Fut,
    Fut: Future<Output = usize> + Send + 'static,
{
    handler
}

/// The future of a tracked `async_trait` method is still `Send`.
fn requires_send<T: Send>(value: T) -> T {
    value
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(sync_free(1), 2);
    assert_eq!(async_free(vec![1, 2, 3]).await, 3);
    assert_eq!(generic(&5), "5");
    assert_eq!(
        impl_trait_argument_and_return([1, 2]).collect::<Vec<_>>(),
        [2, 4]
    );
    assert_eq!(async_generic("x").await, "x");
    assert_eq!(returns_future().await, 7);
    assert_eq!(unsafe { unsafe_fn() }, 1);
    let mut service = Service { hits: 0 };
    service.by_mut();
    assert_eq!(service.by_ref(), 1);
    assert_eq!(service.async_by_ref().await, 1);
    assert_eq!(service.async_by_mut().await, 2);
    assert_eq!(service.handle("abc"), 3);
    assert_eq!(service.default_method(), 1);
    assert_eq!(requires_send(service.handle_async("abcd".into())).await, 4);
    assert_eq!(service.default_async().await, 2);
    assert_eq!(extern_c(), 3);
    assert_eq!(service.by_value(), 2);
    assert_eq!(Service { hits: 9 }.handle_local().await, 9);
    let handler = requires_send_handler(async_free);
    assert_eq!(handler(vec![0]).await, 1);
    assert_eq!(graceful::in_flight(), 0);
}
