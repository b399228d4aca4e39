package console

import (
	"net/http"
	"strconv"
	"time"

	"signet/internal/audit"
	"signet/internal/store"
)

// chart is a bar chart drawn by the server as SVG: one bar a day.
type chart struct {
	Title string
	Total int
	Max   int
	Bars  []bar
	Width int // of the drawing, in SVG units
}

// bar is one day of a chart, placed in SVG units (the template draws it).
type bar struct {
	Day      time.Time
	Count    int
	X, Y, H  int
	W        int
	Label    string // day and count, the bar's title
	Tick     bool   // labelled on the axis
	TickText string
}

// Chart geometry, in SVG units: the bars' area is chartHeight high.
const (
	chartHeight = 100
	barWidth    = 6
	barGap      = 2
)

// newChart lays out counts, one a day from first.
func newChart(title string, first time.Time, counts []int) chart {
	ch := chart{Title: title, Width: len(counts) * (barWidth + barGap)}
	for _, n := range counts {
		ch.Total += n
		ch.Max = max(ch.Max, n)
	}
	for i, n := range counts {
		day := first.AddDate(0, 0, i)
		h := 0
		if ch.Max > 0 {
			h = n * chartHeight / ch.Max
			if n > 0 && h == 0 {
				h = 1
			}
		}
		ch.Bars = append(ch.Bars, bar{Day: day, Count: n, X: i * (barWidth + barGap), Y: chartHeight - h, H: h, W: barWidth,
			Label: day.Format("Mon 2 Jan") + ": " + strconv.Itoa(n), Tick: day.Day() == 1 || i == 0,
			TickText: day.Format("2 Jan")})
	}
	return ch
}

// dayOf is the start of t's day in UTC.
func dayOf(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// maxChartEvents bounds the issue events one chart reads.
const maxChartEvents = 100000

// issuedChart counts the certificate.issue events of the last 30 days.
func (c *Console) issuedChart(r *http.Request, now time.Time) (chart, error) {
	first := dayOf(now).AddDate(0, 0, -29)
	events, err := c.o.Store.AuditEvents(r.Context(), store.EventFilter{Kind: audit.KindCertificateIssue, Since: first, Limit: maxChartEvents})
	if err != nil {
		return chart{}, err
	}
	counts := make([]int, 30)
	for _, e := range events {
		if i := int(dayOf(e.Time).Sub(first) / (24 * time.Hour)); i >= 0 && i < len(counts) {
			counts[i]++
		}
	}
	return newChart("Certificates issued per day, last 30 days", first, counts), nil
}

// expiryChart counts the unrevoked certificates expiring on each of the
// next 90 days (one aggregate query: the store is not walked).
func (c *Console) expiryChart(r *http.Request, now time.Time) (chart, error) {
	per, err := c.o.Store.ExpiringPerDay(r.Context(), now, 90)
	if err != nil {
		return chart{}, err
	}
	counts := make([]int, len(per))
	for i, n := range per {
		counts[i] = int(n)
	}
	return newChart("Certificates expiring per day, next 90 days", dayOf(now), counts), nil
}
