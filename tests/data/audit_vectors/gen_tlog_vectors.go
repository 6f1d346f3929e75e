// Command gen_tlog_vectors prints, as JSON, the Merkle tree hashes and proofs that
// golang.org/x/mod/sumdb/tlog computes for the leaves of its own TestTree
// (record i is the bytes "leaf <i>").
//
// Run against the Debian package golang-golang-x-mod-dev 0.7.0-1 (no network):
//   GO111MODULE=off GOPATH=/usr/share/gocode go run gen_tlog_vectors.go
// (sumdb_tlog_generated.json is that output laid out one proof per line.)
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"golang.org/x/mod/sumdb/tlog"
)

type hashes []tlog.Hash

func (h hashes) ReadHashes(index []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(index))
	for i, x := range index {
		out[i] = h[x]
	}
	return out, nil
}

type inclusion struct {
	Size  int64       `json:"size"`
	Index int64       `json:"index"`
	Proof []tlog.Hash `json:"proof"`
}

type consistency struct {
	Old   int64       `json:"old_size"`
	New   int64       `json:"new_size"`
	Proof []tlog.Hash `json:"proof"`
}

type output struct {
	Leaves      []string      `json:"leaves"`
	LeafHashes  []tlog.Hash   `json:"leaf_hashes"`
	TreeHashes  []tlog.Hash   `json:"tree_hashes"`
	Inclusion   []inclusion   `json:"inclusion_proofs"`
	Consistency []consistency `json:"consistency_proofs"`
}

func main() {
	const n = 100
	var storage hashes
	var out output
	for i := int64(0); i < n; i++ {
		data := []byte(fmt.Sprintf("leaf %d", i))
		h, err := tlog.StoredHashes(i, data, storage)
		if err != nil {
			panic(err)
		}
		storage = append(storage, h...)
		out.Leaves = append(out.Leaves, string(data))
		out.LeafHashes = append(out.LeafHashes, tlog.RecordHash(data))
		th, err := tlog.TreeHash(i+1, storage)
		if err != nil {
			panic(err)
		}
		out.TreeHashes = append(out.TreeHashes, th)
	}
	sizes := []int64{1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 33, 64, 99, 100}
	for _, t := range sizes {
		seen := map[int64]bool{}
		for _, idx := range []int64{0, 1, t / 3, t / 2, t - 2, t - 1} {
			if idx < 0 || idx >= t || seen[idx] {
				continue
			}
			seen[idx] = true
			p, err := tlog.ProveRecord(t, idx, storage)
			if err != nil {
				panic(err)
			}
			out.Inclusion = append(out.Inclusion, inclusion{t, idx, p})
		}
	}
	for _, t := range sizes {
		for _, m := range sizes {
			if m > t {
				continue
			}
			p, err := tlog.ProveTree(t, m, storage)
			if err != nil {
				panic(err)
			}
			if p == nil {
				p = []tlog.Hash{}
			}
			out.Consistency = append(out.Consistency, consistency{m, t, p})
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		panic(err)
	}
}
