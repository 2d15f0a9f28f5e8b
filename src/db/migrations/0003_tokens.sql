-- API tokens. Only a SHA-256 of each secret is kept; the secret is shown once.
CREATE TABLE tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'agent', 'viewer')),
    -- The agent an `agent` token is bound to; NULL for the other roles.
    agent_id TEXT CHECK ((role = 'agent') = (agent_id IS NOT NULL)),
    secret_sha256 TEXT NOT NULL UNIQUE,
    created_at_us INTEGER NOT NULL,
    revoked_at_us INTEGER
);
