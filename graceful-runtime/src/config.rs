//! The shutdown timings and signal set, their defaults, and the `GRACEFUL_*` environment
//! overrides that operators use without recompiling.

use std::fmt;
use std::time::Duration;

use crate::report::ReportFormat;
use crate::signals::Signal;

/// The timings of one shutdown. Defaults fit inside Kubernetes' 30 s grace period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) drain_timeout: Duration,
    pub(crate) hook_timeout: Duration,
    pub(crate) pre_stop: Duration,
    pub(crate) grace: Duration,
    /// How long work has to hand itself back once the deadline token is cancelled.
    pub(crate) abandon_timeout: Duration,
    pub(crate) signals: Vec<Signal>,
    /// The `reload_signal` key: `None` when not given (SIGHUP, unless `signals` names it),
    /// `Some(None)` for "none".
    pub(crate) reload_signal: Option<Option<Signal>>,
    pub(crate) report: ReportFormat,
    /// The `health` key as written, checked when the environment is applied.
    #[cfg(feature = "health")]
    pub(crate) health_key: Option<&'static str>,
    /// Where the health port listens: `GRACEFUL_HEALTH_ADDR`, else the `health` key, else off.
    #[cfg(feature = "health")]
    pub(crate) health_address: Option<std::net::SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            drain_timeout: Duration::from_secs(20),
            hook_timeout: Duration::from_secs(5),
            pre_stop: Duration::ZERO,
            grace: Duration::from_secs(28),
            abandon_timeout: Duration::from_secs(1),
            signals: vec![Signal::Sigterm, Signal::Sigint],
            reload_signal: None,
            report: ReportFormat::Text,
            #[cfg(feature = "health")]
            health_key: None,
            #[cfg(feature = "health")]
            health_address: None,
        }
    }
}

/// The variable that chooses the report's format.
const REPORT_VARIABLE: &str = "GRACEFUL_REPORT";

/// The variable that sets (or overrides) the health port's address.
#[cfg(feature = "health")]
const HEALTH_VARIABLE: &str = "GRACEFUL_HEALTH_ADDR";

/// Picks one timing out of a config.
type Field = fn(&mut Config) -> &mut Duration;

/// The environment variables that override the timings, each with the field it sets.
const OVERRIDES: [(&str, Field); 5] = [
    ("GRACEFUL_DRAIN_TIMEOUT", |config| &mut config.drain_timeout),
    ("GRACEFUL_HOOK_TIMEOUT", |config| &mut config.hook_timeout),
    ("GRACEFUL_PRE_STOP", |config| &mut config.pre_stop),
    ("GRACEFUL_GRACE", |config| &mut config.grace),
    ("GRACEFUL_ABANDON_TIMEOUT", |config| {
        &mut config.abandon_timeout
    }),
];

