-- +goose Up
CREATE TABLE ledger (
    seq      INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    kind     TEXT NOT NULL,
    actor    TEXT NOT NULL,
    campaign TEXT NOT NULL,
    body     TEXT NOT NULL,
    prev     BLOB NOT NULL,
    hash     BLOB NOT NULL
);
CREATE TABLE checkpoints (
    seq  INTEGER PRIMARY KEY,
    hash BLOB NOT NULL,
    at   TEXT NOT NULL,
    pub  BLOB NOT NULL,
    sig  BLOB NOT NULL
);

-- +goose Down
DROP TABLE checkpoints;
DROP TABLE ledger;
