package flow

import "hash/fnv"

// BindingKey places a binding in the capture's 32-bit key space: the FNV-1a
// hash of its state key. When Flow splits a capture into shards, each shard
// owns a disjoint range of keys and the ranges cover the whole space, so
// each binding is captured by exactly one shard. The unit of work is the
// stream: one stream is never split across shards.
func BindingKey(stateKey string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(stateKey))
	return h.Sum32()
}

// fullRange is the whole key space, what a capture that was never split owns.
var fullRange = RangeSpec{KeyBegin: 0, KeyEnd: 0xffffffff, RClockBegin: 0, RClockEnd: 0xffffffff}

// Owns reports whether key falls in the shard's inclusive range. (The
// r-clock range divides the shuffled reads of derivations and
// materializations; a capture has none.)
func (r RangeSpec) Owns(key uint32) bool {
	return uint32(r.KeyBegin) <= key && key <= uint32(r.KeyEnd)
}
