package disk

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestFullDiskRefusesWrites(t *testing.T) {
	file, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var f Faults
	if _, err := f.Write(file, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	f.Set(State{Full: true})
	if _, err := f.Write(file, []byte("no")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write on a full disk: %v, want ENOSPC", err)
	}
	f.Set(State{})
	if _, err := f.Write(file, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file.Name()); string(b) != "okok" {
		t.Fatalf("file holds %q", b)
	}
}

func TestStallHoldsFsyncUntilCleared(t *testing.T) {
	file, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var f Faults
	f.Set(State{Stall: true})
	done := make(chan error, 1)
	go func() { done <- f.Sync(file) }()
	select {
	case err := <-done:
		t.Fatalf("fsync returned (%v) during a stall", err)
	case <-time.After(50 * time.Millisecond): // the fsync is still held; nothing to poll for
	}
	f.Set(State{Stall: true, Full: true}) // still stalled: the same wait
	f.Set(State{})
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fsync still held after the stall was cleared")
	}
	if !f.State().Zero() || !(State{Stall: true}).Or(State{Full: true}).Full {
		t.Fatal("state")
	}
}
