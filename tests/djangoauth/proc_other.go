//go:build !linux

package djangoauth

import (
	"os"
	"syscall"
)

// sysProcAttr has no process-group or parent-death handling off Linux; CI runs
// on Debian.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// killGroup kills gunicorn; its workers exit when they notice the master is gone.
func killGroup(p *os.Process) { _ = p.Kill() }
