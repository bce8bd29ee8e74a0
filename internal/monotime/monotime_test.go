package monotime

import (
	"testing"
	"time"
)

func TestNowAdvancesFromOne(t *testing.T) {
	a := Now()
	if a < 1 {
		t.Fatalf("Now() = %d, want at least 1 (0 is callers' never)", a)
	}
	time.Sleep(time.Millisecond)
	if b := Now(); b-a < int64(time.Millisecond) {
		t.Fatalf("Now() moved %v across a 1 ms sleep", time.Duration(b-a))
	}
}

func ExampleNow() {
	last := int64(0) // never
	now := Now()
	if last == 0 || now-last > int64(10*time.Second) {
		last = now // act, then hold off for 10 s whatever the wall clock does
	}
	_ = last
}
