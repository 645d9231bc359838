package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// errPodGone is what watchPod reports when the pod is deleted (or was
// never there).
var errPodGone = errors.New("pod was deleted")

// watchPod watches one pod (an informer: it lists, then watches, and
// re-lists after a dropped watch) until cond says it is done or fails, the
// pod is deleted (errPodGone, with the pod as last seen) or ctx ends. It
// returns the pod as last seen.
func watchPod(ctx context.Context, cs kubernetes.Interface, ns, name string, cond func(*corev1.Pod) (bool, error)) (*corev1.Pod, error) {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return cs.CoreV1().Pods(ns).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return cs.CoreV1().Pods(ns).Watch(ctx, o)
		},
	}
	var last *corev1.Pod
	check := func(p *corev1.Pod) (bool, error) {
		last = p
		return cond(p)
	}
	pre := func(store cache.Store) (bool, error) {
		obj, ok, err := store.GetByKey(ns + "/" + name)
		if err != nil {
			return false, err
		}
		if !ok {
			return false, errPodGone
		}
		return check(obj.(*corev1.Pod))
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{}, pre, func(ev watch.Event) (bool, error) {
		p, ok := ev.Object.(*corev1.Pod)
		if !ok {
			return false, nil
		}
		if ev.Type == watch.Deleted {
			last = p
			return false, errPodGone
		}
		return check(p)
	})
	if err != nil && ctx.Err() != nil && !errors.Is(err, errPodGone) {
		err = ctx.Err()
	}
	return last, err
}

// fatalWaiting are the reasons a waiting container will not start without
// someone changing the pod or the cluster.
var fatalWaiting = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true, "ErrImageNeverPull": true,
	"CreateContainerConfigError": true, "CreateContainerError": true, "RunContainerError": true,
	"CrashLoopBackOff": true, "PreCreateHookError": true, "PreStartHookError": true,
}

// podTrouble says why a pod will not (or no longer) run: a fatal waiting
// reason, a container that ended, the pod failed or unschedulable; "" when
// nothing is wrong yet. Unschedulable counts only with unschedulable.
func podTrouble(p *corev1.Pod, unschedulable bool) string {
	var why []string
	for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && fatalWaiting[w.Reason] {
			why = append(why, fmt.Sprintf("container %s: %s", cs.Name, reasonText(w.Reason, w.Message)))
		}
	}
	if p.Status.Phase == corev1.PodFailed {
		why = append(why, "pod failed: "+reasonText(p.Status.Reason, p.Status.Message))
	}
	if unschedulable {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				why = append(why, "unschedulable: "+c.Message)
			}
		}
	}
	return strings.Join(why, "; ")
}

func reasonText(reason, msg string) string {
	switch {
	case reason == "":
		return msg
	case msg == "":
		return reason
	}
	return reason + " (" + msg + ")"
}

// terminated is how a pod's container ended, or nil.
func terminated(p *corev1.Pod, container string) *corev1.ContainerStateTerminated {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == container {
			if t := cs.State.Terminated; t != nil {
				return t
			}
			return cs.LastTerminationState.Terminated
		}
	}
	return nil
}

// describePod is one line about a pod's state, for errors.
func describePod(p *corev1.Pod) string {
	if p == nil {
		return "never seen"
	}
	parts := []string{"phase " + string(p.Status.Phase)}
	if p.Status.Phase == "" {
		parts[0] = "phase Pending"
	}
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil:
			parts = append(parts, fmt.Sprintf("%s waiting: %s", cs.Name, reasonText(cs.State.Waiting.Reason, cs.State.Waiting.Message)))
		case cs.State.Terminated != nil:
			parts = append(parts, fmt.Sprintf("%s terminated: %s, exit code %d", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.ExitCode))
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			parts = append(parts, "not scheduled: "+reasonText(c.Reason, c.Message))
		}
	}
	return strings.Join(parts, ", ")
}

// waitNoPods lists the pods a label selector matches and watches until
// none is left.
func waitNoPods(ctx context.Context, cs kubernetes.Interface, ns, selector string) error {
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return err
	}
	left := map[string]bool{}
	for _, p := range list.Items {
		left[p.Name] = true
	}
	if len(left) == 0 {
		return nil
	}
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: list.ResourceVersion})
	if err != nil {
		return err
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d pods left: %w", len(left), ctx.Err())
		case ev, ok := <-w.ResultChan():
			if !ok {
				// The watch ended early: look again.
				return waitNoPods(ctx, cs, ns, selector)
			}
			p, isPod := ev.Object.(*corev1.Pod)
			if !isPod {
				continue
			}
			switch ev.Type {
			case watch.Deleted:
				delete(left, p.Name)
			case watch.Added:
				left[p.Name] = true
			}
			if len(left) == 0 {
				return nil
			}
		}
	}
}
