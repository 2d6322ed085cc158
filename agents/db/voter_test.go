package db

import (
	"testing"
	"time"
)

// testVoter is a voter in dir on a clock the test moves, and a vote of 1 s leases.
func testVoter(t *testing.T, dir string) (v *Voter, clock *time.Time, vote func(cand string, epoch uint64) LeaseResponse) {
	t.Helper()
	v, err := OpenVoter(dir, nil, nil, testLogger(t))
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
	v, clock, vote := testVoter(t, dir)

	if r := vote("a", 1); !r.Granted || r.Holder != "a" || r.Epoch != 1 || r.ExpiresInMS != 1000 {
		t.Fatalf("free lease: %+v", r)
	}
	*clock = clock.Add(400 * time.Millisecond)
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
	*clock = clock.Add(999 * time.Millisecond)
	if r := vote("b", 2); r.Granted {
		t.Fatalf("granted 1 ms before expiry: %+v", r)
	}
	*clock = clock.Add(time.Millisecond)
	if r := vote("b", 2); !r.Granted || r.Holder != "b" || r.HolderEpoch != 2 {
		t.Fatalf("after expiry: %+v", r)
	}
	// Lower epochs are rejected even when the lease is free.
	*clock = clock.Add(5 * time.Second)
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
	v2, err := OpenVoter(dir, nil, nil, testLogger(t))
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

// TestVoterPreVote: a dry run changes nothing; it says no while another candidate's lease runs or
// while another candidate's campaign for a newer epoch is younger than a lease, and yes after.
func TestVoterPreVote(t *testing.T) {
	v, clock, vote := testVoter(t, t.TempDir())
	dry := func(cand string, epoch uint64) bool {
		t.Helper()
		r, err := v.Vote(LeaseRequest{Candidate: cand, Epoch: epoch, DurationMS: 1000, DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		return r.Granted
	}
	if !dry("a", 1) {
		t.Fatal("pre-vote on a free voter refused")
	}
	if r := vote("a", 1); !r.Granted || r.Epoch != 1 {
		t.Fatalf("the dry run changed the voter, or the real vote failed: %+v", r)
	}
	if dry("b", 2) {
		t.Fatal("pre-vote granted while a's lease runs")
	}
	*clock = clock.Add(2 * time.Second) // a's lease expired
	if r := vote("b", 2); !r.Granted {
		t.Fatalf("b after a's lease: %+v", r)
	}
	*clock = clock.Add(2 * time.Second) // b's lease expired too, its campaign long over
	if !dry("a", 3) {
		t.Fatal("pre-vote refused once every lease expired")
	}
	if r := vote("a", 3); !r.Granted {
		t.Fatalf("a at 3: %+v", r)
	}
	// b campaigns for 4 while a's lease runs: refused, but the epoch is raised.
	if r := vote("b", 4); r.Granted || r.Epoch != 4 {
		t.Fatalf("b's campaign: %+v", r)
	}
	*clock = clock.Add(1100 * time.Millisecond) // a's lease expired; b's campaign is 1.1 s old
	if !dry("c", 6) {
		t.Fatal("pre-vote refused once the campaign is older than a lease")
	}
	if r := vote("b", 5); !r.Granted { // b campaigns again, and wins
		t.Fatalf("b at 5: %+v", r)
	}
	*clock = clock.Add(1100 * time.Millisecond) // b's lease expired; its campaign (raise to 5) too
	if r := vote("d", 7); !r.Granted {
		t.Fatalf("d at 7: %+v", r)
	}
	*clock = clock.Add(1100 * time.Millisecond)
	if r := vote("b", 9); !r.Granted { // raises to 9 and wins at once (d's lease expired)
		t.Fatalf("b at 9: %+v", r)
	}
	if dry("c", 10) {
		t.Fatal("pre-vote granted while b's lease runs")
	}
	*clock = clock.Add(1100 * time.Millisecond)
	if r := vote("a", 11); !r.Granted {
		t.Fatalf("a at 11 after b's lease: %+v", r)
	}
	*clock = clock.Add(1100 * time.Millisecond) // a's lease expired
	if r := vote("e", 12); !r.Granted {
		t.Fatalf("e at 12: %+v", r)
	}
	// A campaign without a grant: f raises to 14 half-way through e's lease.
	*clock = clock.Add(500 * time.Millisecond)
	if r := vote("f", 14); r.Granted {
		t.Fatalf("f at 14 while e holds: %+v", r)
	}
	*clock = clock.Add(600 * time.Millisecond) // e's lease expired; f's campaign is 0.6 s old
	if dry("c", 15) {
		t.Fatal("pre-vote granted during another candidate's young campaign")
	}
	if !dry("f", 15) {
		t.Fatal("the campaigning candidate's own pre-vote refused")
	}
}
