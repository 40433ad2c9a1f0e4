-- One trace from a call to the messages it caused (OpenTelemetry, when configured): the W3C
-- `traceparent` of the call that wrote an event, and of the outbox rows the scheduler plans
-- from it. Diagnostic only: not part of the audit hash (migration 0008 hashes a fixed field
-- list), NULL when traces are off.
ALTER TABLE events ADD COLUMN trace_context text;
ALTER TABLE outbox ADD COLUMN trace_context text;
