-- Values that belong to this installation, e.g. the secret that signs badge URLs.
CREATE TABLE installation (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
