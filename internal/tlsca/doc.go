// Package tlsca is siteplex's local certificate authority: the CA created
// once by `siteplex trust` and kept on disk (CAROOT), and the leaf
// certificates the engine issues from it at the TLS handshake, only for the
// names it routes.
//
// The CA is ECDSA P-256, valid ten years, and name-constrained: it may only
// sign localhost, names under .localhost, the loopback addresses and the
// extra domains the user added with `siteplex trust --domain`. Leaves are
// ECDSA P-256, valid 30 days, hold exactly the one name asked for, and are
// cached in memory and in CAROOT/leaves. docs/https.md has the whole model.
//
// The engine uses it as:
//
//	ca, err := tlsca.Load(tlsca.Root(os.Getenv, user))
//	iss, err := tlsca.NewIssuer(ca, tlsca.IssuerOptions{Allowed: routes})
//	srv := &http.Server{Handler: h, TLSConfig: iss.TLSConfig()}
//	srv.ServeTLS(ln, "", "")
//
// This package never installs anything into a trust store (package
// truststore does, when the user runs `siteplex trust`).
package tlsca
