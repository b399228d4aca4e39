// Package cputime reads the CPU time this process has used. Benchmarks and
// the load generator report CPU per operation: on a machine shared with
// other work it moves far less than throughput, and the cores divided by
// the CPU per operation is the throughput it allows.
package cputime

import (
	"syscall"
	"time"
)

// Process is the user plus system CPU time of all of this process's
// threads so far.
func Process() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru) // cannot fail for RUSAGE_SELF
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
