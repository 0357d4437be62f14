//! The `LISTEN_*` variables of systemd's socket activation (sd_listen_fds(3)), read strictly,
//! which listenfd does not: whether sockets were passed, whether they are ours, and their names.

use std::env::{self, VarError};
use std::fmt;

/// The raw values of the variables, `None` where unset.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Variables<'a> {
    pub(crate) listen_fds: Option<&'a str>,
    pub(crate) listen_pid: Option<&'a str>,
    pub(crate) listen_fdnames: Option<&'a str>,
    /// Not systemd's: listenfd honours it (for `systemfd`), so the fd numbers must follow it.
    pub(crate) listen_fds_first_fd: Option<&'a str>,
}

/// What the variables say was passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Passed {
    /// No `LISTEN_FDS`, or `LISTEN_FDS=0`.
    Nothing,
    /// `LISTEN_PID` names another process: the sockets are that process's, not ours.
    NotOurs { listen_pid: u32, listen_fds: String },
    /// `names.len()` sockets from `first_fd` on; each name is `None` without `LISTEN_FDNAMES`.
    Sockets {
        first_fd: i32,
        names: Vec<Option<String>>,
    },
}

/// A malformed `LISTEN_*` variable: a start-up error (exit 78 under `Builder::run`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvironmentError {
    variable: &'static str,
    message: String,
}

impl EnvironmentError {
    fn new(variable: &'static str, value: &str, reason: impl fmt::Display) -> EnvironmentError {
        let message = format!("socket activation: {variable}={value:?}: {reason}");
        EnvironmentError { variable, message }
    }

    /// The variable at fault, for tests.
    #[cfg(test)]
    pub(crate) fn variable(&self) -> &'static str {
        self.variable
    }
}

impl fmt::Display for EnvironmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EnvironmentError {}

/// Reads what was passed from the variables' values; `own_pid` is this process's id.
///
/// A `LISTEN_PID` naming another process wins over everything else: the other variables are
/// then that process's business, and are not checked.
pub(crate) fn parse(variables: Variables<'_>, own_pid: u32) -> Result<Passed, EnvironmentError> {
    let Some(raw_count) = variables.listen_fds else {
        return Ok(Passed::Nothing);
    };
    // Empty is "unset" for LISTEN_PID, as listenfd (and systemfd, which sets no pid) has it.
    if let Some(raw_pid) = variables.listen_pid.filter(|raw| !raw.is_empty()) {
        let listen_pid: u32 = raw_pid.trim().parse().map_err(|_| {
            EnvironmentError::new(
                "LISTEN_PID",
                raw_pid,
                "not a process id; systemd sets it to the pid of the process it passes sockets to",
            )
        })?;
        if listen_pid != own_pid {
            return Ok(Passed::NotOurs {
                listen_pid,
                listen_fds: raw_count.to_owned(),
            });
        }
    }
    // sd_listen_fds(3)'s SD_LISTEN_FDS_START, unless listenfd's own variable moves it.
    let first_fd: i32 = variables
        .listen_fds_first_fd
        .and_then(|raw| raw.trim().parse().ok())
        .unwrap_or(3);
    let count: usize = raw_count
        .trim()
        .parse()
        .ok()
        .filter(|&count| i32::try_from(count).is_ok_and(|count| first_fd.checked_add(count).is_some()))
        .ok_or_else(|| {
            EnvironmentError::new(
                "LISTEN_FDS",
                raw_count,
                "not a number of file descriptors; systemd sets it to the count of sockets it passes (unset it when starting the service by hand)",
            )
        })?;
    if count == 0 {
        return Ok(Passed::Nothing);
    }
    let names = match variables.listen_fdnames {
        None => vec![None; count],
        Some(raw_names) => raw_names
            .split(':')
            .map(|name| Some(name.to_owned()))
            .collect(),
    };
    if names.len() != count {
        let raw_names = variables.listen_fdnames.unwrap_or_default();
        return Err(EnvironmentError::new(
            "LISTEN_FDNAMES",
            raw_names,
            format_args!(
                "{} colon-separated name(s) for LISTEN_FDS={count} socket(s); it must hold exactly one name per socket",
                names.len()
            ),
        ));
    }
    Ok(Passed::Sockets { first_fd, names })
}

