package db

import (
	"testing"
	"time"
)

// testVoter is a voter in dir on a clock the test moves, and a vote of 1 s leases.
func testVoter(t *testing.T, dir string) (v *Voter, clock *time.Time, vote func(cand string, epoch uint64) LeaseResponse) {
	t.Helper()
	v, err := OpenVoter(dir, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_000_000, 0)
	v.now = func() time.Time { return now }
	return v, &now, func(cand string, epoch uint64) LeaseResponse {
		t.Helper()
		r, err := v.Vote(LeaseRequest{Candidate: cand, Epoch: epoch, DurationMS: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}

func TestVoterRules(t *testing.T) {
	dir := t.TempDir()
	v, clockp, vote := testVoter(t, dir)
	clock := *clockp
	v.now = func() time.Time { return clock }

	if r := vote("a", 1); !r.Granted || r.Holder != "a" || r.Epoch != 1 || r.ExpiresInMS != 1000 {
		t.Fatalf("free lease: %+v", r)
	}
	clock = clock.Add(400 * time.Millisecond)
	if r := vote("a", 1); !r.Granted || r.ExpiresInMS != 1000 {
		t.Fatalf("renewal by the holder: %+v", r)
	}
	if r := vote("b", 1); r.Granted || r.Holder != "a" || r.HolderEpoch != 1 || r.ExpiresInMS != 1000 {
		t.Fatalf("other candidate while held: %+v", r)
	}
	// A higher epoch is not granted while the lease runs, but it raises the voter's epoch at once...
	if r := vote("b", 2); r.Granted || r.Epoch != 2 || r.Holder != "a" {
		t.Fatalf("higher epoch while held: %+v", r)
	}
	// ...so the old holder can no longer renew, and learns the newer epoch.
	if r := vote("a", 1); r.Granted || r.Epoch != 2 {
		t.Fatalf("old holder renewing after a newer epoch asked: %+v", r)
	}
	// Once the old lease has expired on the voter's clock, the newer epoch gets it.
	clock = clock.Add(999 * time.Millisecond)
	if r := vote("b", 2); r.Granted {
		t.Fatalf("granted 1 ms before expiry: %+v", r)
	}
	clock = clock.Add(time.Millisecond)
	if r := vote("b", 2); !r.Granted || r.Holder != "b" || r.HolderEpoch != 2 {
		t.Fatalf("after expiry: %+v", r)
	}
	// Lower epochs are rejected even when the lease is free.
	clock = clock.Add(5 * time.Second)
	if r := vote("c", 1); r.Granted || r.Epoch != 2 {
		t.Fatalf("lower epoch on a free lease: %+v", r)
	}
	if _, err := v.Vote(LeaseRequest{Candidate: "", Epoch: 3, DurationMS: 1000}); err == nil {
		t.Fatal("empty candidate accepted")
	}

	// The state is durable: a reopened voter remembers the epoch and the holder's expiry.
	if r := vote("b", 2); !r.Granted {
		t.Fatalf("renew before reopen: %+v", r)
	}
	v2, err := OpenVoter(dir, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	v2.now = func() time.Time { return clock.Add(500 * time.Millisecond) }
	r, err := v2.Vote(LeaseRequest{Candidate: "c", Epoch: 3, DurationMS: 1000})
	if err != nil || r.Granted || r.Holder != "b" || r.Epoch != 3 || r.ExpiresInMS != 500 {
		t.Fatalf("reopened voter: %+v, %v", r, err)
	}
	r, err = v2.Vote(LeaseRequest{Candidate: "b", Epoch: 2, DurationMS: 1000})
	if err != nil || r.Granted || r.Epoch != 3 {
		t.Fatalf("reopened voter, old epoch renewing: %+v, %v", r, err)
	}
}

// TestVoterGrantsAnEpochOnce (finding 1): two candidates that picked the same epoch (two replicas
// that could not see each other) cannot both hold it. Before the fix, the second was granted the
// same epoch once the first's lease expired, and two primaries held one epoch.
func TestVoterGrantsAnEpochOnce(t *testing.T) {
	_, clock, vote := testVoter(t, t.TempDir())
	if r := vote("a", 5); !r.Granted {
		t.Fatalf("first candidate of epoch 5: %+v", r)
	}
	*clock = clock.Add(10 * time.Second) // a's lease long expired
	if r := vote("b", 5); r.Granted || r.Holder != "a" || r.HolderEpoch != 5 {
		t.Fatalf("second candidate of the same epoch after expiry: %+v, want refused, naming a at epoch 5", r)
	}
	if r := vote("b", 6); !r.Granted || r.Holder != "b" {
		t.Fatalf("the next epoch after expiry: %+v", r)
	}
	if r := vote("a", 6); r.Granted {
		t.Fatalf("the first candidate at the second's epoch: %+v", r)
	}
}
