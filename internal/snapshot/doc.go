// Package snapshot owns researchers' workspace snapshots: content-addressed
// archives of a directory tree with parent lineage, the code behind every
// result. It packs a directory into a canonical tar.gz (sorted entries, no
// owners or times, so one tree always packs to the same bytes), validates and
// stores uploaded archives by their tree hash on local disk, extracts them
// safely (no symlinks, devices or paths escaping the root; size and file-count
// limits against archive bombs), and diffs two trees' text files. It never
// reads labels; a snapshot is whatever a researcher's workspace held.
package snapshot