/// The variables of this process, read once by `read_environment`. A value that is not UTF-8
/// is an error of its own, since no valid value can be.
pub(crate) fn from_process(own_pid: u32) -> Result<Passed, EnvironmentError> {
    let read = |name| match env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(VarError::NotPresent) => Ok(None),
        Err(VarError::NotUnicode(value)) => Err(EnvironmentError::new(
            name,
            &value.to_string_lossy(),
            "not valid UTF-8",
        )),
    };
    let listen_fds = read("LISTEN_FDS")?;
    let listen_pid = read("LISTEN_PID")?;
    let listen_fdnames = read("LISTEN_FDNAMES")?;
    let listen_fds_first_fd = read("LISTEN_FDS_FIRST_FD")?;
    let variables = Variables {
        listen_fds: listen_fds.as_deref(),
        listen_pid: listen_pid.as_deref(),
        listen_fdnames: listen_fdnames.as_deref(),
        listen_fds_first_fd: listen_fds_first_fd.as_deref(),
    };
    parse(variables, own_pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN_PID: u32 = 4242;

    fn passed(
        listen_fds: Option<&str>,
        listen_pid: Option<&str>,
        listen_fdnames: Option<&str>,
    ) -> Result<Passed, EnvironmentError> {
        parse(
            Variables {
                listen_fds,
                listen_pid,
                listen_fdnames,
                listen_fds_first_fd: None,
            },
            OWN_PID,
        )
    }

    fn names(names: &[&str]) -> Vec<Option<String>> {
        names.iter().map(|name| Some((*name).to_owned())).collect()
    }

    #[test]
    fn no_listen_fds_means_nothing_passed() {
        assert_eq!(passed(None, None, None), Ok(Passed::Nothing));
        assert_eq!(passed(None, Some("4242"), Some("web")), Ok(Passed::Nothing));
    }

    #[test]
    fn listen_fds_zero_means_nothing_passed() {
        assert_eq!(passed(Some("0"), Some("4242"), None), Ok(Passed::Nothing));
    }

    #[test]
    fn sockets_for_this_pid_are_ours_from_fd_3() {
        assert_eq!(
            passed(Some("2"), Some("4242"), Some("web:admin")),
            Ok(Passed::Sockets {
                first_fd: 3,
                names: names(&["web", "admin"]),
            })
        );
    }

    #[test]
    fn without_listen_fdnames_the_sockets_have_no_names() {
        assert_eq!(
            passed(Some("2"), Some("4242"), None),
            Ok(Passed::Sockets {
                first_fd: 3,
                names: vec![None, None],
            })
        );
    }

    #[test]
    fn listen_pid_of_another_process_means_not_ours() {
        assert_eq!(
            passed(Some("2"), Some("1"), Some("web:admin")),
            Ok(Passed::NotOurs {
                listen_pid: 1,
                listen_fds: "2".to_owned(),
            })
        );
    }

    #[test]
    fn another_processes_variables_are_not_checked() {
        assert_eq!(
            passed(Some("many"), Some("1"), Some("a:b:c")),
            Ok(Passed::NotOurs {
                listen_pid: 1,
                listen_fds: "many".to_owned(),
            })
        );
    }

    #[test]
    fn unset_or_empty_listen_pid_is_accepted_as_listenfd_does() {
        for listen_pid in [None, Some("")] {
            assert_eq!(
                passed(Some("1"), listen_pid, None),
                Ok(Passed::Sockets {
                    first_fd: 3,
                    names: vec![None],
                })
            );
        }
    }

    #[test]
    fn malformed_listen_pid_is_an_error_naming_it() {
        let error = passed(Some("1"), Some("me"), None).unwrap_err();
        assert_eq!(error.variable(), "LISTEN_PID");
        assert!(error.to_string().contains("LISTEN_PID=\"me\""), "{error}");
    }

    #[test]
    fn malformed_listen_fds_is_an_error_naming_it_and_its_value() {
        for bad in ["two", "", "-1", "1.5", "99999999999"] {
            let error = passed(Some(bad), Some("4242"), None).unwrap_err();
            assert_eq!(error.variable(), "LISTEN_FDS");
            assert!(
                error.to_string().contains(&format!("LISTEN_FDS={bad:?}")),
                "{error}"
            );
        }
    }

    #[test]
    fn listen_fdnames_count_must_match_listen_fds() {
        let error = passed(Some("3"), Some("4242"), Some("web:admin")).unwrap_err();
        assert_eq!(error.variable(), "LISTEN_FDNAMES");
        let message = error.to_string();
        assert!(
            message.contains("LISTEN_FDNAMES=\"web:admin\""),
            "{message}"
        );
        assert!(message.contains("LISTEN_FDS=3"), "{message}");
    }

    #[test]
    fn empty_names_count_as_names() {
        assert_eq!(
            passed(Some("2"), Some("4242"), Some(":admin")),
            Ok(Passed::Sockets {
                first_fd: 3,
                names: names(&["", "admin"]),
            })
        );
    }

    #[test]
    fn listen_fds_first_fd_moves_the_first_fd_as_listenfd_does() {
        let parsed = parse(
            Variables {
                listen_fds: Some("1"),
                listen_pid: None,
                listen_fdnames: None,
                listen_fds_first_fd: Some("7"),
            },
            OWN_PID,
        );
        assert_eq!(
            parsed,
            Ok(Passed::Sockets {
                first_fd: 7,
                names: vec![None],
            })
        );
    }
}
