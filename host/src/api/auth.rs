//! Access control: tokens from a file, sent as `X-Auth-Token` (as Ceilometer's
//! clients do) or `Authorization: Bearer`. A token is an admin, or scoped to one
//! project, whose samples, meters, resources and statistics are all it sees.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::RwLock;

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Sees and writes everything.
    Admin,
    /// Sees and writes one project's data only.
    Project(String),
}

impl Principal {
    /// The project this principal is confined to (none: admin).
    pub fn project(&self) -> Option<&str> {
        match self {
            Principal::Admin => None,
            Principal::Project(p) => Some(p),
        }
    }
}

/// The tokens file's entry: `admin`, a project id, or `{project: id}`.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum Entry {
    Word(String),
    Project { project: String },
}

/// How requests are authenticated.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Everyone is admin (`--no-auth`).
    Open,
    /// Known tokens.
    Tokens(Vec<(Vec<u8>, Principal)>),
}

impl Auth {
    /// Reads a YAML mapping of token → `admin` | project id | `{project: id}`.
    pub fn from_file(path: &Path) -> Result<Auth, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read the tokens file: {e}", path.display()))?;
        let map: BTreeMap<String, Entry> = serde_yaml::from_str(&text).map_err(|e| {
            format!(
                "{}: expected a YAML mapping of token to `admin`, a project id or {{project: id}}: {e}",
                path.display()
            )
        })?;
        if map.is_empty() {
            return Err(format!("{}: no tokens", path.display()));
        }
        Ok(Auth::Tokens(
            map.into_iter()
                .map(|(token, e)| {
                    let who = match e {
                        Entry::Word(w) if w == "admin" => Principal::Admin,
                        Entry::Word(p) | Entry::Project { project: p } => Principal::Project(p),
                    };
                    (token.into_bytes(), who)
                })
                .collect(),
        ))
    }

    /// Who sent these headers.
    pub fn principal(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let tokens = match self {
            Auth::Open => return Ok(Principal::Admin),
            Auth::Tokens(t) => t,
        };
        let given = headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .or_else(|| {
                headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::trim)
            })
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "authentication required: send a token as X-Auth-Token or Authorization: Bearer",
                )
            })?;
        // Compare against every token, in constant time each, so that the answer's
        // timing says nothing about how much of a token was right.
        let mut found: Option<&Principal> = None;
        for (token, who) in tokens {
            if bool::from(token.as_slice().ct_eq(given.as_bytes())) {
                found = Some(who);
            }
        }
        found
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("the token is not valid"))
    }
}

/// The authentication a running API uses, replaced whole when its tokens file is
/// reloaded (a request sees the old tokens or the new ones, never a mix).
#[derive(Debug)]
pub struct SharedAuth {
    current: RwLock<Auth>,
}

impl SharedAuth {
    /// Starts with `auth`.
    pub fn new(auth: Auth) -> SharedAuth {
        SharedAuth {
            current: RwLock::new(auth),
        }
    }

    /// Who sent these headers, by the tokens in force.
    pub fn principal(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        // A panic elsewhere while holding the lock leaves the value whole (it is only
        // ever replaced), so a poisoned lock is still read.
        let auth = self.current.read().unwrap_or_else(|p| p.into_inner());
        auth.principal(headers)
    }

    /// Whether the API runs without tokens (`--no-auth`).
    pub fn is_open(&self) -> bool {
        let auth = self.current.read().unwrap_or_else(|p| p.into_inner());
        matches!(*auth, Auth::Open)
    }

    /// Puts `auth` in force for the requests that follow.
    pub fn replace(&self, auth: Auth) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = auth;
    }
}
