package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/google/renameio/v2"
)

// epochMemory is the highest epoch this node has accepted from a gossip member, kept in its data
// directory. Gossip refuses a member whose epoch runs more than db.MaxEpochLead ahead of it (a
// forged or corrupt claim); a process that forgot it at every restart would, once the cluster has
// been through more than MaxEpochLead elections, refuse every honest primary and never see its
// region healthy again (found by exploration: a node restarted at epoch 67 refused them all).
type epochMemory struct {
	path string
	log  *slog.Logger

	mu  sync.Mutex
	max uint64
}

const epochFileName = "gossip-epoch.json"

// loadEpochMemory reads the memory from dir (none yet: epoch 0).
func loadEpochMemory(dir string, log *slog.Logger) (*epochMemory, error) {
	m := &epochMemory{path: filepath.Join(dir, epochFileName), log: log}
	b, err := os.ReadFile(m.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return m, nil
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", m.path, err)
	}
	var st struct {
		MaxEpoch uint64 `json:"max_epoch"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("read %s: %w", m.path, err)
	}
	m.max = st.MaxEpoch
	return m, nil
}

// highest is the highest epoch accepted.
func (m *epochMemory) highest() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.max
}

// accept raises the highest epoch accepted and persists it (durably: written, fsynced, renamed);
// if that fails the process still holds it, and the failure is logged.
func (m *epochMemory) accept(epoch uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if epoch <= m.max {
		return
	}
	m.max = epoch
	b, _ := json.Marshal(map[string]uint64{"max_epoch": epoch})
	if err := renameio.WriteFile(m.path, b, 0o600); err != nil {
		m.log.Warn("gossip: the highest epoch accepted is not persisted", "epoch", epoch, "err", err)
	}
}
