// Package metricstest reads a metrics.Registry as Prometheus does: over
// HTTP, in the text exposition format.
package metricstest

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"signet/internal/metrics"
)

// Scrape serves reg's /metrics and parses what a GET of it returns.
func Scrape(tb testing.TB, reg *metrics.Registry) map[string]*dto.MetricFamily {
	tb.Helper()
	srv := httptest.NewServer(reg.Handler(slog.New(slog.DiscardHandler)))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		tb.Fatalf("the exposition does not parse: %v", err)
	}
	return fams
}

// Sum adds the values (a histogram's count, or with sum its sum) of the
// series of name whose labels include want.
func Sum(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var n float64
	for _, m := range fams[name].GetMetric() {
		match := 0
		for _, l := range m.GetLabel() {
			if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
				match++
			}
		}
		if match != len(want) {
			continue
		}
		switch {
		case m.Histogram != nil:
			n += float64(m.Histogram.GetSampleCount())
		case m.Counter != nil:
			n += m.Counter.GetValue()
		case m.Gauge != nil:
			n += m.Gauge.GetValue()
		}
	}
	return n
}

// HistogramSum adds the sums of the histogram name's series whose labels
// include want.
func HistogramSum(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var n float64
	for _, m := range fams[name].GetMetric() {
		match := 0
		for _, l := range m.GetLabel() {
			if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
				match++
			}
		}
		if match == len(want) {
			n += m.GetHistogram().GetSampleSum()
		}
	}
	return n
}
