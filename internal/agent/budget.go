package agent

import (
	"fmt"
	"sync"
	"time"

	"github.com/aar-lab/aar/internal/llm"
)

// Budget is what a researcher may spend; a zero field is unlimited.
type Budget struct {
	USD        float64       `json:"usd,omitempty"`
	Tokens     int64         `json:"tokens,omitempty"`
	Wall       time.Duration `json:"wall,omitempty"`
	ToolCalls  int           `json:"tool_calls,omitempty"`
	ModelCalls int           `json:"model_calls,omitempty"`
	// CPU bounds the sandbox CPU time the researcher's commands use.
	CPU time.Duration `json:"cpu,omitempty"`
}

// Meter counts what a researcher spends and says, before each call,
// whether the next one could exceed the budget.
type Meter struct {
	mu         sync.Mutex
	budget     Budget
	start      time.Time
	now        func() time.Time
	usage      llm.Usage
	usd        float64
	cpu        time.Duration
	modelCalls int
	toolCalls  int
}

// NewMeter starts a meter now.
func NewMeter(b Budget, now func() time.Time) *Meter {
	if now == nil {
		now = time.Now
	}
	return &Meter{budget: b, start: now(), now: now}
}

// Carry adds what an earlier run of the same researcher spent (a worker
// resumed after a crash continues its budget rather than starting anew).
func (m *Meter) Carry(u llm.Usage, usd float64, cpu time.Duration, modelCalls, toolCalls int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.usage = m.usage.Add(u)
	m.usd += usd
	m.cpu += cpu
	m.modelCalls += modelCalls
	m.toolCalls += toolCalls
}

// AddCall records one model call.
func (m *Meter) AddCall(u llm.Usage, usd float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.usage = m.usage.Add(u)
	m.usd += usd
	m.modelCalls++
}

// AddTool records one tool call.
func (m *Meter) AddTool() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.toolCalls++
}

// AddCPU records sandbox CPU time.
func (m *Meter) AddCPU(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cpu += d
}

// Status is the meter's reading.
type Status struct {
	Spent      Spent  `json:"spent"`
	Budget     Budget `json:"budget"`
	Left       Left   `json:"left"`
	BudgetNote string `json:"note,omitempty"`
}

// Spent is what has been used.
type Spent struct {
	USD        float64   `json:"usd"`
	Usage      llm.Usage `json:"tokens"`
	Elapsed    string    `json:"elapsed"`
	CPUSeconds float64   `json:"sandbox_cpu_seconds"`
	ModelCalls int       `json:"model_calls"`
	ToolCalls  int       `json:"tool_calls"`
}

// Left is what remains of each bounded budget (absent when unbounded).
type Left struct {
	USD        *float64 `json:"usd,omitempty"`
	Tokens     *int64   `json:"tokens,omitempty"`
	Wall       string   `json:"wall,omitempty"`
	CPUSeconds *float64 `json:"sandbox_cpu_seconds,omitempty"`
	ToolCalls  *int     `json:"tool_calls,omitempty"`
	ModelCalls *int     `json:"model_calls,omitempty"`
}

// Status reads the meter.
func (m *Meter) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	el := m.now().Sub(m.start)
	st := Status{Budget: m.budget, Spent: Spent{USD: m.usd, Usage: m.usage, Elapsed: el.Round(time.Second).String(),
		CPUSeconds: m.cpu.Seconds(), ModelCalls: m.modelCalls, ToolCalls: m.toolCalls}}
	b := m.budget
	if b.USD > 0 {
		v := b.USD - m.usd
		st.Left.USD = &v
	}
	if b.Tokens > 0 {
		v := b.Tokens - m.usage.Total()
		st.Left.Tokens = &v
	}
	if b.Wall > 0 {
		st.Left.Wall = (b.Wall - el).Round(time.Second).String()
	}
	if b.CPU > 0 {
		v := (b.CPU - m.cpu).Seconds()
		st.Left.CPUSeconds = &v
	}
	if b.ToolCalls > 0 {
		v := b.ToolCalls - m.toolCalls
		st.Left.ToolCalls = &v
	}
	if b.ModelCalls > 0 {
		v := b.ModelCalls - m.modelCalls
		st.Left.ModelCalls = &v
	}
	return st
}

// Elapsed is the wall-clock time since the meter started.
func (m *Meter) Elapsed() time.Duration { return m.now().Sub(m.start) }

// Remaining is the wall-clock time left (a day when unbounded).
func (m *Meter) Remaining() time.Duration {
	if m.budget.Wall <= 0 {
		return 24 * time.Hour
	}
	return m.budget.Wall - m.Elapsed()
}

// The stop conditions: each returns why the researcher must stop, or "".

// outOfTime stops at the wall-clock budget.
func outOfTime(m *Meter) string {
	if m.budget.Wall > 0 && m.Elapsed() >= m.budget.Wall {
		return fmt.Sprintf("time budget of %s used", m.budget.Wall)
	}
	return ""
}

// outOfCPU stops at the sandbox CPU budget.
func outOfCPU(m *Meter) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.budget.CPU > 0 && m.cpu >= m.budget.CPU {
		return fmt.Sprintf("sandbox CPU budget of %s used (%s)", m.budget.CPU, m.cpu.Round(time.Second))
	}
	return ""
}

// outOfToolCalls stops when no tool call is left.
func outOfToolCalls(m *Meter) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.budget.ToolCalls > 0 && m.toolCalls >= m.budget.ToolCalls {
		return fmt.Sprintf("tool-call budget of %d used", m.budget.ToolCalls)
	}
	return ""
}

// nextCallWouldOverrun stops before a model call whose worst case
// (estimated prompt tokens at the dearest input rate, plus the full output
// allowance) could take spending past the dollar or token budget, or when
// no model call is left. So a researcher never overruns its budget by more
// than the estimate's error.
func nextCallWouldOverrun(m *Meter, price llm.Price, promptTokens, maxOutput int64) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.budget.ModelCalls > 0 && m.modelCalls >= m.budget.ModelCalls {
		return fmt.Sprintf("model-call budget of %d used", m.budget.ModelCalls)
	}
	if m.budget.Tokens > 0 && m.usage.Total()+promptTokens+maxOutput > m.budget.Tokens {
		return fmt.Sprintf("token budget: %d used of %d, and the next call may take up to %d", m.usage.Total(), m.budget.Tokens, promptTokens+maxOutput)
	}
	if m.budget.USD > 0 {
		in := max(price.Input, price.CacheWrite)
		worst := (float64(promptTokens)*in + float64(maxOutput)*price.Output) / 1e6
		if m.usd+worst > m.budget.USD {
			return fmt.Sprintf("dollar budget: $%.4f spent of $%.2f, and the next call may cost up to $%.4f", m.usd, m.budget.USD, worst)
		}
	}
	return ""
}
