// Package testbed owns the definition of a research problem on disk: the
// manifest (testbed.json), the labelled rows (train_label.jsonl,
// train_unlabel.jsonl, test.jsonl) in the public weak-to-strong study's
// formats, the feedback/holdout/sealed splits fixed at import, the weak
// model's soft labels, the per-row predictions of the weak and ceiling
// baselines, and the fixed baselines computed from them.
//
// It keeps two views apart. The private store (under the lab's data
// directory) holds labels and is read only by the lab process and admin
// commands. The public view (WritePublic) is the only thing a researcher ever
// sees: no label, subset or difficulty field, no train_label.jsonl, no sealed
// row, no holdout figure. Nothing in this package may write a label, or a
// figure derived from a label, anywhere else.
//
// The prediction encoding is stated once, here: a prediction is the class
// index into Manifest.Classes. Comparison rows: A=0, B=1. Binary rows:
// false=0, true=1. Classification rows: the position of the class name.
package testbed
