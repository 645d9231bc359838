package w2s

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Config trains one model. The zero value of a field takes the default in
// DefaultConfig; Validate names the field that is wrong.
type Config struct {
	// Model is "linear" (softmax logistic regression) or "mlp" (one hidden
	// layer, ReLU).
	Model  string `json:"model,omitempty"`
	Hidden int    `json:"hidden,omitempty"`
	// Solver is "adam" (mini-batch, Epochs passes), "lbfgs" (full batch,
	// run to convergence; linear models only, as sklearn's
	// LogisticRegression(C=...)) or "newton" (trust-region Newton-CG as in
	// LIBLINEAR, same objective; binary linear models).
	Solver    string  `json:"solver,omitempty"`
	Epochs    int     `json:"epochs,omitempty"`
	BatchSize int     `json:"batch_size,omitempty"`
	LR        float64 `json:"lr,omitempty"`
	// WeightDecay is an L2 penalty on the weights (not the biases) added to
	// the mean loss: loss + WeightDecay/2·‖W‖². For lbfgs, C sets it
	// instead, as sklearn does: WeightDecay = 1/(C·n).
	WeightDecay float64 `json:"weight_decay,omitempty"`
	C           float64 `json:"c,omitempty"`
	MaxIter     int     `json:"max_iter,omitempty"`
	Tol         float64 `json:"tol,omitempty"`
	// Schedule of the Adam learning rate: "constant", "linear" (decay to 0)
	// or "cosine"; Warmup is the share of steps with a linear warm-up.
	Schedule string  `json:"schedule,omitempty"`
	Warmup   float64 `json:"warmup,omitempty"`
	// Standardize scales every input column to zero mean and unit variance
	// over the training rows (folded into the first layer, so sparse inputs
	// stay sparse).
	Standardize bool `json:"standardize,omitempty"`
	// Threads for the gradient (0 = 1).
	Threads int `json:"threads,omitempty"`
}

// DefaultConfig is a linear model trained with Adam.
func DefaultConfig() Config {
	return Config{Model: "linear", Hidden: 128, Solver: "adam", Epochs: 3, BatchSize: 32, LR: 1e-2,
		MaxIter: 500, Tol: 1e-6, Schedule: "constant", Threads: 1}
}

// Overlay returns o with its zero fields taken from c.
func (c Config) Overlay(o Config) Config {
	if o.Model == "" {
		o.Model = c.Model
	}
	if o.Hidden == 0 {
		o.Hidden = c.Hidden
	}
	if o.Solver == "" {
		o.Solver = c.Solver
	}
	if o.Epochs == 0 {
		o.Epochs = c.Epochs
	}
	if o.BatchSize == 0 {
		o.BatchSize = c.BatchSize
	}
	if o.LR == 0 {
		o.LR = c.LR
	}
	if o.WeightDecay == 0 {
		o.WeightDecay = c.WeightDecay
	}
	if o.C == 0 {
		o.C = c.C
	}
	if o.MaxIter == 0 {
		o.MaxIter = c.MaxIter
	}
	if o.Tol == 0 {
		o.Tol = c.Tol
	}
	if o.Schedule == "" {
		o.Schedule = c.Schedule
	}
	if o.Warmup == 0 {
		o.Warmup = c.Warmup
	}
	if o.Threads == 0 {
		o.Threads = c.Threads
	}
	o.Standardize = o.Standardize || c.Standardize
	return o
}

// Validate checks the config, naming the wrong field and the fix.
func (c Config) Validate() error {
	switch {
	case !slices.Contains([]string{"linear", "mlp"}, c.Model):
		return fmt.Errorf("model %q: use linear or mlp", c.Model)
	case c.Model == "mlp" && c.Hidden <= 0:
		return fmt.Errorf("hidden %d: give a positive hidden size", c.Hidden)
	case !slices.Contains([]string{"adam", "lbfgs", "newton"}, c.Solver):
		return fmt.Errorf("solver %q: use adam, lbfgs or newton", c.Solver)
	case c.Solver != "adam" && c.Model != "linear":
		return fmt.Errorf("solver %s trains linear models only: use solver adam for an mlp", c.Solver)
	case c.Solver == "adam" && c.Epochs <= 0:
		return fmt.Errorf("epochs %d: give at least 1", c.Epochs)
	case c.BatchSize <= 0:
		return fmt.Errorf("batch_size %d: give a positive batch size", c.BatchSize)
	case c.LR <= 0:
		return fmt.Errorf("lr %v: give a positive learning rate", c.LR)
	case c.WeightDecay < 0 || c.C < 0:
		return fmt.Errorf("weight_decay and c must not be negative")
	case !slices.Contains([]string{"constant", "linear", "cosine"}, c.Schedule):
		return fmt.Errorf("schedule %q: use constant, linear or cosine", c.Schedule)
	case c.Warmup < 0 || c.Warmup >= 1:
		return fmt.Errorf("warmup %v: give a share of the steps in [0, 1)", c.Warmup)
	case c.Threads < 0:
		return fmt.Errorf("threads %d: give 0 or more", c.Threads)
	}
	return nil
}

// Training is the "training" member of a built-in testbed's testbed.json:
// how its weak model and its strong student (and ceiling) are trained.
type Training struct {
	Weak   Config `json:"weak"`
	Strong Config `json:"strong"`
}

// ParseTraining decodes testbed.json's "training" member over the defaults.
func ParseTraining(raw json.RawMessage) (*Training, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("the testbed has no training settings: it is not a built-in testbed, or its testbed.json lacks \"training\"")
	}
	var t Training
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("testbed.json training: %w", err)
	}
	d := DefaultConfig()
	t.Weak, t.Strong = d.Overlay(t.Weak), d.Overlay(t.Strong)
	if err := t.Weak.Validate(); err != nil {
		return nil, fmt.Errorf("testbed.json training.weak: %w", err)
	}
	if err := t.Strong.Validate(); err != nil {
		return nil, fmt.Errorf("testbed.json training.strong: %w", err)
	}
	return &t, nil
}
