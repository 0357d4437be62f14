//! The facade exposes every item the README names: each is imported from `graceful` here, and
//! the README is scanned for `graceful::NAME`, so that a name it uses without an export fails.
#![cfg(all(
    feature = "serve",
    feature = "health",
    feature = "grpc",
    feature = "tower",
    feature = "tls"
))]

/// Imports each name from the facade (a missing one does not compile) and lists it.
macro_rules! exported {
    ($($name:ident),* $(,)?) => {
        #[allow(unused_imports)]
        use graceful::{$($name),*};
        const EXPORTED: &[&str] = &[$(stringify!($name)),*];
    };
}

exported!(
    main,
    on_reload,
    on_shutdown,
    tracked,
    bind,
    bind_named,
    in_flight,
    is_shutting_down,
    keep_until_exit,
    on_report,
    ready,
    unready,
    health,
    register_hook,
    report,
    shutdown,
    shutdown_signal,
    shutdown_started,
    shutdown_with,
    spawn,
    spawn_essential,
    deadline_token,
    token,
    track,
    Builder,
    CancellationToken,
    ConfigError,
    Flavor,
    Health,
    InFlightGuard,
    IntoHookResult,
    MainOutput,
    Phase,
    ReloadError,
    ReloadReport,
    ReportFormat,
    ShutdownReport,
    Signal,
    EXIT_CONFIG,
    grpc_health,
    GrpcHealth,
    livez,
    readyz,
    serve,
    Serve,
    Listener,
    IntoHttpService,
    HyperService,
    TowerService,
    TrackLayer,
    TrackService,
    TrackedFuture,
    TlsConfig,
    reload,
);

#[test]
fn every_name_the_readme_uses_is_exported() {
    let readme = include_str!("../README.md");
    let mut missing: Vec<&str> = readme
        .match_indices("graceful::")
        .map(|(at, prefix)| {
            let rest = &readme[at + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|name| !name.is_empty() && !EXPORTED.contains(name))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "the README names graceful::{missing:?}, which the facade does not export"
    );
}
