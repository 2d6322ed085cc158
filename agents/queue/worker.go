package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Completions is where a worker records that a job ran: the database, keyed by the job id, so
// that recording it twice changes nothing.
type Completions interface {
	// Completed reports whether job id's completion is recorded.
	Completed(ctx context.Context, id string) (bool, error)
	// Complete records job id's completion; an error means it may not be recorded.
	Complete(ctx context.Context, id, value string) error
}

// WorkerConfig configures a worker.
type WorkerConfig struct {
	// Name and Region name the worker.
	Name   string
	Region string
	// QueueAddr is the region's queue node (ip:port); Password its NATS password.
	QueueAddr string
	Password  string
	// Mirrors are the other regions whose mirrored streams this worker drains while their own
	// queue is dead (queue_replication: mirror); QueueAlive answers that from gossip.
	Mirrors    []string
	QueueAlive func(region string) bool
	// Store records completions.
	Store Completions
	// AckBeforeWork acknowledges a job on receipt (the known-bad design) instead of once its
	// completion is recorded.
	AckBeforeWork bool
	// AckWait is the consumer's redelivery timeout.
	AckWait time.Duration
	// Concurrency is how many jobs run at once.
	Concurrency int
	// Logger receives the worker's logs.
	Logger *slog.Logger
	// Registry receives the worker's metrics (drill_worker_jobs_total by outcome,
	// drill_worker_mirror_jobs_total); nil: not exported.
	Registry prometheus.Registerer
}

// Outcomes of a delivered job (drill_worker_jobs_total's outcome label).
const (
	outcomeDone        = "done"         // worked, completion recorded
	outcomeAlreadyDone = "already_done" // a redelivery of a job whose completion was recorded
	outcomeHandedBack  = "handed_back"  // the completion store failed: redelivered later
	outcomeDropped     = "dropped"      // not a job: terminated
)

// ConsumerName is the durable consumer every worker of a region shares on a stream.
const ConsumerName = "workers"

// Worker drains its region's queue.
type Worker struct {
	cfg WorkerConfig
	nc  *nats.Conn
	js  jetstream.JetStream

	mu        sync.Mutex
	consumers map[string]jetstream.Consumer // by stream

	dead map[string]bool // other regions' queues last seen dead (deadRegions)

	jobs *prometheus.CounterVec // by outcome
	// mirrorDone counts the jobs done from other regions' mirrors (also logged when the worker stops).
	mirrorDone prometheus.Counter
}

// NewWorker connects to the region's queue (reconnecting in the background).
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	if cfg.Store == nil || cfg.QueueAddr == "" {
		return nil, errors.New("queue: a worker needs Store and QueueAddr")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Concurrency = max(cfg.Concurrency, 1)
	if cfg.AckWait <= 0 {
		cfg.AckWait = 3 * time.Second
	}
	nc, err := connect(natsURL(cfg.QueueAddr), cfg.Password, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("queue: connect to %s: %w", cfg.QueueAddr, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	w := &Worker{cfg: cfg, nc: nc, js: js, consumers: map[string]jetstream.Consumer{}, dead: map[string]bool{},
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "drill_worker_jobs_total",
			Help: "Jobs delivered to this worker, by outcome (done, already_done, handed_back, dropped)."}, []string{"outcome"}),
		mirrorDone: prometheus.NewCounter(prometheus.CounterOpts{Name: "drill_worker_mirror_jobs_total",
			Help: "Jobs of other regions this worker did from their mirrors while their queue was dead."}),
	}
	for _, o := range []string{outcomeDone, outcomeAlreadyDone, outcomeHandedBack, outcomeDropped} {
		w.jobs.WithLabelValues(o) // every outcome exists from the start, at 0
	}
	if cfg.Registry != nil {
		if err := errors.Join(cfg.Registry.Register(w.jobs), cfg.Registry.Register(w.mirrorDone)); err != nil {
			nc.Close()
			return nil, fmt.Errorf("queue: worker metrics: %w", err)
		}
	}
	return w, nil
}

// Run works until ctx ends: Concurrency loops, each fetching one job at a time from the region's
// stream, taking turns with the mirrors of regions whose queue is dead.
func (w *Worker) Run(ctx context.Context) error {
	defer w.nc.Close()
	var wg sync.WaitGroup
	for range w.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop(ctx)
		}()
	}
	wg.Wait()
	var done dto.Metric
	if err := w.mirrorDone.Write(&done); err == nil && done.GetCounter().GetValue() > 0 {
		n := int64(done.GetCounter().GetValue())
		w.cfg.Logger.Info("jobs of other regions done from their mirrors while their queue was dead", "jobs", n)
	}
	return nil
}

