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

func TestLimit(t *testing.T) {
	var l Limit
	const every = 10 * time.Second
	for i, tc := range []struct {
		at   time.Duration
		want bool
	}{
		{time.Second, true}, // the first at once
		{2 * time.Second, false},
		{11*time.Second - 1, false},
		{11 * time.Second, true}, // every after the last allowed
		{12 * time.Second, false},
		{30 * time.Second, true},
	} {
		if got := l.AllowAt(int64(tc.at), every); got != tc.want {
			t.Fatalf("call %d at %v: %t, want %t", i, tc.at, got, tc.want)
		}
	}
	l.Forget()
	if !l.AllowAt(int64(31*time.Second), every) {
		t.Fatal("Forget: the next call was not allowed")
	}
}
