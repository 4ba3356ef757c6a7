-- Registry and users (PostgreSQL). Each entity row keeps its keys as columns under foreign keys
-- and the whole entity as a JSON document.
CREATE TABLE sites (
    id TEXT PRIMARY KEY,
    doc JSONB NOT NULL
);
CREATE TABLE residents (
    id TEXT PRIMARY KEY,
    site_id TEXT NOT NULL REFERENCES sites(id),
    doc JSONB NOT NULL
);
CREATE INDEX residents_by_site ON residents(site_id, id);
CREATE TABLE responders (
    id TEXT PRIMARY KEY,
    doc JSONB NOT NULL
);
CREATE TABLE responder_sites (
    responder_id TEXT NOT NULL REFERENCES responders(id) ON DELETE CASCADE,
    site_id TEXT NOT NULL REFERENCES sites(id),
    PRIMARY KEY (responder_id, site_id)
);
CREATE INDEX responder_sites_by_site ON responder_sites(site_id);
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    site_id TEXT NOT NULL REFERENCES sites(id),
    resident_id TEXT REFERENCES residents(id),
    doc JSONB NOT NULL
);
CREATE INDEX devices_by_site ON devices(site_id, id);
CREATE INDEX devices_by_resident ON devices(resident_id);
CREATE TABLE gateways (
    id TEXT PRIMARY KEY,
    site_id TEXT NOT NULL REFERENCES sites(id),
    doc JSONB NOT NULL
);
CREATE INDEX gateways_by_site ON gateways(site_id, id);
CREATE TABLE shifts (
    id TEXT PRIMARY KEY,
    site_id TEXT NOT NULL REFERENCES sites(id),
    responder_id TEXT NOT NULL REFERENCES responders(id),
    doc JSONB NOT NULL
);
CREATE INDEX shifts_by_site ON shifts(site_id, id);
CREATE INDEX shifts_by_responder ON shifts(responder_id);
CREATE TABLE users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    scope JSONB NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions(expires_at);
