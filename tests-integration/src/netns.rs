//! Clients on the far side of a network link: `scripts/adverse/slow-network` makes a network
//! namespace joined to this one by a veth pair shaped by `tbf`, and names it and this side's
//! address in the environment. The restart harnesses then bind their servers and HAProxy to
//! that address and run their clients in the namespace; unset, everything stays on loopback.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::process::Process;

/// The namespace the clients run in (made by scripts/adverse/slow-network), if any.
pub const CLIENT_NETNS: &str = "GRACEFUL_TESTS_CLIENT_NETNS";

/// The address of this side of the link, where servers and HAProxy listen for those clients.
pub const SERVER_IP: &str = "GRACEFUL_TESTS_SERVER_IP";

/// The clients' namespace, when the harness runs behind a link of its own.
pub fn client_netns() -> Option<String> {
    std::env::var(CLIENT_NETNS)
        .ok()
        .filter(|name| !name.is_empty())
}

/// Where servers listen: this side of the link ([`SERVER_IP`]), else 127.0.0.1. The address is
/// local to this namespace too, so HAProxy reaches the servers on it without the link.
pub fn server_ip() -> IpAddr {
    std::env::var(SERVER_IP)
        .ok()
        .map(|ip| {
            ip.parse()
                .unwrap_or_else(|error| panic!("{SERVER_IP}={ip:?}: {error}"))
        })
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// `port` at [`server_ip`].
pub fn server_address(port: u16) -> SocketAddr {
    SocketAddr::new(server_ip(), port)
}

/// What a harness says about where its clients are, for its summary line.
pub fn describe() -> String {
    match client_netns() {
        Some(netns) => format!("clients in netns {netns}, servers at {}", server_ip()),
        None => "clients and servers on loopback".to_owned(),
    }
}

/// Moves the calling thread into the network namespace `name` (`/run/netns/NAME`, as
/// `ip netns add` makes it): every socket the thread creates from now on is there. Needs
/// CAP_SYS_ADMIN; used on a thread of the test's own, never the test's main thread.
pub fn enter(name: &str) {
    let path = format!("/run/netns/{name}");
    let namespace = std::fs::File::open(&path)
        .unwrap_or_else(|error| panic!("cannot open the namespace {path}: {error}"));
    nix::sched::setns(namespace, nix::sched::CloneFlags::CLONE_NEWNET)
        .unwrap_or_else(|error| panic!("cannot enter the namespace {path}: {error}"));
}

/// Enters `netns` when there is one (see [`enter`]).
pub fn enter_if(netns: Option<&str>) {
    if let Some(name) = netns {
        enter(name);
    }
}

/// [`Process::python_with`] in the clients' namespace (`ip netns exec`), or here when there is
/// none.
pub fn client_python(python: &str, name: &str, script: &str, args: &[&str]) -> Process {
    match client_netns() {
        None => Process::python_with(python, name, script, args),
        Some(netns) => {
            let mut all = vec!["netns", "exec", &netns, python, "-u", "-c", script];
            all.extend_from_slice(args);
            Process::start(name, "ip", &all, &[])
        }
    }
}

/// A command for `program` with `args` in the clients' namespace, or here when there is none:
/// for a client that runs longer than a [`Process`] waits.
pub fn client_command(program: &str, args: &[&str]) -> std::process::Command {
    match client_netns() {
        None => {
            let mut command = std::process::Command::new(program);
            command.args(args);
            command
        }
        Some(netns) => {
            let mut command = std::process::Command::new("ip");
            command.args(["netns", "exec", &netns, program]).args(args);
            command
        }
    }
}

/// A client program with `args` in the clients' namespace, or here when there is none.
pub fn client_program(name: &str, program: &str, args: &[&str]) -> Process {
    match client_netns() {
        None => Process::start(name, program, args, &[]),
        Some(netns) => {
            let mut all = vec!["netns", "exec", &netns, program];
            all.extend_from_slice(args);
            Process::start(name, "ip", &all, &[])
        }
    }
}
