package gameday

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/drillworks/drill/drills/report"
	"github.com/drillworks/drill/drills/verdict"
)

// Files in a history directory.
const (
	// FileHistory is the append-only log of runs and skipped ticks, one JSON object a line.
	FileHistory = "history.jsonl"
	// FileHistoryIndex is the history page: the trend chart and the list of runs.
	FileHistoryIndex = "index.html"
	// FileLock is the lock that keeps two runs from overlapping (flock, across processes).
	FileLock = ".lock"
	// RunsDir holds one directory per run.
	RunsDir = "runs"
)

// Entry statuses.
const (
	// StatusRan: the plan ran (whatever its verdict).
	StatusRan = "ran"
	// StatusSkipped: a run was due but another run held the lock.
	StatusSkipped = "skipped"
)

// Triggers: what started a run.
const (
	TriggerManual   = "manual"
	TriggerSchedule = "schedule"
)

// Entry is one line of the history: a run, or a skipped tick.
type Entry struct {
	// ID is the run's id (its directory name under runs/); empty for a skipped tick.
	ID string `json:"id,omitempty"`
	// Plan is the plan's name; PlanFile the plan file.
	Plan     string `json:"plan"`
	PlanFile string `json:"plan_file,omitempty"`
	// Status is ran or skipped.
	Status string `json:"status"`
	// Trigger is manual or schedule.
	Trigger string `json:"trigger"`
	// Start and End bound the run; a skipped tick has only Start (when it was due).
	Start time.Time `json:"start"`
	End   time.Time `json:"end,omitzero"`
	// Verdict is the game day's verdict: pass, fail, error or aborted (empty when skipped).
	Verdict verdict.Verdict `json:"verdict,omitempty"`
	// Dir is the run's directory, relative to the history directory.
	Dir string `json:"dir,omitempty"`
	// Reason says why a tick was skipped, or why a run errored.
	Reason string `json:"reason,omitempty"`
	// Drills are the run's drills, in plan order.
	Drills []DrillEntry `json:"drills,omitempty"`
}

// DrillEntry is one drill of a run, as the history keeps it.
type DrillEntry struct {
	// Name is the drill's name.
	Name string `json:"name"`
	// Verdict is pass, fail, error, aborted or skipped.
	Verdict verdict.Verdict `json:"verdict"`
	// Key are the headline numbers.
	Key KeyNumbers `json:"key"`
	// Report is the drill's report directory, relative to the history directory.
	Report string `json:"report,omitempty"`
	// FailedChecks names the checks that failed.
	FailedChecks []string `json:"failed_checks,omitempty"`
}

// KeyNumbers are the numbers whose trend the history follows (check.TrendMetrics), by metric
// name; null when not measured. A per-region metric keeps its largest value.
type KeyNumbers map[string]*float64

// History is a history directory: the log of runs, their directories and the history page.
// Its methods are safe for concurrent use in one process; the lock works across processes.
type History struct {
	dir string
	// mu serialises appends and index writes inside this process.
	mu sync.Mutex
}

// OpenHistory opens (creating it if needed) a history directory.
func OpenHistory(dir string) (*History, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("history dir %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, RunsDir), 0o755); err != nil {
		return nil, fmt.Errorf("history dir: %w", err)
	}
	return &History{dir: abs}, nil
}

// Dir is the history directory (absolute).
func (h *History) Dir() string { return h.dir }

// Append adds an entry to the history log, durably (fsync) and atomically with respect to other
// appenders (one write under an flock).
func (h *History) Append(e Entry) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("history entry: %w", err)
	}
	line = append(line, '\n')
	f, err := os.OpenFile(filepath.Join(h.dir, FileHistory), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("history lock: %w", err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	if _, err := f.Write(line); err != nil {
		return fmt.Errorf("history append: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("history sync: %w", err)
	}
	return nil
}

// Entries reads the history log, sorted by start time. A torn last line (a crash mid-append) is
// ignored; any other malformed line is an error.
func (h *History) Entries() ([]Entry, error) {
	data, err := os.ReadFile(filepath.Join(h.dir, FileHistory))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return parseEntries(data)
}

func parseEntries(data []byte) ([]Entry, error) {
	var out []Entry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	line := 0
	torn := len(data) > 0 && data[len(data)-1] != '\n'
	total := bytes.Count(data, []byte("\n"))
	if torn {
		total++
	}
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var e Entry
		if err := json.Unmarshal([]byte(text), &e); err != nil {
			if torn && line == total {
				break // an append cut short by a crash
			}
			return nil, fmt.Errorf("history %s line %d: %w", FileHistory, line, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, nil
}

// BusyError says a run could not start because another one holds the lock.
type BusyError struct {
	// Holder is what the holder wrote into the lock file (its run and process), if readable.
	Holder string
}

func (e *BusyError) Error() string {
	if e.Holder == "" {
		return "another game day is running"
	}
	return "another game day is running (" + e.Holder + ")"
}

// Lock is the held run lock of a history directory.
type Lock struct {
	f *os.File
}

// TryLock takes the run lock without waiting; owner is written into the lock file so a skipped
// run can say who held it. It returns a *BusyError when another run (in this process or
// another) holds the lock.
func (h *History) TryLock(owner string) (*Lock, error) {
	f, err := os.OpenFile(filepath.Join(h.dir, FileLock), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("run lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := io.ReadAll(io.LimitReader(f, 4096))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &BusyError{Holder: strings.TrimSpace(string(holder))}
		}
		return nil, fmt.Errorf("run lock: %w", err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(owner+"\n"), 0)
	return &Lock{f: f}, nil
}

// Release gives the lock back. It is safe to call more than once.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Truncate(0)
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}

// newRunDir creates the directory of a new run, runs/<time>-<plan>[-N], and returns its id.
func (h *History) newRunDir(start time.Time, plan string) (string, error) {
	base := start.Format("20060102-150405") + "-" + plan
	for n := 1; n <= 1000; n++ {
		id := base
		if n > 1 {
			id = fmt.Sprintf("%s-%d", base, n)
		}
		err := os.Mkdir(filepath.Join(h.dir, RunsDir, id), 0o755)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("run dir: %w", err)
		}
	}
	return "", fmt.Errorf("run dir: too many runs named %s", base)
}

// WriteIndex (re)writes the history page from the log.
func (h *History) WriteIndex(rule RegressionRule) error {
	entries, err := h.Entries()
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return writeFileAtomic(filepath.Join(h.dir, FileHistoryIndex), func(w io.Writer) error {
		return WriteHistoryHTML(w, entries, rule)
	})
}

// writeFileAtomic writes a shared page so a reader never sees half a file.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	return report.WriteFileAtomic(path, 0o644, write)
}
