-- The trace of the call that caused a reminder or a notice's expiry: the W3C `traceparent` of
-- the call that opened an obligation (re-opened: the latest) or published a notice, so the
-- scheduler's deliveries planned from them continue the call's trace, as deliveries planned
-- from events do (migration 0015). Diagnostic only, NULL when traces are off.
ALTER TABLE obligations ADD COLUMN trace_context text;
ALTER TABLE notices ADD COLUMN trace_context text;
