package djangoauth

import (
	"os"
	"syscall"
)

// sysProcAttr puts gunicorn in its own process group, so killGroup reaches its
// workers too, and has the kernel send it SIGTERM if the test binary dies
// without running cleanups.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// killGroup kills gunicorn and its workers.
func killGroup(p *os.Process) {
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
}
