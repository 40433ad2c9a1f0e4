//! Bearer tokens → [`Actor`]. Tokens are stored hashed (`junheng_store::tokens`); a service
//! chooses whether lookups are cached ([`Tokens::cached`]: a revoked token stops working within
//! the TTL, without a database read per call) or not ([`Tokens::uncached`]: at once).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use junheng_core::{Actor, Role};
use sqlx::PgPool;
use tonic::metadata::MetadataMap;

use crate::status::ApiError;

pub struct Tokens {
    ttl: Option<Duration>,
    /// Token digest → actor and when it was looked up.
    cache: Mutex<HashMap<Vec<u8>, (Actor, Instant)>>,
}

impl Tokens {
    pub fn cached(ttl: Duration) -> Self {
        Tokens {
            ttl: Some(ttl),
            cache: Mutex::default(),
        }
    }

    pub fn uncached() -> Self {
        Tokens {
            ttl: None,
            cache: Mutex::default(),
        }
    }

    /// Reads `authorization: Bearer …` and maps the token to its actor.
    pub async fn authenticate(&self, pool: &PgPool, md: &MetadataMap) -> Result<Actor, ApiError> {
        let token = bearer(md)?;
        let digest = junheng_store::tokens::digest(token);
        if let Some(ttl) = self.ttl
            && let Some((actor, at)) = self.cache.lock().expect("token cache").get(&digest)
            && at.elapsed() < ttl
        {
            return Ok(actor.clone());
        }
        let mut conn = pool.acquire().await?;
        let row = junheng_store::tokens::find(&mut conn, token)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::Unauthenticated("unknown or revoked token".into()))?;
        let role = Role::from_code(&row.role)
            .ok_or_else(|| ApiError::Internal(format!("token role `{}`", row.role).into()))?;
        let actor = Actor {
            id: row.actor,
            role,
            school: row.school_id,
        };
        if self.ttl.is_some() {
            self.cache
                .lock()
                .expect("token cache")
                .insert(digest, (actor.clone(), Instant::now()));
        }
        Ok(actor)
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
