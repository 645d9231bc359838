package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/aar-lab/aar/internal/w2s"
)

func newW2STrainCmd(g *globals) *cobra.Command {
	var (
		run         w2s.StudentRun
		targets     string
		weights     string
		out         string
		c           w2s.Config
		standardize string
	)
	cmd := &cobra.Command{
		Use:   "train --out PREDICTIONS [--seed 42] [--method M | --targets FILE [--weights FILE] [--loss L]] [options]",
		Short: "Train the strong student on the view's pool and write test predictions (the submission format)",
		Long: `Train fits the strong student (the testbed's representation and training
settings, overridable by flags) on the public pool and writes one
{"id", "label"} line per public test row: a predictions file for one seed.

Targets are the weak soft labels of --seed unless --targets FILE gives your
own (JSONL {"id", "probs": [...]} or {"id", "label": k}; pool rows without
a target are not trained on). --weights FILE gives per-row weights (JSONL
{"id", "weight"}). --loss picks xent (default), logconf or product.
--method runs a built-in method instead (vanilla_w2s, logconf, …).
--smoke trains on 32 pool rows and predicts 32 test rows, to check a
pipeline cheaply (its output is not a full submission).`,
		Example: `  aar w2s train --seed 42 --out preds/42.jsonl
  aar w2s train --seed 43 --targets my_targets.jsonl --weights my_weights.jsonl --loss logconf --out preds/43.jsonl
  aar w2s train --method confident_balanced --seed 44 --smoke --out /tmp/smoke.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usagef("--out is required: where to write the predictions")
			}
			v, err := w2s.OpenView(viewFlag(cmd))
			if err != nil {
				return err
			}
			cfg := v.Training.Strong
			fl := cmd.Flags()
			set := func(name string, apply func()) {
				if fl.Changed(name) {
					apply()
				}
			}
			set("model", func() { cfg.Model = c.Model })
			set("hidden", func() { cfg.Hidden = c.Hidden })
			set("solver", func() { cfg.Solver = c.Solver })
			set("epochs", func() { cfg.Epochs = c.Epochs })
			set("batch-size", func() { cfg.BatchSize = c.BatchSize })
			set("lr", func() { cfg.LR = c.LR })
			set("weight-decay", func() { cfg.WeightDecay = c.WeightDecay })
			set("c", func() { cfg.C = c.C })
			set("schedule", func() { cfg.Schedule = c.Schedule })
			set("warmup", func() { cfg.Warmup = c.Warmup })
			set("threads", func() { cfg.Threads = c.Threads })
			if fl.Changed("standardize") {
				switch standardize {
				case "true", "on", "yes":
					cfg.Standardize = true
				case "false", "off", "no":
					cfg.Standardize = false
				default:
					return usagef("--standardize %q: use true or false", standardize)
				}
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			run.Config = cfg
			k := len(v.Manifest.Classes)
			if targets != "" {
				if run.Targets, err = w2s.ReadTargets(targets, k); err != nil {
					return err
				}
			}
			if weights != "" {
				if run.Weights, err = w2s.ReadWeights(weights); err != nil {
					return err
				}
			}
			run.Log = func(l w2s.EpochLog) {
				fmt.Fprintf(g.stderr, "epoch %d: loss %.4f\n", l.Epoch, l.Loss)
			}
			start := time.Now()
			res, err := v.Train(cmd.Context(), run)
			if err != nil {
				return err
			}
			w, done, err := outputFile(g, out)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(w)
			labels := w2s.Argmax(res.Probs)
			for i, r := range res.Test {
				if err := enc.Encode(map[string]any{"id": r.ID, "label": labels[i]}); err != nil {
					done()
					return err
				}
			}
			if err := done(); err != nil {
				return err
			}
			note := ""
			if run.Smoke {
				note = " (smoke run: not a full submission)"
			}
			fmt.Fprintf(g.stderr, "trained on %d pool rows in %s; wrote %d predictions to %s%s\n",
				res.Rows, time.Since(start).Round(time.Millisecond), len(res.Test), out, note)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "predictions file to write (required)")
	f.StringVar(&run.Seed, "seed", "42", "weak seed (soft labels) and training seed")
	f.StringVar(&run.Method, "method", "", "a built-in method instead of plain training")
	f.StringVar(&targets, "targets", "", "JSONL targets by pool id, replacing the weak labels")
	f.StringVar(&weights, "weights", "", "JSONL weights by pool id")
	f.StringVar(&run.Loss, "loss", "", "xent, logconf or product")
	f.BoolVar(&run.Smoke, "smoke", false, "train on 32 pool rows and predict 32 test rows")
	f.StringVar(&c.Model, "model", "", "linear or mlp")
	f.IntVar(&c.Hidden, "hidden", 0, "hidden units (mlp)")
	f.StringVar(&c.Solver, "solver", "", "adam, lbfgs or newton (two classes)")
	f.IntVar(&c.Epochs, "epochs", 0, "epochs (adam)")
	f.IntVar(&c.BatchSize, "batch-size", 0, "batch size (adam)")
	f.Float64Var(&c.LR, "lr", 0, "learning rate (adam)")
	f.Float64Var(&c.WeightDecay, "weight-decay", 0, "L2 penalty on the weights")
	f.Float64Var(&c.C, "c", 0, "inverse L2 strength (lbfgs, as sklearn)")
	f.StringVar(&c.Schedule, "schedule", "", "constant, linear or cosine")
	f.Float64Var(&c.Warmup, "warmup", 0, "share of steps warming the learning rate up")
	f.StringVar(&standardize, "standardize", "", "true or false: standardize input columns")
	f.IntVar(&c.Threads, "threads", 0, "threads for full-batch gradients")
	return cmd
}
