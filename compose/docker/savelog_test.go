package docker

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// logEngine lists a fixed set of containers until they are removed and answers every log
// request with the container's id.
type logEngine struct {
	Engine
	mu         sync.Mutex
	containers []Container
}

func (e *logEngine) ContainerList(context.Context, map[string]string) ([]Container, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Container(nil), e.containers...), nil
}

func (e *logEngine) ContainerLogs(_ context.Context, id string, stdout, _ io.Writer) error {
	_, err := io.WriteString(stdout, "log of "+id+"\n")
	return err
}

func (e *logEngine) ContainerRemove(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, c := range e.containers {
		if c.ID == id {
			e.containers = append(e.containers[:i], e.containers[i+1:]...)
			break
		}
	}
	return nil
}

func (e *logEngine) NetworkList(context.Context, map[string]string) ([]Network, error) {
	return nil, nil
}

func (e *logEngine) VolumeList(context.Context, map[string]string) ([]string, error) {
	return nil, nil
}

// A container whose node label is a path (another user's container, or a forged label) must
// never turn into a log file outside the run's logs directory; a plain node name does.
func TestSavedLogsStayInTheLogsDirectory(t *testing.T) {
	base := t.TempDir()
	runDir := filepath.Join(base, "run")
	eng := &logEngine{containers: []Container{
		{ID: "good", Name: "n1", Labels: map[string]string{LabelNode: "us-east-web-1"}},
		{ID: "evil", Name: "n2", Labels: map[string]string{LabelNode: "../../escaped"}},
		{ID: "abs", Name: "n3", Labels: map[string]string{LabelNode: filepath.Join(base, "absolute")}},
		{ID: "upper", Name: "n4", Labels: map[string]string{LabelNode: "Up/Down"}},
	}}
	r, err := New(Config{RunDir: runDir, Binary: "/bin/sh", Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.removeAll(context.Background(), []string{""}, map[string]string{LabelTopology: "t"}, true); err != nil {
		t.Fatal(err)
	}
	var files []string
	_ = filepath.Walk(base, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(base, p)
			files = append(files, rel)
		}
		return nil
	})
	if len(files) != 1 || files[0] != filepath.Join("run", "logs", "us-east-web-1.log") {
		t.Fatalf("files written: %v; want only run/logs/us-east-web-1.log", files)
	}
	if fi, _ := os.Stat(filepath.Join(runDir, "logs", "us-east-web-1.log")); fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v, want 0600", fi.Mode().Perm())
	}
}

// filteringEngine lists the containers whose labels include every selector pair, as the engine
// does.
type filteringEngine struct{ logEngine }

func (e *filteringEngine) ContainerList(_ context.Context, sel map[string]string) ([]Container, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Container
	for _, c := range e.containers {
		match := true
		for k, v := range sel {
			match = match && c.Labels[k] == v
		}
		if match {
			out = append(out, c)
		}
	}
	return out, nil
}

// Objects an older drill labelled with the legacy keys are found and removed (their logs saved
// by their node name) for this owner; another owner's, in either keys, are left alone.
func TestLegacyLabelledObjectsRemoved(t *testing.T) {
	runDir := t.TempDir()
	own, other := ownLabels("t"), ownLabels("t")
	other[LabelOwner] = "uid-4242@elsewhere"
	withNode := func(l map[string]string, node string) map[string]string {
		out := map[string]string{LabelNode: node}
		for k, v := range l {
			out[k] = v
		}
		return out
	}
	eng := &filteringEngine{logEngine{containers: []Container{
		{ID: "new", Name: "a", Labels: withNode(own, "us-east-web-1")},
		{ID: "old", Name: "b", Labels: legacy(withNode(own, "us-east-db-1"))},
		{ID: "others-new", Name: "c", Labels: withNode(other, "us-east-web-1")},
		{ID: "others-old", Name: "d", Labels: legacy(withNode(other, "us-east-db-1"))},
	}}}
	r, err := New(Config{RunDir: runDir, Binary: "/bin/sh", Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.removeAll(context.Background(), []string{""}, ownLabels("t"), true); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, c := range eng.containers {
		left = append(left, c.ID)
	}
	if strings.Join(left, " ") != "others-new others-old" {
		t.Errorf("left %v, want only the other owner's containers", left)
	}
	for _, node := range []string{"us-east-web-1", "us-east-db-1"} {
		if _, err := os.Stat(filepath.Join(runDir, "logs", node+".log")); err != nil {
			t.Errorf("log of %s not saved: %v", node, err)
		}
	}
	if !strings.HasPrefix(LabelTopology, "io.github.drillworks.drill.") {
		t.Errorf("label key %s is not reverse-DNS", LabelTopology)
	}
}
