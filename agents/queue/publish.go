package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Job is what a web node publishes and a worker runs.
type Job struct {
	// ID is unique per job: JetStream's message id (de-duplication) and the completion record's key.
	ID string `json:"id"`
	// WorkMS is how long the job's work takes (the worker spends it before recording completion).
	WorkMS int `json:"work_ms"`
}

// Limits on a job.
const (
	MaxIDLen  = 200
	MaxWorkMS = 60_000
)

// Validate checks a job from a client.
func (j Job) Validate() error {
	switch {
	case j.ID == "" || len(j.ID) > MaxIDLen:
		return fmt.Errorf("id must be 1 to %d bytes", MaxIDLen)
	case j.WorkMS < 0 || j.WorkMS > MaxWorkMS:
		return fmt.Errorf("work_ms must be between 0 and %d", MaxWorkMS)
	}
	for _, c := range j.ID {
		if c <= ' ' || c == 0x7f {
			return errors.New("id must not hold spaces or control characters")
		}
	}
	return nil
}

// Published is an acknowledged publish.
type Published struct {
	// Stream and Seq are where JetStream stored the job.
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"`
	// Duplicate is true when the id was already in the stream's duplicate window (stored once).
	Duplicate bool `json:"duplicate"`
}

// ErrUnknown wraps a publish whose outcome is unknown: it may have been stored.
var ErrUnknown = errors.New("outcome unknown")

// Publisher publishes jobs to its region's queue (a web node's).
type Publisher struct {
	region  string
	nc      *nats.Conn
	js      jetstream.JetStream
	timeout time.Duration
}

// NewPublisher connects to the region's queue node at addr (it keeps reconnecting in the
// background; publishes fail while it is not connected).
func NewPublisher(name, region, addr, password string, timeout time.Duration) (*Publisher, error) {
	nc, err := connect(natsURL(addr), password, name, nats.ReconnectBufSize(-1))
	if err != nil {
		return nil, fmt.Errorf("queue: connect to %s: %w", addr, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &Publisher{region: region, nc: nc, js: js, timeout: timeout}, nil
}

// Publish stores job in the region's stream and returns once JetStream acknowledged it. An error
// wrapping ErrUnknown means the job may have been stored (a timeout); any other error means it
// was not.
func (p *Publisher) Publish(ctx context.Context, job Job) (Published, error) {
	if !p.nc.IsConnected() {
		// Nothing is buffered while disconnected (ReconnectBufSize -1): the job was not sent.
		return Published{}, fmt.Errorf("queue not connected (%s)", p.nc.Status())
	}
	data, err := json.Marshal(job)
	if err != nil {
		return Published{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	ack, err := p.js.Publish(ctx, Subject(p.region), data, jetstream.WithMsgID(job.ID))
	switch {
	case err == nil:
		return Published{Stream: ack.Stream, Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse):
		return Published{}, fmt.Errorf("no stream answers: %w", err)
	default:
		return Published{}, fmt.Errorf("%w: %v", ErrUnknown, err)
	}
}

// Close disconnects.
func (p *Publisher) Close() { p.nc.Close() }
