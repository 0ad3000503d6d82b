package sites

import (
	"context"
	"database/sql"
)

// BeginDomainTx begins a transaction with the locks `domains rewrite` and
// `restore` take first (for the tests of those locks).
func BeginDomainTx(ctx context.Context, s *Store) (*sql.Tx, error) {
	d, err := s.domainSQL()
	if err != nil {
		return nil, err
	}
	t, err := s.Tables(ctx)
	if err != nil {
		return nil, err
	}
	return s.beginDomainTx(ctx, d, t.Alias, true)
}
