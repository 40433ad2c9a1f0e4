//! Bearer tokens → [`Actor`] and its [`Scope`]. Tokens are stored hashed
//! (`junheng_store::tokens`) with a scope, an expiry and a revocation instant. Every call looks
//! its token up (no positive cache), so a revoked or expired token is refused at once on every
//! replica; expiry is judged against the service's clock ([`ClockMode`]). A token found nowhere
//! is remembered for [`UNKNOWN_TOKEN_TTL`] and refused meanwhile without a database round trip
//! (a burst of guesses or a misconfigured client cannot occupy the pool). A demo token is
//! refused when the service runs in production ([`Tokens::refusing_demo`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use junheng_core::{Actor, Scope};
use sqlx::PgPool;
use tonic::metadata::MetadataMap;
use uuid::Uuid;

use crate::clock::{self, ClockMode};
use crate::status::ApiError;

/// An authenticated caller: who, and where its token acts.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub actor: Actor,
    pub scope: Scope,
    pub token_id: Uuid,
}

/// How long an unknown token is refused from memory.
pub const UNKNOWN_TOKEN_TTL: Duration = Duration::from_secs(10);
/// Most unknown tokens remembered at once (older ones are forgotten first).
const UNKNOWN_TOKENS_MAX: usize = 10_000;

pub struct Tokens {
    clock: ClockMode,
    refuse_demo: bool,
    /// SHA-256 of tokens found nowhere → until when they are refused from memory.
    unknown: Mutex<HashMap<[u8; 32], Instant>>,
}

impl Tokens {
    /// Looks every token up on every call; expiry against `clock`.
    pub fn new(clock: ClockMode) -> Self {
        Tokens {
            clock,
            refuse_demo: false,
            unknown: Mutex::new(HashMap::new()),
        }
    }

    /// Refuses demo tokens (the server runs with `JUNHENG_ENV=production`).
    pub fn refusing_demo(mut self, refuse: bool) -> Self {
        self.refuse_demo = refuse;
        self
    }

    /// Reads `authorization: Bearer …` and maps the token to its actor.
    pub async fn authenticate(&self, pool: &PgPool, md: &MetadataMap) -> Result<Actor, ApiError> {
        Ok(self.authenticate_scoped(pool, md).await?.actor)
    }

    /// Reads `authorization: Bearer …` and maps the token to its actor and scope.
    pub async fn authenticate_scoped(
        &self,
        pool: &PgPool,
        md: &MetadataMap,
    ) -> Result<Authenticated, ApiError> {
        let token = bearer(md)?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if self.known_unknown(&digest) {
            return Err(ApiError::Unauthenticated("unknown token".into()));
        }
        let mut conn = pool.acquire().await?;
        let Some(row) = junheng_store::tokens::find(&mut conn, token)
            .await
            .map_err(ApiError::internal)?
        else {
            self.remember_unknown(digest);
            return Err(ApiError::Unauthenticated("unknown token".into()));
        };
        if row.revoked_at.is_some() {
            return Err(ApiError::Unauthenticated("revoked token".into()));
        }
        if let Some(exp) = row.expires_at {
            let now = clock::now(&mut conn, self.clock)
                .await
                .map_err(ApiError::internal)?;
            if exp <= now {
                return Err(ApiError::Unauthenticated(format!("token expired at {exp}")));
            }
        }
        if row.demo && self.refuse_demo {
            return Err(ApiError::Unauthenticated(
                "demo tokens are refused in production (JUNHENG_ENV=production)".into(),
            ));
        }
        let role = row.role;
        Ok(Authenticated {
            actor: Actor {
                id: row.actor,
                role,
                school: row.school_id.map(junheng_core::SchoolId::new),
            },
            scope: Scope::from_campaigns(row.campaigns),
            token_id: row.id,
        })
    }
}

impl Tokens {
    fn known_unknown(&self, digest: &[u8; 32]) -> bool {
        let unknown = self.unknown.lock().expect("not poisoned");
        unknown
            .get(digest)
            .is_some_and(|until| Instant::now() < *until)
    }

    fn remember_unknown(&self, digest: [u8; 32]) {
        let now = Instant::now();
        let mut unknown = self.unknown.lock().expect("not poisoned");
        if unknown.len() >= UNKNOWN_TOKENS_MAX {
            unknown.retain(|_, until| *until > now);
            if unknown.len() >= UNKNOWN_TOKENS_MAX {
                unknown.clear();
            }
        }
        unknown.insert(digest, now + UNKNOWN_TOKEN_TTL);
    }

    /// How many unknown tokens are remembered now (tests).
    pub fn unknown_remembered(&self) -> usize {
        let now = Instant::now();
        let unknown = self.unknown.lock().expect("not poisoned");
        unknown.values().filter(|until| **until > now).count()
    }
}

/// The token of `authorization: Bearer <token>`.
pub fn bearer(md: &MetadataMap) -> Result<&str, ApiError> {
    let header = md.get("authorization").ok_or_else(|| {
        ApiError::Unauthenticated("missing `authorization: Bearer <token>` metadata".into())
    })?;
    header
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthenticated("authorization metadata must be `Bearer <token>`".into())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_needs_the_scheme_and_a_token() {
        let mut md = MetadataMap::new();
        assert!(matches!(bearer(&md), Err(ApiError::Unauthenticated(_))));
        md.insert("authorization", "Basic abc".parse().unwrap());
        assert!(matches!(bearer(&md), Err(ApiError::Unauthenticated(_))));
        md.insert("authorization", "Bearer  ".parse().unwrap());
        assert!(matches!(bearer(&md), Err(ApiError::Unauthenticated(_))));
        md.insert("authorization", "Bearer t0k".parse().unwrap());
        assert_eq!(bearer(&md).unwrap(), "t0k");
    }
}