func (w *Worker) loop(ctx context.Context) {
	for ctx.Err() == nil {
		// While some region's queue is dead, its mirror takes turns with the own stream, one job
		// each: a busy own stream must not starve the backlog the dead region left.
		dead := w.deadRegions()
		wait := time.Second
		if len(dead) > 0 {
			wait = 100 * time.Millisecond
		}
		w.fetchOne(ctx, Stream(w.cfg.Region), wait)
		for _, r := range dead {
			if w.fetchOne(ctx, Stream(r), 100*time.Millisecond) {
				w.mirrorDone.Inc()
			}
		}
	}
}

// deadRegions lists the mirrored regions whose queue gossip sees dead, logging when one is first
// seen dead and alive again (the worker then starts and stops draining its mirror).
func (w *Worker) deadRegions() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, r := range w.cfg.Mirrors {
		dead := w.cfg.QueueAlive != nil && !w.cfg.QueueAlive(r)
		if dead {
			out = append(out, r)
		}
		if dead != w.dead[r] {
			w.dead[r] = dead
			w.cfg.Logger.Info("another region's queue", "region", r, "dead", dead, "mirror", Stream(r))
		}
	}
	return out
}

// consumerConfig is the workers' shared durable consumer: explicit acks, redelivery after
// ackWait (default 3 s), and every job retried until its completion is recorded (none is ever
// dropped). The queue node makes it on its own stream and every worker asks for the same.
func consumerConfig(ackWait time.Duration) jetstream.ConsumerConfig {
	if ackWait <= 0 {
		ackWait = 3 * time.Second
	}
	return jetstream.ConsumerConfig{Durable: ConsumerName, AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait, MaxDeliver: -1}
}

// consumer is the shared durable consumer on stream, created on first use.
func (w *Worker) consumer(ctx context.Context, stream string) (jetstream.Consumer, error) {
	w.mu.Lock()
	c, ok := w.consumers[stream]
	w.mu.Unlock()
	if ok {
		return c, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := w.js.CreateOrUpdateConsumer(ctx, stream, consumerConfig(w.cfg.AckWait))
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.consumers[stream] = c
	w.mu.Unlock()
	return c, nil
}

// fetchOne waits up to wait for one job of stream and runs it: true when a job came and is done
// (its completion recorded now or before).
func (w *Worker) fetchOne(ctx context.Context, stream string, wait time.Duration) bool {
	c, err := w.consumer(ctx, stream)
	if err != nil {
		w.cfg.Logger.Debug("no consumer", "stream", stream, "err", err)
		pause(ctx, wait) // the queue is unreachable or the stream not there yet
		return false
	}
	batch, err := c.Fetch(1, jetstream.FetchMaxWait(wait))
	if err != nil {
		w.forget(stream, err)
		pause(ctx, wait)
		return false
	}
	got := false
	for msg := range batch.Messages() {
		got = w.handle(ctx, msg)
	}
	w.forget(stream, batch.Error())
	return got
}

// forget drops the cached consumer of stream after a fetch failed other than by waiting in vain:
// the consumer may be gone (a queue restarted with memory storage lost it) and is made again on
// the next fetch.
func (w *Worker) forget(stream string, err error) {
	if err == nil || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	w.mu.Lock()
	delete(w.consumers, stream)
	w.mu.Unlock()
}

// handle runs one delivered job: unless its completion is already recorded (a redelivery of a
// job that ran), it does the work, records the completion and then acknowledges. A job whose
// completion cannot be recorded is handed back for redelivery.
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) bool {
	var job Job
	if err := json.Unmarshal(msg.Data(), &job); err != nil || job.Validate() != nil {
		w.cfg.Logger.Warn("job dropped: not a job", "err", err)
		_ = msg.Term()
		w.jobs.WithLabelValues(outcomeDropped).Inc()
		return false
	}
	delivered := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
	}
	if w.cfg.AckBeforeWork {
		_ = msg.Ack()
	}
	retry := func(err error) {
		w.jobs.WithLabelValues(outcomeHandedBack).Inc()
		w.cfg.Logger.Debug("job handed back", "job", job.ID, "err", err)
		if !w.cfg.AckBeforeWork {
			_ = msg.NakWithDelay(250 * time.Millisecond)
		}
	}
	done, err := w.cfg.Store.Completed(ctx, job.ID)
	if err != nil {
		retry(err)
		return false
	}
	outcome := outcomeAlreadyDone
	if !done {
		outcome = outcomeDone
		select {
		case <-ctx.Done():
			return false // the worker stops mid-job: no ack, JetStream redelivers it
		case <-time.After(time.Duration(job.WorkMS) * time.Millisecond):
		}
		if err := w.cfg.Store.Complete(ctx, job.ID, fmt.Sprintf("%s/%d", w.cfg.Name, delivered)); err != nil {
			retry(err)
			return false
		}
	}
	if !w.cfg.AckBeforeWork {
		ackCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := msg.DoubleAck(ackCtx); err != nil {
			// The completion is recorded: a redelivery finds it and only acknowledges.
			w.cfg.Logger.Debug("ack", "job", job.ID, "err", err)
		}
	}
	w.jobs.WithLabelValues(outcome).Inc()
	return true
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
