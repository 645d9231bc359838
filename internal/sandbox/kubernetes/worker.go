package kubernetes

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aar-lab/aar/internal/launch"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// podWorker is one worker pod (launch.Worker). Two goroutines, owned by
// the Launcher (Cleanup ends them): one watches the pod until it ends or
// goes, one copies its log to the Launch's writer.
type podWorker struct {
	l          *Launcher
	ns, name   string
	researcher string
	log        *lockedWriter

	started   chan struct{} // closed once the pod runs (or ended): logs can flow
	done      chan struct{} // closed once the result is set
	logsDone  chan struct{} // closed when the log copier returns
	logCancel context.CancelFunc

	mu      sync.Mutex
	summary []byte // guarded by mu; set before done closes
	err     error  // guarded by mu
}

var _ launch.Worker = (*podWorker)(nil)

// logDrain bounds how long Wait waits for the last log lines once the pod
// ended.
const logDrain = 10 * time.Second

func newPodWorker(l *Launcher, name, researcher string, log io.Writer) *podWorker {
	w := &podWorker{l: l, ns: l.cfg.Namespace, name: name, researcher: researcher, log: &lockedWriter{w: log},
		started: make(chan struct{}), done: make(chan struct{}), logsDone: make(chan struct{})}
	lctx, cancel := context.WithCancel(l.ctx)
	w.logCancel = cancel
	l.wg.Add(2)
	go func() {
		defer l.wg.Done()
		w.watch(l.ctx)
	}()
	go func() {
		defer l.wg.Done()
		defer close(w.logsDone)
		w.copyLogs(lctx)
	}()
	return w
}

// Describe implements launch.Worker.
func (w *podWorker) Describe() map[string]any {
	return map[string]any{"namespace": w.ns, "pod": w.name}
}

// Wait implements launch.Worker: the pod's termination message (the
// worker's JSON summary) and nil when it succeeded; an error naming the
// reason and exit code when it failed, could not start (an image it
// cannot pull) or was deleted first.
func (w *podWorker) Wait() ([]byte, error) {
	<-w.done
	select {
	case <-w.logsDone:
	case <-time.After(logDrain):
		w.logCancel()
		<-w.logsDone
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.summary, w.err
}

func (w *podWorker) ended() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// Stop implements launch.Worker: it deletes the pod with
// Config.WorkerGracePeriod (the kubelet sends SIGTERM, then SIGKILL).
func (w *podWorker) Stop() { w.delete(int64(w.l.cfg.WorkerGracePeriod / time.Second)) }

// Kill implements launch.Worker: it deletes the pod at once.
func (w *podWorker) Kill() { w.delete(0) }

func (w *podWorker) delete(grace int64) {
	if w.ended() {
		return
	}
	ctx, cancel := context.WithTimeout(w.l.ctx, 30*time.Second)
	defer cancel()
	err := w.l.client.CoreV1().Pods(w.ns).Delete(ctx, w.name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(grace)})
	if err != nil && !apierrors.IsNotFound(err) {
		w.l.cfg.Logger.Warn("delete a worker pod", "pod", w.name, "err", err)
	}
}

func (w *podWorker) finish(summary []byte, err error) {
	w.mu.Lock()
	w.summary, w.err = summary, err
	w.mu.Unlock()
	close(w.done)
}

