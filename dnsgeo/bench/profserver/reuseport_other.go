//go:build !linux

package main

import "errors"

// setReusePort is only implemented for Linux, the only platform drill's benchmarks run on.
func setReusePort(uintptr) error { return errors.New("SO_REUSEPORT: only supported on linux") }
