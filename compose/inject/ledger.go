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
// cluster they acted on is gone.

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

// ledger is one ledger file for one run.
type ledger struct {
	path  string
	runID string
}

// append writes one record and fsyncs it (and, when the file is new, its directory).
func (l *ledger) append(r ledgerRecord) error {
	r.At = time.Now().UTC()
	r.RunID = l.runID
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("fault ledger: encode: %w", err)
	}
	_, statErr := os.Stat(l.path)
	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
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

// outstanding replays the ledger: the faults of this run applied and not undone, in apply order.
func (l *ledger) outstanding(log *slog.Logger) ([]fault.Fault, error) {
	raw, err := os.ReadFile(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fault ledger: %w", err)
	}
	var active []fault.Fault
	for i, line := range bytes.Split(raw, []byte{'\n'}) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var r ledgerRecord
		if err := json.Unmarshal(line, &r); err != nil {
			// A record torn by a crash mid-write: its fault was never applied (Apply acts only
			// after the record is on disk), so skipping it is safe.
			log.Warn("fault ledger: skipping an unreadable record", "path", l.path, "line", i+1, "err", err)
			continue
		}
		if r.RunID != l.runID {
			continue
		}
		switch r.Op {
		case opApply:
			if r.Fault == nil {
				return nil, fmt.Errorf("fault ledger %s line %d: apply without a fault", l.path, i+1)
			}
			active = slices.DeleteFunc(active, func(f fault.Fault) bool { return f.ID == r.ID })
			active = append(active, *r.Fault)
		case opUndo:
			active = slices.DeleteFunc(active, func(f fault.Fault) bool { return f.ID == r.ID })
		case opRecovered:
			active = nil
		default:
			return nil, fmt.Errorf("fault ledger %s line %d: unknown op %q", l.path, i+1, r.Op)
		}
	}
	return active, nil
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
