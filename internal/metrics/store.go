package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// commits holds the store writer's transaction metrics, resolved once.
type commits struct {
	duration   *prometheus.HistogramVec
	ok, failed prometheus.Observer
	batch      prometheus.Histogram
}

func newCommits() *commits {
	c := &commits{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "signet_store_commit_duration_seconds",
			Help:    "Write transactions of this node's store writer (one per group commit), by outcome (ok, error), with their time from BEGIN to COMMIT.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
		}, []string{"outcome"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "signet_store_commit_batch_size",
			Help:    "Writes taken together into one transaction by this node's store writer (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
	}
	c.ok, c.failed = c.duration.WithLabelValues("ok"), c.duration.WithLabelValues("error")
	return c
}

// Commit implements store.CommitObserver.
func (r *Registry) Commit(writes int, d time.Duration, err error) {
	if err != nil {
		r.commits.failed.Observe(d.Seconds())
	} else {
		r.commits.ok.Observe(d.Seconds())
	}
	r.commits.batch.Observe(float64(writes))
}
