//! systemd's notify protocol (`sd_notify`): a no-op when the service was not started by
//! systemd (`NOTIFY_SOCKET` unset), so the binaries call it unconditionally.

use sd_notify::NotifyState;
use sqlx::PgPool;

/// Tells systemd the service is up (`Type=notify`).
pub fn ready() {
    if let Err(e) = sd_notify::notify(false, &[NotifyState::Ready]) {
        tracing::warn!(error = %e, "could not notify systemd");
    }
}

/// Tells systemd the service is stopping.
pub fn stopping() {
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
}

/// With `WatchdogSec=` set, pets the watchdog at half its period while the database answers:
/// a service wedged on its database is restarted by systemd.
pub fn spawn_watchdog(pool: PgPool) {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) {
        return;
    }
    let period = std::time::Duration::from_micros(usec / 2);
    tracing::info!(?period, "systemd watchdog enabled");
    tokio::spawn(async move {
        loop {
            if crate::health::database_answers(&pool).await {
                let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
            }
            tokio::time::sleep(period).await;
        }
    });
}
