//! A real HAProxy on loopback for the restart harnesses (processes, containers), and its own
//! view of its servers, read from its stats page: the harnesses wait on it before they stop the
//! next instance.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http::{get, Connection};
use crate::require::program_on_path;
use crate::{free_port, loopback, PATIENCE};

/// HAProxy checks every 100 ms and marks a server down after 3 failures: a readiness that
/// answers 503 is out of rotation within about 400 ms (3 × (inter + the answer's time)), well
/// inside a 1 s pre-stop. Not 2: an instance serving at a quarter-CPU quota failed two checks in
/// a row in 100 restarts while its peer restarted, and both were DOWN for a moment (8 HTTP/2
/// requests answered 503; scripts/adverse/starved-cpus, RELIABILITY.md).
pub const CHECK_INTERVAL_MS: u64 = 100;

/// Failed checks in a row that mark a server DOWN.
pub const CHECK_FALL: u32 = 3;

/// How long a check may wait for its answer. Without `timeout check` HAProxy waits `inter`
/// (100 ms), and an instance at a CPU quota (cgroup `cpu.cfs_quota_us`, a pod at its limit) is
/// throttled for most of each 100 ms period once it has spent its share: its checks time out
/// although it serves, both instances go DOWN, and the clients get 503s (benches/haproxy_checks.sh,
/// BENCHMARKS.md): failed checks at 100 ms, none from 250 ms up in the bench; 2 s for an instance
/// that also serves the whole load at its quota. A failing readiness still answers its 503 at
/// once, so detection stays `fall × inter`.
pub const CHECK_TIMEOUT_MS: u64 = 2000;

/// HAProxy: `$HAPROXY` when set, else `haproxy` on PATH.
pub fn program() -> Option<PathBuf> {
    match std::env::var_os("HAPROXY") {
        Some(path) => Some(PathBuf::from(path)).filter(|path| path.is_file()),
        None => program_on_path("haproxy"),
    }
}

/// One server behind the proxy, on loopback.
pub struct Server<'a> {
    /// Its name in HAProxy's configuration and stats.
    pub name: &'a str,
    /// Where it serves.
    pub port: u16,
    /// Where its `/readyz` answers, when not on `port`.
    pub health_port: Option<u16>,
}

/// A real HAProxy in front of the servers: active `/readyz` checks, and `retries 0`, so that no
/// failure is hidden from the clients. Killed when dropped.
pub struct Haproxy {
    child: Child,
    /// The HTTP/1.1 frontend (backend `services`).
    pub port: u16,
    /// With [`Haproxy::start`]'s `with_h2`: the HTTP/2 frontend (backend `services_h2`, the same
    /// servers reached over HTTP/2).
    pub h2_port: Option<u16>,
    stats_port: u16,
    /// Where the frontends and the servers listen.
    ip: IpAddr,
}

impl Haproxy {
    /// Writes a configuration for `servers` into `directory` and starts `program` on it, in the
    /// foreground (`-db`), on free loopback ports.
    pub fn start(program: &Path, directory: &Path, servers: &[Server], with_h2: bool) -> Haproxy {
        Haproxy::start_at(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            program,
            directory,
            servers,
            with_h2,
        )
    }

    /// [`Haproxy::start`] with the frontends on `ip`, and the servers looked for there: the
    /// near side of the slow link of scripts/adverse/slow-network (see [`crate::netns`]). The
    /// stats page stays on loopback.
    pub fn start_at(
        ip: IpAddr,
        program: &Path,
        directory: &Path,
        servers: &[Server],
        with_h2: bool,
    ) -> Haproxy {
        let port = free_port();
        let h2_port = with_h2.then(free_port);
        let stats_port = free_port();
        let server_lines = |proto: &str| -> String {
            servers
                .iter()
                .map(|server| {
                    let check_port = server
                        .health_port
                        .map(|port| format!(" port {port}"))
                        .unwrap_or_default();
                    format!(
                        "    server {} {}{proto} check{check_port} inter {CHECK_INTERVAL_MS}ms fall {CHECK_FALL} rise 1\n",
                        server.name,
                        SocketAddr::new(ip, server.port)
                    )
                })
                .collect()
        };
        let check = "    balance roundrobin\n    option httpchk GET /readyz\n    http-check expect status 200\n";
        let mut config = format!(
            "global\n    maxconn 1000\n\
             defaults\n    mode http\n    retries 0\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n    timeout tunnel 60s\n    timeout check {CHECK_TIMEOUT_MS}ms\n\
             frontend web\n    bind {}\n    default_backend services\n\
             backend services\n{check}{}\
             listen stats\n    bind 127.0.0.1:{stats_port}\n    stats enable\n    stats uri /stats\n",
            SocketAddr::new(ip, port),
            server_lines(""),
        );
        if let Some(h2_port) = h2_port {
            config.push_str(&format!(
                "frontend web_h2\n    bind {} proto h2\n    default_backend services_h2\n\
                 backend services_h2\n{check}{}",
                SocketAddr::new(ip, h2_port),
                server_lines(" proto h2"),
            ));
        }
        let path = directory.join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let child = Command::new(program)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy");
        Haproxy {
            child,
            port,
            h2_port,
            stats_port,
            ip,
        }
    }

