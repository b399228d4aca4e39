package console

import (
	"fmt"
	"html/template"
	"math"
	"path"
	"strings"
	"time"
)

// funcs are the templates' helpers. Everything they return is text that
// html/template escapes where it is put.
var funcs = template.FuncMap{
	"utc": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"rel": relative,
	"join": func(s []string) string {
		return strings.Join(s, ", ")
	},
	"can": func(o Operator, need string) bool { return o.Can(need) },
	"deref": func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return *t
	},
	"list": func(s ...string) []string { return s },
	"plus": func(a, b int) int { return a + b },
	// dict hands a partial the page's time and one value.
	"dict": func(now time.Time, v any) map[string]any { return map[string]any{"Now": now, "T": v} },
}

// relative says how far t is from now: "in 5 days", "3 hours ago".
func relative(now, t time.Time) string {
	d := t.Sub(now)
	future := d >= 0
	d = time.Duration(math.Abs(float64(d)))
	var s string
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		s = plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		s = plural(int(d/time.Hour), "hour")
	default:
		s = plural(int(d/(24*time.Hour)), "day")
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func plural(n int, unit string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", unit)
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// parsePages parses each page with the layout it fills.
func parsePages() map[string]*template.Template {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	names, err := templateFS.ReadDir("templates")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, e := range names {
		name := strings.TrimSuffix(e.Name(), ".html")
		if name == "layout" {
			continue
		}
		pages[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, path.Join("templates", e.Name())))
	}
	return pages
}