impl Config {
    /// Applies the `GRACEFUL_*` variables that `lookup` finds. Every bad value is reported, not
    /// only the first, so an operator fixes them in one go.
    pub(crate) fn apply_env(
        &mut self,
        lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<(), ConfigError> {
        let mut updated = self.clone();
        let mut problems = Vec::new();
        for (variable, field) in OVERRIDES {
            let Some(raw) = lookup(variable) else {
                continue;
            };
            match parse_duration(&raw) {
                Ok(duration) => *field(&mut updated) = duration,
                Err(reason) => problems.push(EnvProblem {
                    variable,
                    value: raw.to_string_lossy().into_owned(),
                    reason: format!(
                        "not a duration ({reason}); write a humantime duration such as \"20s\" or \"500ms\""
                    ),
                }),
            }
        }
        if let Some(raw) = lookup(REPORT_VARIABLE) {
            match raw.to_str().and_then(ReportFormat::from_name) {
                Some(format) => updated.report = format,
                None => problems.push(EnvProblem {
                    variable: REPORT_VARIABLE,
                    value: raw.to_string_lossy().into_owned(),
                    reason: "write \"text\" or \"json\"".to_owned(),
                }),
            }
        }
        #[cfg(feature = "health")]
        {
            let (source, text) = match lookup(HEALTH_VARIABLE) {
                Some(value) => (HEALTH_VARIABLE, Some(value.to_string_lossy().into_owned())),
                None => ("the `health` key", self.health_key.map(str::to_owned)),
            };
            if let Some(text) = text {
                match text.trim().parse() {
                    Ok(address) => updated.health_address = Some(address),
                    Err(error) => problems.push(EnvProblem {
                        variable: source,
                        value: text,
                        reason: format!(
                            "not a socket address ({error}); write e.g. \"0.0.0.0:8081\""
                        ),
                    }),
                }
            }
        }
        if problems.is_empty() {
            *self = updated;
            Ok(())
        } else {
            Err(ConfigError { problems })
        }
    }
}

fn parse_duration(raw: &std::ffi::OsStr) -> Result<Duration, String> {
    let text = raw
        .to_str()
        .ok_or_else(|| "it is not valid UTF-8".to_owned())?;
    humantime::parse_duration(text.trim()).map_err(|error| error.to_string())
}

/// A bad `GRACEFUL_*` value found at start-up. The process exits with 78 before user code runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    problems: Vec<EnvProblem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct EnvProblem {
    variable: &'static str,
    value: String,
    reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(
                f,
                "{}={:?}: {}",
                problem.variable, problem.value, problem.reason
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(key, value)| (key.to_string(), OsString::from(value)))
            .collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn env_overrides_each_timing() {
        let mut config = Config::default();
        config
            .apply_env(env(&[
                ("GRACEFUL_DRAIN_TIMEOUT", "3s"),
                ("GRACEFUL_HOOK_TIMEOUT", "250ms"),
                ("GRACEFUL_PRE_STOP", "1s 500ms"),
                ("GRACEFUL_GRACE", "1m"),
                ("GRACEFUL_ABANDON_TIMEOUT", "2s"),
            ]))
            .unwrap();
        assert_eq!(config.abandon_timeout, Duration::from_secs(2));
        assert_eq!(config.drain_timeout, Duration::from_secs(3));
        assert_eq!(config.hook_timeout, Duration::from_millis(250));
        assert_eq!(config.pre_stop, Duration::from_millis(1500));
        assert_eq!(config.grace, Duration::from_secs(60));
    }

    #[test]
    fn bad_values_name_every_variable_and_value() {
        let mut config = Config::default();
        let error = config
            .apply_env(env(&[
                ("GRACEFUL_DRAIN_TIMEOUT", "soon"),
                ("GRACEFUL_GRACE", "5 parsecs"),
            ]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("GRACEFUL_DRAIN_TIMEOUT=\"soon\": not a duration"),
            "{error}"
        );
        assert!(error.contains("GRACEFUL_GRACE=\"5 parsecs\""), "{error}");
        assert_eq!(config, Config::default(), "a bad value must change nothing");
    }

    #[test]
    fn report_format_comes_from_graceful_report() {
        let mut config = Config::default();
        config
            .apply_env(env(&[("GRACEFUL_REPORT", "json")]))
            .unwrap();
        assert_eq!(config.report, ReportFormat::Json);
        let error = config
            .apply_env(env(&[("GRACEFUL_REPORT", "yaml")]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("GRACEFUL_REPORT=\"yaml\": write \"text\" or \"json\""),
            "{error}"
        );
    }

    #[cfg(feature = "health")]
    #[test]
    fn the_health_address_comes_from_the_environment_before_the_key() {
        let mut config = Config {
            health_key: Some("0.0.0.0:8081"),
            ..Config::default()
        };
        config.apply_env(env(&[])).unwrap();
        assert_eq!(config.health_address, Some("0.0.0.0:8081".parse().unwrap()));
        config
            .apply_env(env(&[("GRACEFUL_HEALTH_ADDR", "127.0.0.1:9000")]))
            .unwrap();
        assert_eq!(
            config.health_address,
            Some("127.0.0.1:9000".parse().unwrap())
        );
        assert_eq!(Config::default().health_address, None);
    }

    #[cfg(feature = "health")]
    #[test]
    fn a_bad_health_address_names_where_it_came_from() {
        let error = Config::default()
            .apply_env(env(&[("GRACEFUL_HEALTH_ADDR", "localhost")]))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("GRACEFUL_HEALTH_ADDR=\"localhost\": not a socket address"),
            "{error}"
        );
    }
}