    /// The HTTP/1.1 frontend's address.
    pub fn address(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }

    /// The HTTP/2 frontend's address; only with `with_h2`.
    pub fn h2_address(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.h2_port.expect("started with_h2"))
    }

    /// Waits until HAProxy's own health checks see `server` UP in every backend.
    pub async fn wait_until_up(&self, server: &str) {
        let backends: &[&str] = if self.h2_port.is_some() {
            &["services", "services_h2"]
        } else {
            &["services"]
        };
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Ok(csv) = stats_csv(self.stats_port).await {
                if backends
                    .iter()
                    .all(|backend| shows(&csv, backend, server, "UP"))
                {
                    return;
                }
            }
            // Polling HAProxy's view: it has no way to tell us when a check flips.
            tokio::time::sleep(Duration::from_millis(CHECK_INTERVAL_MS / 2)).await;
        }
        panic!(
            "HAProxy never saw {server} UP in {backends:?}:\n{}",
            self.servers().await
        );
    }

    /// What the stats page says about each server, one line each, for a failure message:
    /// its status, its last check, and how often checks failed and took it down.
    pub async fn servers(&self) -> String {
        match stats_csv(self.stats_port).await {
            Ok(csv) => describe_servers(&csv),
            Err(error) => format!("HAProxy's stats page did not answer: {error}"),
        }
    }
}

/// [`Haproxy::servers`] from the stats CSV, whose header line names the columns.
pub fn describe_servers(csv: &str) -> String {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let column = |fields: &[&str], name: &str| -> String {
        header
            .iter()
            .position(|column| *column == name)
            .and_then(|index| fields.get(index))
            .map(|value| value.to_string())
            .unwrap_or_default()
    };
    let described: Vec<String> = lines
        .map(|line| line.split(',').collect::<Vec<_>>())
        .filter(|fields| {
            let server = fields.get(1).copied().unwrap_or("FRONTEND");
            server != "FRONTEND" && server != "BACKEND"
        })
        .map(|fields| {
            // L7STS comes with the HTTP status; L4CON (refused) with none.
            let check = match column(&fields, "check_code") {
                code if code.is_empty() => column(&fields, "check_status"),
                code => format!("{} {code}", column(&fields, "check_status")),
            };
            // The check's own words (`Connection refused`), when it has any.
            let said = match column(&fields, "last_chk") {
                text if text.is_empty() => String::new(),
                text => format!(" ({text:?})"),
            };
            format!(
                "  {}/{}: {}, last check {check} in {} ms{said}; {} failed checks, down {} times for {} s in all",
                column(&fields, "pxname"),
                column(&fields, "svname"),
                column(&fields, "status"),
                column(&fields, "check_duration"),
                column(&fields, "chkfail"),
                column(&fields, "chkdown"),
                column(&fields, "downtime"),
            )
        })
        .collect();
    format!("HAProxy's stats page:\n{}", described.join("\n"))
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The stats page as CSV (`GET /stats;csv` on the stats port), over one HTTP/1.1 connection.
pub async fn stats_csv(
    stats_port: u16,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let mut connection = Connection::open(loopback(stats_port)).await?;
    Ok(connection.send(get("/stats;csv")).await?.body)
}

/// Whether the stats CSV shows `server` of `backend` with a status starting with `status`
/// (`UP`, `DOWN`): column 0 is the proxy, 1 the server, 17 the status.
pub fn shows(csv: &str, backend: &str, server: &str, status: &str) -> bool {
    csv.lines().any(|line| {
        let fields: Vec<&str> = line.split(',').collect();
        fields.len() > 17
            && fields[0] == backend
            && fields[1] == server
            && fields[17].starts_with(status)
    })
}

#[cfg(test)]
mod tests {
    /// The header and a server row of HAProxy 2.6's stats CSV, with the server down.
    const CSV: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,\n\
services,BACKEND,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,0,0,0,,1,0,0,,1,2,0,,0,,1,0,,0\n\
services,a,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1,1,0,1,1,0,0,,1,2,1,,0,,2,0,,0,L4CON,,0,0,0,0,0,0,0,,,,0,0,0,,,,,-1,Connection refused,,0,0,0,0,,,,Layer4 connection problem,,1,2,0,,,,,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n";

    #[test]
    fn describe_servers_names_status_last_check_and_counts_of_each_server() {
        let described = super::describe_servers(CSV);
        assert_eq!(
            described,
            "HAProxy's stats page:\n  services/a: DOWN, last check L4CON in 0 ms \
             (\"Connection refused\"); 1 failed checks, down 1 times for 0 s in all"
        );
    }
}
