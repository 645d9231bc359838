-- +goose Up
CREATE TABLE forum_findings (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    campaign   TEXT NOT NULL,
    author     TEXT NOT NULL,
    type       TEXT NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    family     TEXT NOT NULL,
    metrics    TEXT,
    config     TEXT,
    worked     BOOLEAN,
    submission TEXT NOT NULL,
    snapshot   TEXT NOT NULL,
    card       TEXT,
    at         TIMESTAMPTZ NOT NULL,
    -- Title words weigh more than body words in ts_rank.
    search     TSVECTOR GENERATED ALWAYS AS (
                   setweight(to_tsvector('english', title), 'A') ||
                   setweight(to_tsvector('english', body), 'B')
               ) STORED
);
CREATE INDEX forum_findings_campaign_seq ON forum_findings (campaign, seq);
CREATE INDEX forum_findings_search ON forum_findings USING GIN (search);

CREATE TABLE forum_comments (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id      TEXT NOT NULL UNIQUE,
    finding TEXT NOT NULL REFERENCES forum_findings (id),
    author  TEXT NOT NULL,
    body    TEXT NOT NULL,
    at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX forum_comments_finding ON forum_comments (finding, at, seq);

CREATE TABLE forum_votes (
    finding TEXT NOT NULL REFERENCES forum_findings (id),
    voter   TEXT NOT NULL,
    value   SMALLINT NOT NULL CHECK (value IN (-1, 1)),
    at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (finding, voter)
);

-- +goose Down
DROP TABLE forum_votes;
DROP TABLE forum_comments;
DROP TABLE forum_findings;
