package inject

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/drillworks/drill/compose/fault"
)

// The fault ledger is a write-ahead journal of faults, one JSON object per line, appended and
// fsync'd before a fault is applied and after it is undone:
//
//	{"op":"apply","at":"…","run_id":"default-1a2b3c4d","id":"blackhole:us-east","fault":{…}}
//	{"op":"undo","at":"…","run_id":"default-1a2b3c4d","id":"blackhole:us-east"}
//	{"op":"recovered","at":"…","run_id":"default-1a2b3c4d"}
//
// Outstanding faults are the applies of this plan's run without a later undo or recovered record.
// Records of other runs (an earlier bring-up in the same run directory) are history only: the
// cluster they acted on is gone. A line that cannot be used (torn by a crash, edited by hand, or
// written by a newer drill) is skipped and reported, never fatal: recovery must still undo the
// faults the other lines name.
//
// One process at a time uses a ledger: openLedger takes an exclusive lock (flock on
// <ledger>.lock, holding the owner's pid) that the kernel releases when the process dies, so a
// crashed drill never blocks `drill recover`, and two drills never interleave their records.

// Ledger record operations.
const (
	opApply     = "apply"
	opUndo      = "undo"
	opRecovered = "recovered"
)

// ledgerRecord is one line of the ledger.
type ledgerRecord struct {
	Op    string       `json:"op"`
	At    time.Time    `json:"at"`
	RunID string       `json:"run_id"`
	ID    string       `json:"id,omitempty"`
	Fault *fault.Fault `json:"fault,omitempty"`
}

// ErrLedgerInUse means another process (or another open Injector) holds the ledger.
var ErrLedgerInUse = errors.New("fault ledger is in use")

// ledger is one ledger file for one run.
type ledger struct {
	path  string
	runID string
	lock  *os.File // nil: not locked (tests of the format), or closed
	// closed: released by close; appends are refused (another process may own it now).
	closed bool
}

// openLedger locks the ledger at path for this process.
func openLedger(path, runID string) (*ledger, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("fault ledger: %w", err)
	}
	lockPath := path + ".lock"
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("fault ledger: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(lockPath)
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held by process %s (another drill on this run?)", ErrLedgerInUse, path, bytes.TrimSpace(holder))
		}
		return nil, fmt.Errorf("fault ledger: lock %s: %w", lockPath, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &ledger{path: path, runID: runID, lock: f}, nil
}

// close releases the lock; the ledger takes no more records.
func (l *ledger) close() error {
	if l.lock == nil {
		return nil
	}
	err := l.lock.Close()
	l.lock = nil
	l.closed = true
	return err
}

// append writes one record and fsyncs it (and, when the file is new, its directory).
func (l *ledger) append(r ledgerRecord) error {
	if l.closed {
		return fmt.Errorf("fault ledger %s: closed", l.path)
	}
	r.At = time.Now().UTC()
	r.RunID = l.runID
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("fault ledger: encode: %w", err)
	}
	_, statErr := os.Stat(l.path)
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return fmt.Errorf("fault ledger: %w", err)
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("fault ledger: %w", err)
	}
	line := append(b, '\n')
	if st, err := f.Stat(); err == nil && st.Size() > 0 && !endsWithNewline(l.path, st.Size()) {
		// The last record was torn by a crash: start on a line of our own.
		line = append([]byte{'\n'}, line...)
	}
	_, werr := f.Write(line)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("fault ledger %s: write: %w", l.path, err)
	}
	if errors.Is(statErr, os.ErrNotExist) {
		if d, err := os.Open(filepath.Dir(l.path)); err == nil {
			_ = d.Sync() // make the new file's name durable too
			_ = d.Close()
		}
	}
	return nil
}

// SkippedLine is a ledger line outstanding could not use.
type SkippedLine struct {
	// Line is its 1-based line number.
	Line int
	// Why it was skipped.
	Why string
}

func (s SkippedLine) String() string { return fmt.Sprintf("line %d: %s", s.Line, s.Why) }

// outstanding replays the ledger: the faults of this run applied and not undone, in apply order,
// and the lines it skipped.
func (l *ledger) outstanding(log *slog.Logger) ([]fault.Fault, []SkippedLine, error) {
	raw, err := os.ReadFile(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("fault ledger: %w", err)
	}
	var active []fault.Fault
	var skipped []SkippedLine
	skip := func(line int, why string) {
		skipped = append(skipped, SkippedLine{Line: line, Why: why})
		log.Warn("fault ledger: skipping a record", "path", l.path, "line", line, "why", why)
	}
	for i, line := range bytes.Split(raw, []byte{'\n'}) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var r ledgerRecord
		if err := json.Unmarshal(line, &r); err != nil {
			// A record torn by a crash mid-write: its fault was never applied (Apply acts only
			// after the record is on disk), so skipping it is safe.
			skip(i+1, "unreadable: "+err.Error())
			continue
		}
		if r.RunID != l.runID {
			continue
		}
		switch r.Op {
		case opApply:
			if r.Fault == nil {
				skip(i+1, "apply without a fault")
				continue
			}
			active = slices.DeleteFunc(active, func(f fault.Fault) bool { return f.ID == r.ID })
			active = append(active, *r.Fault)
		case opUndo:
			active = slices.DeleteFunc(active, func(f fault.Fault) bool { return f.ID == r.ID })
		case opRecovered:
			active = nil
		default:
			skip(i+1, fmt.Sprintf("unknown op %q", r.Op))
		}
	}
	return active, skipped, nil
}

// endsWithNewline reports whether the file's last byte (at size-1) is a newline.
func endsWithNewline(path string, size int64) bool {
	f, err := os.Open(path)
	if err != nil {
		return true
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, size-1); err != nil {
		return true
	}
	return b[0] == '\n'
}
