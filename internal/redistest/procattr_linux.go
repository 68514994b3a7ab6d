package redistest

import "syscall"

// sysProcAttr makes the kernel kill redis-server when the test binary dies
// (a go test timeout, a kill -9), so no server outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
