//! Shared service state and the unit of work every mutating call goes through:
//! authenticate → begin transaction → claim the idempotency key → read "now" → … → store the
//! response with the key → commit.

use junheng_core::{CampaignId, SchoolId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use junheng_core::calendar::Calendars;
use junheng_core::{Actor, CampaignDefinition, PhaseBoard, Role, Scope};
use junheng_edge::auth::Tokens;
use junheng_edge::values::IdempotencyKey;
use junheng_store::audit::AuditCtx;
use junheng_store::campaigns::{self, CampaignRow, Lock};
use junheng_store::idempotency::{self, Claim};
use junheng_store::{PgConnection, PgPool, Postgres, Transaction};
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;
use tonic::metadata::MetadataMap;
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// Where "now" comes from. Chosen at start-up; reported by GetServerInfo and health.
pub use junheng_edge::clock::ClockMode;

pub struct AppState {
    pub pool: PgPool,
    pub clock: ClockMode,
    /// Started with `--demo`: reported by GetServerInfo and health (`junheng.demo`).
    pub demo: bool,
    /// Wakes event followers; fed by LISTEN junheng_events (see `server`) with the campaign
    /// whose events committed.
    pub events: broadcast::Sender<Uuid>,
    /// Whether LISTEN junheng_events is connected: followers then poll only as a fallback
    /// (every `FOLLOW_POLL_LISTENING`), else every `FOLLOW_POLL`.
    pub events_live: std::sync::atomic::AtomicBool,
    /// Per-caller limits (the gRPC layer and the FollowEvents stream cap share it).
    pub limiter: Arc<junheng_edge::limits::Limiter>,
    definitions: Mutex<HashMap<String, Arc<CampaignDefinition>>>,
    /// Token lookups: one indexed read per call, no cache, so a revoked or expired token is
    /// refused at once on every replica.
    tokens: Tokens,
    school_campaigns: Mutex<HashMap<SchoolId, CampaignId>>,
    /// The working-day calendar years: shipped and added files (see `calendars`).
    pub calendars: Calendars,
}

/// An authenticated call.
#[derive(Debug, Clone)]
pub struct Call {
    pub actor: Actor,
    /// Where the caller's token acts (checked by `policy` for reads, by `Work::record` for
    /// every mutation).
    pub scope: Scope,
    /// The caller's token (`None` for unauthenticated calls).
    pub token_id: Option<Uuid>,
    pub request_id: String,
}

impl Call {
    pub fn require(&self, roles: &[Role], action: &str) -> AppResult<()> {
        if roles.contains(&self.actor.role) {
            Ok(())
        } else {
            Err(AppError::PermissionDenied(format!(
                "{} may not {action}",
                self.actor.role
            )))
        }
    }

    /// Everyone but leadership (read-only) may do this.
    pub fn require_writer(&self, action: &str) -> AppResult<()> {
        self.require(
            &[Role::Office, Role::Department, Role::Panel, Role::School],
            action,
        )
    }
}

/// A campaign loaded for a command: its row, definition and phase board.
pub struct Loaded {
    pub row: CampaignRow,
    pub def: Arc<CampaignDefinition>,
    pub phases: PhaseBoard,
}

impl Loaded {
    pub fn id(&self) -> CampaignId {
        self.row.campaign_id()
    }
}

pub enum Begun<R> {
    Replay(R),
    Fresh(Work),
}

/// One mutating call's transaction.
pub struct Work {
    pub tx: Transaction<'static, Postgres>,
    pub now: DateTime<Utc>,
    key: IdempotencyKey,
    actor: String,
    notify: Option<CampaignId>,
    /// Events recorded so far, appended at commit (see `record`).
    events: Vec<(AuditCtx, Vec<junheng_core::Effect>)>,
}

impl Work {
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    fn audit(&mut self, call: &Call, campaign: CampaignId) -> AuditCtx {
        self.notify = Some(campaign);
        AuditCtx {
            campaign: campaign.as_uuid(),
            actor: call.actor.id.clone(),
            role: call.actor.role,
            request_id: call.request_id.clone(),
            at: self.now,
            trace_context: junheng_edge::telemetry::traceparent(),
        }
    }

    /// Persists a decision's effects, stamped with who did it, on which request, when. The
    /// obligations are written now; the audit events are appended at `commit`, after every
    /// row lock the command takes, because appending holds the campaign's chain lock to the
    /// end of the transaction (see `junheng_store::audit::insert_events`).
    pub async fn record(
        &mut self,
        call: &Call,
        campaign: CampaignId,
        effects: &[junheng_core::Effect],
    ) -> AppResult<()> {
        crate::app::policy::require_scope(call, campaign)?;
        let audit = self.audit(call, campaign);
        junheng_store::audit::apply_obligations(&mut self.tx, &audit, effects).await?;
        if effects
            .iter()
            .any(|e| matches!(e, junheng_core::Effect::Event { .. }))
        {
            self.events.push((audit, effects.to_vec()));
        }
        Ok(())
    }

    /// Stores the response under the idempotency key and commits everything at once.
    pub async fn commit<R: Message>(mut self, response: &R) -> AppResult<()> {
        for (audit, effects) in std::mem::take(&mut self.events) {
            junheng_store::audit::insert_events(&mut self.tx, &audit, &effects).await?;
        }
        idempotency::complete(
            &mut self.tx,
            &self.actor,
            self.key.as_str(),
            &response.encode_to_vec(),
        )
        .await?;
        if let Some(c) = self.notify {
            junheng_store::audit::notify(&mut self.tx, c.as_uuid()).await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}

/// Parses the request's idempotency key (a field violation naming `idempotency_key`).
pub fn validate_key(key: &str) -> AppResult<IdempotencyKey> {
    IdempotencyKey::parse(key).ok_or_else(|| {
        AppError::invalid(
            "idempotency_key",
            "required: 1 to 128 printable ASCII characters without spaces",
        )
    })
}

impl AppState {
    pub fn new(pool: PgPool, clock: ClockMode) -> Self {
        let (events, _) = broadcast::channel(1024);
        AppState {
            pool,
            clock,
            demo: false,
            events,
            events_live: std::sync::atomic::AtomicBool::new(false),
            limiter: junheng_edge::limits::Limiter::new(Default::default()),
            definitions: Mutex::default(),
            tokens: Tokens::new(clock)
                .refusing_demo(std::env::var("JUNHENG_ENV").is_ok_and(|e| e == "production")),
            school_campaigns: Mutex::default(),
            calendars: Calendars::shipped().clone(),
        }
    }

    pub async fn now(&self, conn: &mut PgConnection) -> AppResult<DateTime<Utc>> {
        Ok(junheng_edge::clock::now(conn, self.clock).await?)
    }

    /// Reads `authorization: Bearer …`, maps the token to an actor (tokens are stored hashed).
    pub async fn authenticate(
        &self,
        md: &MetadataMap,
    ) -> AppResult<junheng_edge::auth::Authenticated> {
        Ok(self.tokens.authenticate_scoped(&self.pool, md).await?)
    }

    pub fn definition(&self, row: &CampaignRow) -> AppResult<Arc<CampaignDefinition>> {
        if let Some(d) = self
            .definitions
            .lock()
            .expect("definition cache")
            .get(&row.definition_sha256)
        {
            return Ok(d.clone());
        }
        let def = CampaignDefinition::from_canonical_with(row.definition.clone(), &self.calendars)
            .map_err(|e| AppError::Internal(e.to_string().into()))?;
        let def = Arc::new(def);
        self.definitions
            .lock()
            .expect("definition cache")
            .insert(row.definition_sha256.clone(), def.clone());
        Ok(def)
    }

    pub async fn load(
        &self,
        conn: &mut PgConnection,
        id: CampaignId,
        lock: Lock,
    ) -> AppResult<Loaded> {
        let row = campaigns::get(conn, id, lock).await?;
        let def = self.definition(&row)?;
        let phases: PhaseBoard =
            serde_json::from_value(row.phases.clone()).map_err(AppError::internal)?;
        Ok(Loaded { row, def, phases })
    }

    /// The campaign a school belongs to (immutable, so cached).
    pub async fn campaign_of(
        &self,
        conn: &mut PgConnection,
        school: SchoolId,
    ) -> AppResult<CampaignId> {
        if let Some(c) = self
            .school_campaigns
            .lock()
            .expect("school cache")
            .get(&school)
        {
            return Ok(*c);
        }
        let c = junheng_store::schools::get(conn, school).await?.campaign_id;
        self.school_campaigns
            .lock()
            .expect("school cache")
            .insert(school, c);
        Ok(c)
    }

    /// Starts a mutating call: transaction, idempotency claim, "now".
    pub async fn begin<Req: Message, Resp: Message + Default>(
        &self,
        call: &Call,
        method: &'static str,
        key: &str,
        request: &Req,
    ) -> AppResult<Begun<Resp>> {
        let key = validate_key(key)?;
        let mut tx = self.pool.begin().await?;
        let fingerprint = Sha256::digest(request.encode_to_vec()).to_vec();
        match idempotency::claim(&mut tx, &call.actor.id, key.as_str(), method, &fingerprint)
            .await?
        {
            Claim::Fresh => {}
            Claim::Replay(bytes) => {
                tx.rollback().await?;
                return Ok(Begun::Replay(
                    Resp::decode(bytes.as_slice()).map_err(AppError::internal)?,
                ));
            }
            Claim::Mismatch => {
                return Err(AppError::AlreadyExists(format!(
                    "idempotency key `{key}` was already used for a different request; use a new key"
                )));
            }
        }
        let now = self.now(&mut tx).await?;
        Ok(Begun::Fresh(Work {
            tx,
            now,
            key,
            actor: call.actor.id.clone(),
            notify: None,
            events: Vec::new(),
        }))
    }
}
