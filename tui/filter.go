package tui

import (
	"sort"
	"strconv"
	"strings"

	"github.com/siteplex/siteplex/sites"
)

// haystack is what the filter searches for one site: id, slug, name,
// domain, local domain and aliases, lower-cased once when the sites load.
func haystack(s *sites.Site) string {
	var b strings.Builder
	b.WriteString(strconv.FormatInt(s.ID, 10))
	for _, f := range []string{s.Slug, s.Name, s.Domain, s.LocalDomain} {
		b.WriteByte(' ')
		b.WriteString(f)
	}
	for _, a := range s.Aliases {
		b.WriteByte(' ')
		b.WriteString(a)
	}
	return strings.ToLower(b.String())
}

// fuzzyScore scores query (lower-case) against hay: -1 when it does not
// match. A substring beats a scattered subsequence; an earlier and
// word-start match beats a later one; fewer gaps beat more.
func fuzzyScore(hay, query string) int {
	if query == "" {
		return 0
	}
	if i := strings.Index(hay, query); i >= 0 {
		// Where in the text does not matter (ties keep id order); a
		// match at the start of a word or a whole word does.
		score := 10000
		if i == 0 || hay[i-1] == ' ' || hay[i-1] == '.' || hay[i-1] == '-' {
			score += 2000
			if j := i + len(query); j == len(hay) || hay[j] == ' ' {
				score += 1000
			}
		}
		return score
	}
	// Subsequence, greedy from the left, counting gaps.
	score, qi, last := 5000, 0, -1
	for hi := 0; hi < len(hay) && qi < len(query); hi++ {
		if hay[hi] != query[qi] {
			continue
		}
		if last >= 0 && hi != last+1 {
			score -= 10 + (hi - last)
		}
		if hi > 0 && (hay[hi-1] == ' ' || hay[hi-1] == '.' || hay[hi-1] == '-') {
			score += 5
		}
		last = hi
		qi++
	}
	if qi < len(query) {
		return -1
	}
	return max(score-last, 1)
}

// filterRows returns the indexes of the sites matching query, best first
// (by id when the query is empty). rows is reused when it has room.
func filterRows(hay []string, list []sites.Site, query string, rows []int) []int {
	rows = rows[:0]
	q := strings.ToLower(strings.TrimSpace(query))
	if q == "" {
		for i := range list {
			rows = append(rows, i)
		}
		return rows
	}
	scores := make([]int, len(hay))
	for i, h := range hay {
		if sc := fuzzyScore(h, q); sc >= 0 {
			scores[i] = sc
			rows = append(rows, i)
		}
	}
	sort.SliceStable(rows, func(a, b int) bool { return scores[rows[a]] > scores[rows[b]] })
	return rows
}
