//! The health service as a client sees it, on a controller of each test's own.

use std::convert::Infallible;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Waker};
use std::time::Duration;

use futures_core::Stream;
use tonic::{Code, Request};
use tonic_health::pb::health_check_response::ServingStatus::{
    self, NotServing, ServiceUnknown, Serving,
};
use tonic_health::pb::health_server::Health as _;
use tonic_health::pb::HealthCheckRequest;

use super::feed::HealthFeed;
use super::watch::WatchStream;
use super::*;
use crate::inflight::InFlight;
use crate::sequence::Controller;

fn controller() -> &'static Controller {
    Box::leak(Box::new(Controller::new(InFlight::leak())))
}

fn health_of(controller: &'static Controller) -> GrpcHealth {
    GrpcHealth::following(HealthFeed::follow(controller))
}

fn request(service: &str) -> Request<HealthCheckRequest> {
    Request::new(HealthCheckRequest {
        service: service.to_owned(),
    })
}

/// Check's answer: the status, or the error's code.
async fn check(health: &GrpcHealth, service: &str) -> Result<ServingStatus, Code> {
    match health.responder.check(request(service)).await {
        Ok(response) => Ok(response.into_inner().status()),
        Err(status) => Err(status.code()),
    }
}

async fn watch(health: &GrpcHealth, service: &str) -> WatchStream {
    match health.responder.watch(request(service)).await {
        Ok(response) => response.into_inner(),
        Err(status) => panic!("Watch({service:?}) failed: {status}"),
    }
}

/// The stream's next status, or `None` at its end. The timeout only turns a hang into a failure.
async fn next(stream: &mut WatchStream) -> Option<ServingStatus> {
    let item = tokio::time::timeout(
        Duration::from_secs(10),
        poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)),
    )
    .await
    .expect("the Watch stream sent nothing within 10s");
    item.map(|result| result.expect("Watch sent an error").status())
}

/// Whether the stream has nothing to send now. One poll is enough: every change already made
/// is visible to it at once.
fn has_nothing_to_send(stream: &mut WatchStream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    Pin::new(stream).poll_next(&mut cx).is_pending()
}

#[tokio::test]
async fn server_serves_only_once_ready_and_not_after_unready() {
    let controller = controller();
    let health = health_of(controller);
    assert_eq!(check(&health, "").await, Ok(NotServing));
    controller.ready();
    assert_eq!(check(&health, "").await, Ok(Serving));
    controller.unready();
    assert_eq!(check(&health, "").await, Ok(NotServing));
}

#[tokio::test]
async fn every_service_stops_serving_when_shutdown_begins_and_ready_does_not_bring_it_back() {
    let controller = controller();
    let health = health_of(controller).serving_name("shop.Cart");
    controller.ready();
    assert_eq!(check(&health, "shop.Cart").await, Ok(Serving));
    controller.request_shutdown();
    assert_eq!(check(&health, "").await, Ok(NotServing));
    assert_eq!(check(&health, "shop.Cart").await, Ok(NotServing));
    controller.ready();
    assert_eq!(check(&health, "").await, Ok(NotServing));
    assert_eq!(check(&health, "shop.Cart").await, Ok(NotServing));
}

#[tokio::test]
async fn marking_one_service_not_serving_leaves_the_others_serving_until_lifted() {
    let controller = controller();
    let health = health_of(controller)
        .serving_name("shop.Cart")
        .serving_name("shop.Search");
    controller.ready();
    health.clone().set_not_serving("shop.Cart");
    assert_eq!(check(&health, "shop.Cart").await, Ok(NotServing));
    assert_eq!(check(&health, "shop.Search").await, Ok(Serving));
    assert_eq!(check(&health, "").await, Ok(Serving));
    health.set_serving("shop.Cart");
    assert_eq!(check(&health, "shop.Cart").await, Ok(Serving));
}

#[tokio::test]
async fn marks_have_no_effect_once_draining() {
    let controller = controller();
    let health = health_of(controller).serving_name("shop.Cart");
    controller.ready();
    controller.request_shutdown();
    health.set_serving("shop.Cart");
    health.set_serving("");
    assert_eq!(check(&health, "shop.Cart").await, Ok(NotServing));
    assert_eq!(check(&health, "").await, Ok(NotServing));
    health.set_not_serving("shop.Late");
    assert_eq!(check(&health, "shop.Late").await, Err(Code::NotFound));
}

#[tokio::test]
async fn marking_an_unknown_service_makes_it_known() {
    let controller = controller();
    let health = health_of(controller);
    controller.ready();
    health.set_not_serving("shop.Cart");
    health.set_serving("shop.Search");
    assert_eq!(check(&health, "shop.Cart").await, Ok(NotServing));
    assert_eq!(check(&health, "shop.Search").await, Ok(Serving));
}

#[tokio::test]
async fn check_for_an_unknown_service_is_not_found() {
    let controller = controller();
    let health = health_of(controller).serving_name("shop.Cart");
    controller.ready();
    assert_eq!(check(&health, "shop.Carts").await, Err(Code::NotFound));
}

#[tokio::test]
async fn serving_answers_for_a_tonic_service_under_its_grpc_name() {
    struct GreeterServer;
    impl NamedService for GreeterServer {
        const NAME: &'static str = "helloworld.Greeter";
    }
    let controller = controller();
    let health = health_of(controller).serving::<GreeterServer>();
    controller.ready();
    assert_eq!(check(&health, "helloworld.Greeter").await, Ok(Serving));
}

