// Package w2s is the weak-to-strong toolkit: pure-Go learners (softmax
// logistic regression and a one-hidden-layer MLP on sparse features), one
// training path for hard labels, soft labels, auxiliary-confidence losses and
// per-row weights, the study's filters, bootstrapping, and the experiment that
// trains a weak teacher, labels the pool and trains a strong student.
//
// It never reads labels it is not handed: callers pass targets explicitly, so
// a researcher's run (public view only) and the lab's baselines share code.
package w2s
