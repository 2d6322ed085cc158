package main

import "syscall"

// soReusePort is Linux's SO_REUSEPORT (the frozen syscall package does not define it).
const soReusePort = 0xf

// setReusePort lets several sockets bind the same address; the kernel spreads packets over them.
func setReusePort(fd uintptr) error {
	return syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1)
}
