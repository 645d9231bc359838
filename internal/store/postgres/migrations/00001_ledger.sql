-- +goose Up
CREATE TABLE ledger (
    seq      BIGINT PRIMARY KEY,
    at       TEXT NOT NULL,
    kind     TEXT NOT NULL,
    actor    TEXT NOT NULL,
    campaign TEXT NOT NULL,
    body     TEXT NOT NULL,
    prev     BYTEA NOT NULL,
    hash     BYTEA NOT NULL
);
CREATE TABLE checkpoints (
    seq  BIGINT PRIMARY KEY,
    hash BYTEA NOT NULL,
    at   TEXT NOT NULL,
    pub  BYTEA NOT NULL,
    sig  BYTEA NOT NULL
);

-- +goose Down
DROP TABLE checkpoints;
DROP TABLE ledger;
