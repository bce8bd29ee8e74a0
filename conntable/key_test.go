package conntable

import (
	"testing"
	"testing/quick"
)

func TestKeyEqual(t *testing.T) {
	base := testKey(7)
	mutate := []func(*Key){
		func(k *Key) { k.CIP[0]++ },
		func(k *Key) { k.CIP[15]++ },
		func(k *Key) { k.VIP[3]++ },
		func(k *Key) { k.VIP[12]++ },
		func(k *Key) { k.CPort++ },
		func(k *Key) { k.VPort++ },
		func(k *Key) { k.Proto++ },
		func(k *Key) { k.Kind = KindTemplate },
	}
	for i, m := range mutate {
		k := base
		m(&k)
		if keyEqual(&k, &base) || keyEqual(&base, &k) {
			t.Errorf("mutation %d: keys compare equal", i)
		}
		if hashKey(&k, 0) == hashKey(&base, 0) {
			t.Errorf("mutation %d: same hash", i)
		}
	}
	if !keyEqual(&base, &base) {
		t.Error("key not equal to itself")
	}
	// keyEqual agrees with == on arbitrary keys.
	if err := quick.Check(func(a, b Key, same bool) bool {
		if same {
			b = a
		}
		return keyEqual(&a, &b) == (a == b)
	}, nil); err != nil {
		t.Error(err)
	}
}

// TestHashSpread checks the range reduction spreads sequential flows:
// sequential client ports and addresses (the common case) must land in
// every part of the table evenly, and seeds must change the placement.
func TestHashSpread(t *testing.T) {
	const slots, n = 1000, 100000
	tb := &Table{nslots: slots, seed: seedMix(0)}
	tb.slots = make([]Entry, slots)
	var hist [slots]int
	for i := range n {
		k := testKey(i)
		hist[tb.home(hashKey(&k, tb.seed))]++
	}
	// Expected 100 per slot; a chi-square over 999 degrees of freedom
	// stays well under 1200 for a decent hash.
	chi := 0.0
	for _, c := range hist {
		d := float64(c) - n/slots
		chi += d * d / (n / slots)
	}
	if chi > 1200 {
		t.Errorf("chi-square %.0f over %d slots: hash clusters", chi, slots)
	}
	k := testKey(1)
	if hashKey(&k, seedMix(0)) == hashKey(&k, seedMix(1)) {
		t.Error("seed does not change the hash")
	}
	if hashKey(&k, seedMix(0)) != hashKey(&k, seedMix(0)) {
		t.Error("hash not deterministic")
	}
}
