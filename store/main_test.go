package store

import "runtime"

func numGoroutines() int {
	runtime.GC()
	return runtime.NumGoroutine()
}