// watch follows the pod until it ends, cannot start, or goes.
func (w *podWorker) watch(ctx context.Context) {
	var once sync.Once
	start := func() { once.Do(func() { close(w.started) }) }
	defer start()
	noted := false
	var fatal error
	last, err := watchPod(ctx, w.l.client, w.ns, w.name, func(p *corev1.Pod) (bool, error) {
		switch p.Status.Phase {
		case corev1.PodSucceeded, corev1.PodFailed:
			start()
			return true, nil
		case corev1.PodRunning:
			start()
		}
		if why := podTrouble(p, false); why != "" {
			fatal = fmt.Errorf("worker pod %s/%s will not run: %s", w.ns, w.name, why)
			return true, nil
		}
		if why := podTrouble(p, true); why != "" && !noted {
			noted = true
			fmt.Fprintf(w.log, "aar: worker pod %s/%s is pending: %s\n", w.ns, w.name, why)
		}
		return false, nil
	})
	switch {
	case fatal != nil:
		w.delete(0)
		w.finish(nil, fatal)
	case err == nil:
		w.finish(podResult(last))
	case errors.Is(err, errPodGone):
		if last != nil && terminated(last, ContainerWorker) != nil {
			w.finish(podResult(last))
			return
		}
		w.finish(nil, fmt.Errorf("worker pod %s/%s was deleted before it finished", w.ns, w.name))
	default:
		w.finish(nil, fmt.Errorf("worker pod %s/%s: stopped watching: %w", w.ns, w.name, err))
	}
}

// podResult is what Wait returns for an ended pod: the worker container's
// termination message, and an error unless it succeeded.
func podResult(p *corev1.Pod) ([]byte, error) {
	t := terminated(p, ContainerWorker)
	var summary []byte
	if t != nil && t.Message != "" {
		summary = []byte(t.Message)
	}
	switch {
	case p.Status.Phase == corev1.PodSucceeded:
		return summary, nil
	case t != nil && t.ExitCode == 0 && p.Status.Phase != corev1.PodFailed:
		return summary, nil // deleted after it exited 0
	case t != nil:
		why := reasonText(t.Reason, "")
		if p.Status.Reason != "" {
			why = reasonText(p.Status.Reason, p.Status.Message) + "; container " + why
		}
		return summary, fmt.Errorf("worker pod %s/%s failed: %s, exit code %d", p.Namespace, p.Name, why, t.ExitCode)
	}
	return summary, fmt.Errorf("worker pod %s/%s failed: %s", p.Namespace, p.Name, reasonText(p.Status.Reason, p.Status.Message))
}

// copyLogs copies the worker's log lines to its writer once the pod runs:
// a followed stream, resumed after a break from the last line's timestamp
// (lines at or before it are not repeated), until the pod has ended and
// the stream has been read to its end.
func (w *podWorker) copyLogs(ctx context.Context) {
	select {
	case <-w.started:
	case <-ctx.Done():
		return
	}
	var last time.Time
	backoff := time.Second
	afterEnd := 0
	for ctx.Err() == nil {
		ended := w.ended()
		opts := &corev1.PodLogOptions{Container: ContainerWorker, Follow: true, Timestamps: true}
		if !last.IsZero() {
			opts.SinceTime = ptr.To(metav1.NewTime(last))
		}
		began := time.Now()
		rc, err := w.l.client.CoreV1().Pods(w.ns).GetLogs(w.name, opts).Stream(ctx)
		if err == nil {
			err = copyLines(rc, w.log, &last)
			rc.Close()
		}
		if ended || w.ended() {
			// The container is done: one full read is all there is.
			if err == nil || afterEnd > 0 {
				return
			}
			afterEnd++
		}
		if err != nil {
			w.l.cfg.Logger.Debug("worker log stream", "pod", w.name, "err", err)
		}
		if time.Since(began) > 30*time.Second {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		case <-w.done:
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// copyLines copies "TIMESTAMP line" log lines to out without their
// timestamps, skipping lines at or before *last and moving *last on.
func copyLines(r io.Reader, out io.Writer, last *time.Time) error {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if ts, rest, ok := bytes.Cut(line, []byte(" ")); ok {
				if t, perr := time.Parse(time.RFC3339Nano, string(ts)); perr == nil {
					if !last.IsZero() && !t.After(*last) {
						line = nil
					} else {
						*last = t
						line = rest
					}
				}
			}
			if len(line) > 0 {
				if _, werr := out.Write(line); werr != nil {
					return werr
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// lockedWriter lets the log copier and the watcher's notes share a
// writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer // guarded by mu
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
