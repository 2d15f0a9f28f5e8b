-- Channels (DESIGN §13): an alert is delivered once per channel that takes it, each
-- delivery retried on its own. The alert's attempts, sent_at_us and last_error become a
-- summary of its deliveries, so that older clients still read them right.

-- When the delivery loop decided which channels take the alert; NULL until then. An alert
-- is routed by the configuration of the moment it is first sent.
ALTER TABLE alerts ADD COLUMN routed_at_us INTEGER;

CREATE TABLE deliveries (
    alert_id INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    -- The channel's name in the configuration (`email` for the built-in one).
    channel TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    -- When it may next be tried: moved forward while a sender holds it (a lease) and after
    -- a failure (backoff); NULL once delivered or refused for good.
    next_attempt_us INTEGER,
    sent_at_us INTEGER,
    last_error TEXT,
    PRIMARY KEY (alert_id, channel)
) WITHOUT ROWID;
CREATE INDEX deliveries_due ON deliveries (next_attempt_us) WHERE next_attempt_us IS NOT NULL;

-- Alerts emailed before channels existed: routed to email and delivered there. Those not
-- delivered yet are routed, like new ones, when the delivery loop next takes them.
INSERT INTO deliveries (alert_id, channel, attempts, next_attempt_us, sent_at_us, last_error)
SELECT id, 'email', attempts, NULL, sent_at_us, NULL FROM alerts WHERE sent_at_us IS NOT NULL;
UPDATE alerts SET routed_at_us = sent_at_us WHERE sent_at_us IS NOT NULL;

DROP INDEX IF EXISTS alerts_undelivered;
CREATE INDEX alerts_unrouted ON alerts (next_attempt_us) WHERE routed_at_us IS NULL;
