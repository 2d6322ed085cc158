package db

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/drillworks/drill/agents/disk"
)

func walEntries(from, count int, epoch uint64) []Entry {
	var es []Entry
	for i := range count {
		lsn := uint64(from + i)
		es = append(es, Entry{LSN: lsn, Epoch: epoch, Key: fmt.Sprintf("k%d", lsn), Value: fmt.Sprintf("v%d", lsn), TsUnixNano: int64(lsn)})
	}
	return es
}

func TestWALReplayAndTornTail(t *testing.T) {
	dir := t.TempDir()
	logger := testLogger(t)
	fsyncs := 0
	w, got, err := openWAL(dir, logger, func() { fsyncs++ }, nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("open fresh wal: %v, %d entries", err, len(got))
	}
	want := append(walEntries(1, 3, 1), walEntries(4, 2, 2)...)
	if err := w.append(want[:3]); err != nil {
		t.Fatal(err)
	}
	if err := w.append(want[3:]); err != nil {
		t.Fatal(err)
	}
	if fsyncs != 2 {
		t.Fatalf("fsyncs = %d, want one per batch (2)", fsyncs)
	}
	w.close()
	path := filepath.Join(dir, walFileName)
	info, _ := os.Stat(path)
	validSize := info.Size()

	w, got, err = openWAL(dir, logger, func() {}, nil)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("replay: err %v\n got %+v\nwant %+v", err, got, want)
	}
	w.close()

	// A torn tail: half of the next record made it to disk.
	next := appendWALRecord(nil, Entry{LSN: 6, Epoch: 2, Key: "torn", Value: "half"})
	appendFile(t, path, next[:len(next)/2])
	w, got, err = openWAL(dir, logger, func() {}, nil)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("replay with torn tail: err %v, %d entries", err, len(got))
	}
	w.close()
	if info, _ := os.Stat(path); info.Size() != validSize {
		t.Fatalf("torn tail not truncated: size %d, want %d", info.Size(), validSize)
	}

	// A complete last record whose payload is corrupt (CRC mismatch) is dropped too.
	bad := appendWALRecord(nil, Entry{LSN: 6, Epoch: 2, Key: "bad", Value: "crc"})
	bad[len(bad)-1] ^= 0xff
	appendFile(t, path, bad)
	w, got, err = openWAL(dir, logger, func() {}, nil)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("replay with corrupt tail: err %v, %d entries", err, len(got))
	}
	// Appending after recovery continues the log cleanly.
	more := walEntries(6, 2, 2)
	if err := w.append(more); err != nil {
		t.Fatal(err)
	}
	// Rewrite (truncation) keeps exactly the prefix, atomically.
	if err := w.rewrite(want[:2]); err != nil {
		t.Fatal(err)
	}
	if err := w.append(walEntries(3, 1, 3)); err != nil {
		t.Fatal(err)
	}
	w.close()
	_, got, err = openWAL(dir, logger, func() {}, nil)
	wantAfter := append(append([]Entry(nil), want[:2]...), walEntries(3, 1, 3)...)
	if err != nil || !reflect.DeepEqual(got, wantAfter) {
		t.Fatalf("after rewrite: err %v\n got %+v\nwant %+v", err, got, wantAfter)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("rewrite left its temporary file: %v", err)
	}
}

func appendFile(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
}

// Acknowledged writes survive a restart; the restarted node (data dir not fresh) comes back as a
// replica with its data and epoch. Octet 1.
func TestNodeDurableAcrossRestart(t *testing.T) {
	c := newCluster(t, 1)
	c.voters = []string{"db1"}
	c.addNode("db1", "a", 1, true, nil)
	n := c.start("db1")
	if st := n.State(); st.Role != RolePrimary || st.Epoch != 1 {
		t.Fatalf("bootstrap state %+v, want primary at epoch 1", st)
	}
	cl := c.client("db1")
	var last WriteResult
	for i := range 20 {
		last = putRetry(t, cl, fmt.Sprintf("key/%d", i), fmt.Sprintf("value-%d", i), 5*time.Second)
	}
	if last.LSN != 20 || last.Epoch != 1 || last.Node != "db1" || last.Region != "a" {
		t.Fatalf("last write result %+v", last)
	}
	c.kill("db1")

	n = c.start("db1")
	st := n.State()
	if st.Role != RoleReplica || st.LSN != 20 || st.Epoch != 1 {
		t.Fatalf("restarted state %+v, want replica at lsn 20 epoch 1", st)
	}
	for i := range 20 {
		res, err := cl.Get(context.Background(), fmt.Sprintf("key/%d", i), 20)
		if err != nil || !res.Found || res.Value != fmt.Sprintf("value-%d", i) || res.KeyLSN != uint64(i+1) {
			t.Fatalf("get key/%d after restart: %+v, %v", i, res, err)
		}
	}
	res, err := cl.Get(context.Background(), "missing", 0)
	if err != nil || res.Found {
		t.Fatalf("missing key: %+v, %v", res, err)
	}
	// Alone and formerly primary, it takes over again once FailoverAfter has passed, at a new epoch.
	waitFor(t, 3*time.Second, "restarted sole primary to promote itself", func() bool {
		st := n.State()
		return st.Role == RolePrimary && st.Epoch == 2
	})
	w := putRetry(t, cl, "after-restart", "v", 5*time.Second)
	if w.LSN != 21 || w.Epoch != 2 {
		t.Fatalf("write after re-promotion %+v, want lsn 21 epoch 2", w)
	}
}

// TestWALRewriteSyncsBeforeRename: a rewrite (the truncation of a divergent suffix) fsyncs its new
// log before it renames it over the old one, so a crash at any point leaves a whole log. While its
// fsync is held (a disk-stall fault), the new log is written in full beside the old one, and the
// old one is still in place, whole; once the fsync returns, the new one replaces it.
func TestWALRewriteSyncsBeforeRename(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	faults := &disk.Faults{}
	w, _, err := openWAL(dir, logger, func() {}, faults)
	if err != nil {
		t.Fatal(err)
	}
	old := walEntries(1, 5, 1)
	if err := w.append(old); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, walFileName)
	oldBytes, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	faults.Set(disk.State{Stall: true})
	done := make(chan error, 1)
	go func() { done <- w.rewrite(old[:2]) }()
	// The rewrite is held in its fsync once its temporary file holds the two records.
	want := len(appendWALRecord(appendWALRecord(nil, old[0]), old[1]))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, err := os.Stat(path + ".tmp"); err == nil && st.Size() == int64(want) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the rewrite finished while its fsync was stalled: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the rewrite never wrote its temporary file")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if now, err := os.ReadFile(path); err != nil || string(now) != string(oldBytes) {
		t.Fatalf("the old log changed before the new one was fsync'd (err %v): %d bytes, want the old %d", err, len(now), len(oldBytes))
	}
	faults.Set(disk.State{})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w.close()
	_, got, err := openWAL(dir, logger, func() {}, nil)
	if err != nil || !reflect.DeepEqual(got, old[:2]) {
		t.Fatalf("after the rewrite: err %v, %d entries, want the first 2", err, len(got))
	}
}
