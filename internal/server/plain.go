package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ServePlain answers on ln over plain HTTP until ctx ends, then shuts down
// gracefully. It carries what relying parties fetch without TLS (CRLs,
// OCSP, CA certificates: RFC 5280 and RFC 5019 want http URLs), never the API.
func ServePlain(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, shutdownTimeout time.Duration) error {
	if shutdownTimeout == 0 {
		shutdownTimeout = 10 * time.Second
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second, // a million-entry CRL shard is a few MB
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if e := <-done; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}

// WithAudit serves, before next, the audit log's public key (GET
// /audit/key, the note verifier key) and the newest checkpoint this node
// signed (GET /audit/checkpoint, a C2SP signed note; 404 until there is one,
// and on a node that does not sign them).
func WithAudit(next http.Handler, latest func() []byte, vkey string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		switch r.URL.Path {
		case "/audit/key":
			if vkey == "" {
				http.Error(w, "the audit key is locked and this home has not recorded its verifier key yet: signet unlock opens it", http.StatusServiceUnavailable)
				return
			}
			body = []byte(vkey + "\n")
		case "/audit/checkpoint":
			if body = latest(); body == nil {
				http.Error(w, "no checkpoint signed on this node: the node that signs CRLs signs checkpoints, once it has started", http.StatusNotFound)
				return
			}
		default:
			next.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(body)
	})
}