#[tokio::test]
async fn watch_sends_the_current_status_at_once_then_each_change() {
    let controller = controller();
    let health = health_of(controller).serving_name("shop.Cart");
    controller.ready();
    let mut stream = watch(&health, "shop.Cart").await;
    assert_eq!(next(&mut stream).await, Some(Serving));
    assert!(has_nothing_to_send(&mut stream));
    controller.unready();
    assert_eq!(next(&mut stream).await, Some(NotServing));
    controller.ready();
    assert_eq!(next(&mut stream).await, Some(Serving));
    health.set_not_serving("shop.Cart");
    assert_eq!(next(&mut stream).await, Some(NotServing));
    health.set_serving("shop.Cart");
    assert_eq!(next(&mut stream).await, Some(Serving));
}

#[tokio::test]
async fn watch_sends_nothing_for_a_change_that_leaves_its_status_alone() {
    let controller = controller();
    let health = health_of(controller).serving_name("shop.Cart");
    controller.ready();
    let mut stream = watch(&health, "").await;
    assert_eq!(next(&mut stream).await, Some(Serving));
    health.set_not_serving("shop.Cart");
    let health = health.serving_name("shop.Search");
    controller.ready();
    assert!(has_nothing_to_send(&mut stream));
    drop(health);
}

#[tokio::test]
async fn watch_for_an_unknown_service_says_service_unknown_until_it_is_added() {
    let controller = controller();
    let health = health_of(controller);
    controller.ready();
    let mut stream = watch(&health, "shop.Cart").await;
    assert_eq!(next(&mut stream).await, Some(ServiceUnknown));
    assert!(has_nothing_to_send(&mut stream));
    let _health = health.serving_name("shop.Cart");
    assert_eq!(next(&mut stream).await, Some(Serving));
}

#[tokio::test]
async fn watch_says_not_serving_when_shutdown_begins_and_ends_at_stop_accepting() {
    let controller = controller();
    let health = health_of(controller);
    controller.ready();
    let mut stream = watch(&health, "").await;
    assert_eq!(next(&mut stream).await, Some(Serving));
    controller.request_shutdown();
    assert_eq!(next(&mut stream).await, Some(NotServing));
    assert!(has_nothing_to_send(&mut stream));
    controller.stop_accepting().cancel();
    assert_eq!(next(&mut stream).await, None);
    assert_eq!(next(&mut stream).await, None);
}

#[tokio::test]
async fn watch_for_an_unknown_service_also_ends_at_stop_accepting() {
    let controller = controller();
    let health = health_of(controller);
    let mut stream = watch(&health, "shop.Cart").await;
    assert_eq!(next(&mut stream).await, Some(ServiceUnknown));
    controller.request_shutdown();
    assert!(has_nothing_to_send(&mut stream));
    controller.stop_accepting().cancel();
    assert_eq!(next(&mut stream).await, None);
}

#[tokio::test]
async fn watch_begun_after_stop_accepting_sends_the_status_then_ends() {
    let controller = controller();
    let health = health_of(controller);
    controller.ready();
    controller.request_shutdown();
    controller.stop_accepting().cancel();
    let mut stream = watch(&health, "").await;
    assert_eq!(next(&mut stream).await, Some(NotServing));
    assert_eq!(next(&mut stream).await, None);
}

#[test]
fn a_tonic_router_accepts_it_as_a_service() {
    // The bounds of tonic's `Router::add_service`, but for axum's `IntoResponse`, which
    // `http::Response<tonic::body::Body>` implements.
    fn accepted_by_add_service<S>()
    where
        S: tower_service::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
    }
    accepted_by_add_service::<GrpcHealth>();
    assert_eq!(GrpcHealth::NAME, "grpc.health.v1.Health");
}

#[tokio::test]
async fn it_answers_check_over_http() {
    use http_body::Body as _;
    use tower_service::Service as _;

    let controller = controller();
    let mut health = health_of(controller);
    controller.ready();
    // One gRPC message: not compressed, 0 bytes long (an empty `HealthCheckRequest`, for "").
    let body = tonic::body::Body::new(String::from("\0\0\0\0\0"));
    let request = http::Request::post("http://localhost/grpc.health.v1.Health/Check")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body)
        .expect("a valid request");
    poll_fn(|cx| {
        tower_service::Service::<http::Request<tonic::body::Body>>::poll_ready(&mut health, cx)
    })
    .await
    .expect("infallible");
    let response = health.call(request).await.expect("infallible");
    assert_eq!(response.status(), http::StatusCode::OK);
    let mut body = response.into_body();
    let mut data = Vec::new();
    let mut grpc_status = None;
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.expect("a body without errors");
        if let Some(trailers) = frame.trailers_ref() {
            grpc_status = trailers.get("grpc-status").cloned();
        } else if let Ok(chunk) = frame.into_data() {
            data.extend_from_slice(&chunk);
        }
    }
    // One message of 2 bytes: field 1 (`status`) = 1, SERVING.
    assert_eq!(data, [0, 0, 0, 0, 2, 0x08, 0x01]);
    assert_eq!(
        grpc_status.as_ref().map(|value| value.as_bytes()),
        Some(&b"0"[..])
    );
}
