package hosts

import (
	"bytes"
	"strings"

	"github.com/aymanbagabas/go-udiff"
	"github.com/aymanbagabas/go-udiff/myers"
)

// maxMyersLines is the largest changed region (lines before + after)
// diffed line by line; larger ones are shown as one replacement.
const maxMyersLines = 600

// Diff returns a unified diff (3 lines of context) from before to after,
// labelled a<path> and b<path>; "" when they are equal. Lines common to
// both ends are cut before diffing, so a block edit in a large file stays
// cheap.
func Diff(path string, before, after []byte) string {
	if bytes.Equal(before, after) {
		return ""
	}
	// Common prefix and suffix, on line boundaries.
	p := 0
	for p < len(before) && p < len(after) && before[p] == after[p] {
		p++
	}
	p = bytes.LastIndexByte(before[:p], '\n') + 1
	s := 0
	for s < len(before)-p && s < len(after)-p && before[len(before)-1-s] == after[len(after)-1-s] {
		s++
	}
	if s > 0 {
		// Keep the suffix starting right after a line break.
		tail := before[len(before)-s:]
		if i := bytes.IndexByte(tail, '\n'); i >= 0 && !(len(before)-s > 0 && before[len(before)-s-1] == '\n') {
			s -= i + 1
		} else if i < 0 && !(len(before)-s > 0 && before[len(before)-s-1] == '\n') {
			s = 0
		}
	}
	b, a := string(before[p:len(before)-s]), string(after[p:len(after)-s])
	var mid []udiff.Edit
	if strings.Count(b, "\n")+strings.Count(a, "\n") <= maxMyersLines {
		//lint:ignore SA1019 the diffs' exact form is pinned by testdata golden files
		mid = myers.ComputeEdits(b, a)
	} else {
		// Myers keeps O(D²) state: a 20,000-line insertion would take
		// gigabytes. Show the changed region as removed and added instead.
		mid = []udiff.Edit{{Start: 0, End: len(b), New: a}}
	}
	for i := range mid {
		mid[i].Start += p
		mid[i].End += p
	}
	out, err := udiff.ToUnified("a"+path, "b"+path, string(before), mid, udiff.DefaultContextLines)
	if err != nil {
		// Cannot happen (the edits come from the same text); be plain.
		return udiff.Unified("a"+path, "b"+path, string(before), string(after))
	}
	return out
}
