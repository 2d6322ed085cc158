package queue

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/drillworks/drill/agents/db"
	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/agents/peerauth"
	"github.com/drillworks/drill/topology"
)

// DBStore records completions in the database: on the current primary (as gossip names it, the
// web tier's rule), so that a completion is read back wherever it was recorded.
type DBStore struct {
	// Members is the gossip view.
	Members interface{ Members() []gossip.Member }
	// DialAddr is where a db node's API is dialled from this node.
	DialAddr func(node string) (string, error)
	// HTTP signs the calls with the run's db key.
	HTTP *http.Client
	// Timeout bounds one call.
	Timeout time.Duration
}

// NewDBStore is a DBStore whose calls are signed with key.
func NewDBStore(members interface{ Members() []gossip.Member }, dial func(string) (string, error), key peerauth.Key) *DBStore {
	return &DBStore{Members: members, DialAddr: dial, Timeout: 2 * time.Second,
		HTTP: &http.Client{Transport: &peerauth.Transport{Key: key, Base: &http.Transport{
			DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext, MaxIdleConnsPerHost: 16,
		}}}}
}

var errNoPrimary = errors.New("no primary known")

func (s *DBStore) primary() (*db.Client, error) {
	name, _ := gossip.PrimaryOf(s.Members.Members())
	if name == "" {
		return nil, errNoPrimary
	}
	addr, err := s.DialAddr(name)
	if err != nil {
		return nil, err
	}
	return &db.Client{BaseURL: "http://" + addr, HTTP: s.HTTP, Node: name}, nil
}

// Completed reads the completion record on the primary.
func (s *DBStore) Completed(ctx context.Context, id string) (bool, error) {
	c, err := s.primary()
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	r, err := c.Get(ctx, topology.JobDoneKey(id), 0)
	return r.Found, err
}

// Complete writes the completion record on the primary.
func (s *DBStore) Complete(ctx context.Context, id, value string) error {
	c, err := s.primary()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	_, err = c.Put(ctx, topology.JobDoneKey(id), value)
	return err
}
