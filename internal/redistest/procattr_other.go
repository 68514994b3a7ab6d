//go:build !linux

package redistest

import "syscall"

// sysProcAttr has no parent-death signal to ask for outside Linux: a server
// outlives a test binary that is killed before its cleanups run.
func sysProcAttr() *syscall.SysProcAttr { return nil }
