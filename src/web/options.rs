//! How the console is served: where, who may use it, and what it allows. Read-only unless
//! triggering runs is switched on; off loopback it refuses to start without authentication.

use super::browse::Caps;
use crate::config::Secret;
use std::net::SocketAddr;

/// Environment variables holding the console's credentials (never flags: flags show in
/// process listings).
pub const TOKEN_ENV: &str = "RUNNER_CONSOLE_TOKEN";
pub const USER_ENV: &str = "RUNNER_CONSOLE_USER";
pub const PASSWORD_ENV: &str = "RUNNER_CONSOLE_PASSWORD";

#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error(
        "refusing to serve on {addr} without authentication: it is not a loopback address. Set {TOKEN_ENV} (bearer) or {USER_ENV} and {PASSWORD_ENV} (basic), or listen on 127.0.0.1"
    )]
    NoAuth { addr: SocketAddr },
    #[error("{USER_ENV} is set but {PASSWORD_ENV} is not (or the other way round); set both")]
    HalfBasic,
    #[error("{0} is set but empty")]
    Empty(&'static str),
}

#[derive(Debug, Clone)]
pub enum Auth {
    Basic { user: String, password: Secret },
    Bearer(Secret),
}

impl Auth {
    /// Credentials from the environment, if any.
    pub fn from_env() -> Result<Option<Auth>, OptionsError> {
        Auth::from_vars(|name| std::env::var(name).ok())
    }

    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Auth>, OptionsError> {
        let nonempty = |name: &'static str| match var(name) {
            Some(v) if v.is_empty() => Err(OptionsError::Empty(name)),
            other => Ok(other),
        };
        if let Some(token) = nonempty(TOKEN_ENV)? {
            return Ok(Some(Auth::Bearer(Secret::from(token.as_str()))));
        }
        match (nonempty(USER_ENV)?, nonempty(PASSWORD_ENV)?) {
            (Some(user), Some(password)) => Ok(Some(Auth::Basic {
                user,
                password: Secret::from(password.as_str()),
            })),
            (None, None) => Ok(None),
            _ => Err(OptionsError::HalfBasic),
        }
    }

    /// Whether an `Authorization` header value carries these credentials.
    pub fn accepts(&self, header: Option<&str>) -> bool {
        use base64::Engine;
        let Some(header) = header else {
            return false;
        };
        match self {
            Auth::Bearer(token) => header
                .strip_prefix("Bearer ")
                .is_some_and(|t| same(t.trim().as_bytes(), token.expose().as_bytes())),
            Auth::Basic { user, password } => header
                .strip_prefix("Basic ")
                .and_then(|b| {
                    base64::engine::general_purpose::STANDARD
                        .decode(b.trim())
                        .ok()
                })
                .is_some_and(|pair| {
                    let wanted = format!("{user}:{}", password.expose());
                    same(&pair, wanted.as_bytes())
                }),
        }
    }

    pub fn scheme(&self) -> &'static str {
        match self {
            Auth::Basic { .. } => "Basic realm=\"runner\"",
            Auth::Bearer(_) => "Bearer realm=\"runner\"",
        }
    }
}

/// Compares in time that does not depend on where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    pub listen: SocketAddr,
    pub auth: Option<Auth>,
    /// The jobs page may start a run of a job the scheduler hosts.
    pub allow_trigger: bool,
    /// Only topics.json's topics are listed and browsable, not every topic of the cluster.
    pub configured_topics_only: bool,
    pub caps: Caps,
}

impl ConsoleOptions {
    /// Refuses an address other machines can reach without authentication.
    pub fn check(&self) -> Result<(), OptionsError> {
        if self.auth.is_none() && !self.listen.ip().is_loopback() {
            return Err(OptionsError::NoAuth { addr: self.listen });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_from_the_environment() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(Auth::from_vars(vars(&[])).unwrap().is_none());
        let bearer = Auth::from_vars(vars(&[(TOKEN_ENV, "t0k")]))
            .unwrap()
            .unwrap();
        assert!(bearer.accepts(Some("Bearer t0k")));
        assert!(!bearer.accepts(Some("Bearer t0")));
        assert!(!bearer.accepts(None));
        let basic = Auth::from_vars(vars(&[(USER_ENV, "ops"), (PASSWORD_ENV, "pw")]))
            .unwrap()
            .unwrap();
        // base64("ops:pw")
        assert!(basic.accepts(Some("Basic b3BzOnB3")));
        assert!(!basic.accepts(Some("Basic b3BzOnB4")));
        assert!(matches!(
            Auth::from_vars(vars(&[(USER_ENV, "ops")])),
            Err(OptionsError::HalfBasic)
        ));
        assert!(matches!(
            Auth::from_vars(vars(&[(TOKEN_ENV, "")])),
            Err(OptionsError::Empty(_))
        ));
    }

    #[test]
    fn off_loopback_needs_auth() {
        let mut options = ConsoleOptions {
            listen: "0.0.0.0:8080".parse().unwrap(),
            auth: None,
            allow_trigger: false,
            configured_topics_only: false,
            caps: Caps::default(),
        };
        assert!(matches!(options.check(), Err(OptionsError::NoAuth { .. })));
        options.listen = "127.0.0.1:8080".parse().unwrap();
        assert!(options.check().is_ok());
        options.listen = "[::1]:8080".parse().unwrap();
        assert!(options.check().is_ok());
    }
}
