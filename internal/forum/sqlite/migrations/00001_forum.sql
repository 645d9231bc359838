-- +goose Up
-- seq is AUTOINCREMENT so a seq is never reused, even after a delete: a
-- reader's cursor stays valid for the life of the file.
CREATE TABLE forum_findings (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    campaign   TEXT NOT NULL,
    author     TEXT NOT NULL,
    type       TEXT NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    family     TEXT NOT NULL,
    metrics    TEXT,
    config     TEXT,
    worked     INTEGER,
    submission TEXT NOT NULL,
    snapshot   TEXT NOT NULL,
    card       TEXT,
    at         TEXT NOT NULL
);
CREATE INDEX forum_findings_campaign_seq ON forum_findings (campaign, seq);

-- Full-text index over title and body, its content read from forum_findings.
CREATE VIRTUAL TABLE forum_findings_fts USING fts5 (
    title, body,
    content = 'forum_findings', content_rowid = 'seq',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
-- +goose StatementBegin
CREATE TRIGGER forum_findings_fts_insert AFTER INSERT ON forum_findings BEGIN
    INSERT INTO forum_findings_fts (rowid, title, body) VALUES (new.seq, new.title, new.body);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER forum_findings_fts_delete AFTER DELETE ON forum_findings BEGIN
    INSERT INTO forum_findings_fts (forum_findings_fts, rowid, title, body) VALUES ('delete', old.seq, old.title, old.body);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER forum_findings_fts_update AFTER UPDATE OF title, body ON forum_findings BEGIN
    INSERT INTO forum_findings_fts (forum_findings_fts, rowid, title, body) VALUES ('delete', old.seq, old.title, old.body);
    INSERT INTO forum_findings_fts (rowid, title, body) VALUES (new.seq, new.title, new.body);
END;
-- +goose StatementEnd

CREATE TABLE forum_comments (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    id      TEXT NOT NULL UNIQUE,
    finding TEXT NOT NULL REFERENCES forum_findings (id),
    author  TEXT NOT NULL,
    body    TEXT NOT NULL,
    at      TEXT NOT NULL
);
CREATE INDEX forum_comments_finding ON forum_comments (finding, at, seq);

CREATE TABLE forum_votes (
    finding TEXT NOT NULL REFERENCES forum_findings (id),
    voter   TEXT NOT NULL,
    value   INTEGER NOT NULL CHECK (value IN (-1, 1)),
    at      TEXT NOT NULL,
    PRIMARY KEY (finding, voter)
);

-- +goose Down
DROP TABLE forum_votes;
DROP TABLE forum_comments;
DROP TRIGGER forum_findings_fts_update;
DROP TRIGGER forum_findings_fts_delete;
DROP TRIGGER forum_findings_fts_insert;
DROP TABLE forum_findings_fts;
DROP TABLE forum_findings;
