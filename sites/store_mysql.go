package sites

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// defaultMySQLSockets are where MySQL and MariaDB servers put their socket
// (Debian and Ubuntu, older Debian, macOS/Homebrew, Red Hat). The client
// library connects through it when the host is empty or "localhost".
func defaultMySQLSockets() []string {
	return []string{"/run/mysqld/mysqld.sock", "/var/run/mysqld/mysqld.sock", "/tmp/mysql.sock", "/var/lib/mysql/mysql.sock"}
}

// mysqlAddress is the network and address to dial for d, and d with Host
// set to the socket when one is used (for messages). Like the client
// library, an empty host or "localhost" means the server's unix socket;
// siteplex falls back to TCP on localhost when no socket file exists.
func mysqlAddress(d DB) (network, addr string, shown DB) {
	if strings.HasPrefix(d.Host, "/") {
		return "unix", d.Host, d
	}
	if d.Host == "" || strings.EqualFold(d.Host, "localhost") {
		for _, s := range defaultMySQLSockets() {
			if st, err := os.Stat(s); err == nil && st.Mode()&os.ModeSocket != 0 {
				d.Host = s
				return "unix", s, d
			}
		}
	}
	return "tcp", d.HostPort(), d
}

// quietLogger drops the driver's own log lines: every failure reaches the
// caller as an error.
type quietLogger struct{}

func (quietLogger) Print(...any) {}

// mysqlConfig is the driver configuration for d. It holds the password:
// never print it. The session gets PIPES_AS_CONCAT and ANSI_QUOTES added
// to its sql_mode, so that `||` and "identifiers" mean what they mean on
// PostgreSQL and SQLite, and STRICT_TRANS_TABLES, so that a too-long value
// is an error instead of being cut.
func mysqlConfig(d DB) (*mysql.Config, DB, error) {
	c := mysql.NewConfig()
	c.Net, c.Addr, d = mysqlAddress(d)
	c.User, c.Passwd, c.DBName = d.User, d.Password, d.Database
	if c.User == "" {
		// The client library logs in as the operating system user.
		if u, err := user.Current(); err == nil {
			c.User = u.Username
		}
	}
	c.Logger = quietLogger{}
	c.ClientFoundRows = true // rows matched, not changed, as on PostgreSQL (Django sets it too)
	c.Timeout = 5 * time.Second
	if v := d.Params.Get("connect_timeout"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			c.Timeout = time.Duration(n) * time.Second
		}
	}
	// The server must greet within the connect timeout too: a server that
	// is not MySQL (PostgreSQL waits for the client to speak) fails at once
	// with a message that says so, not after minutes (protocol.go).
	timeout, source := c.Timeout, d.Source
	c.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialMySQL(ctx, network, addr, timeout, source)
	}
	c.ReadTimeout, c.WriteTimeout = 2*time.Minute, 2*time.Minute
	c.Params = map[string]string{"sql_mode": "CONCAT(@@sql_mode, ',PIPES_AS_CONCAT,ANSI_QUOTES,STRICT_TRANS_TABLES')"}
	tc, preferred, err := mysqlTLS(d, c.Net)
	if err != nil {
		return nil, d, err
	}
	if tc != nil {
		c.TLS = tc
	} else if preferred {
		c.TLSConfig = "preferred" // TLS when the server offers it, unverified, as the client library does
	}
	return c, d, nil
}

// mysqlTLS builds the TLS configuration of ssl_mode and ssl-ca/-cert/-key.
// With neither, or PREFERRED without files, it returns nil and preferred
// true on TCP: TLS if the server offers it. DISABLED, and a socket without
// options, mean plain text.
func mysqlTLS(d DB, network string) (tc *tls.Config, preferred bool, err error) {
	mode := d.Params.Get("ssl_mode")
	ca, cert, key := d.Params.Get("ssl-ca"), d.Params.Get("ssl-cert"), d.Params.Get("ssl-key")
	files := ca != "" || cert != "" || key != ""
	switch {
	case mode == "DISABLED":
		return nil, false, nil
	case (mode == "" || mode == "PREFERRED") && !files:
		return nil, network == "tcp", nil
	}
	host, _, _ := net.SplitHostPort(d.HostPort())
	tc = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, false, Usagef("MySQL option ssl-ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, false, Usagef("MySQL option ssl-ca: %s holds no PEM certificate", ca)
		}
		tc.RootCAs = pool
	}
	if cert != "" || key != "" {
		if cert == "" || key == "" {
			return nil, false, Usagef("MySQL options ssl-cert and ssl-key go together: give both")
		}
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, false, Usagef("MySQL options ssl-cert/ssl-key: %v", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	switch {
	case mode == "VERIFY_IDENTITY":
		// The standard verification: chain and name.
	case mode == "VERIFY_CA" || ca != "":
		// The chain, not the name (VERIFY_CA; a CA with REQUIRED or no
		// mode means the same to the client library).
		tc.InsecureSkipVerify = true
		roots := tc.RootCAs
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	default:
		// REQUIRED: encrypted, not verified.
		tc.InsecureSkipVerify = true
	}
	return tc, false, nil
}

func openMySQL(ctx context.Context, d DB) (*Store, error) {
	c, shown, err := mysqlConfig(d)
	if err != nil {
		return nil, err
	}
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, Usagef("database URL for %s%s: %s", shown.HostPort(), from(shown), scrub(err.Error(), d))
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(4)
	db.SetConnMaxIdleTime(time.Minute) // servers drop idle connections (wait_timeout)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, mysqlError(err, shown)
	}
	return &Store{db: db, cfg: shown}, nil
}

// mysqlError turns a connection or query error into a message a user can
// act on; like pgError, it never holds the password.
func mysqlError(err error, d DB) error {
	var wp *WrongProtocolError
	if errors.As(err, &wp) {
		return wp
	}
	at := d.HostPort()
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1045: // ER_ACCESS_DENIED_ERROR
			return fmt.Errorf("MySQL at %s refused user %q: authentication failed; check the user and password in the database URL%s", at, d.User, from(d))
		case 1044: // ER_DBACCESS_DENIED_ERROR
			return fmt.Errorf("MySQL at %s: user %q may not use database %q; grant it access or fix the database URL%s", at, d.User, d.Database, from(d))
		case 1049: // ER_BAD_DB_ERROR
			return fmt.Errorf("MySQL at %s has no database %q: create it, or fix the name in the database URL%s", at, d.Database, from(d))
		case 1130: // ER_HOST_NOT_PRIVILEGED
			return fmt.Errorf("MySQL at %s does not let user %q connect from this machine%s: %s", at, d.User, from(d), scrub(me.Message, d))
		case 3159: // ER_SECURE_TRANSPORT_REQUIRED
			return fmt.Errorf("MySQL at %s requires TLS%s: add ?ssl_mode=REQUIRED (or OPTIONS ssl) to the database URL", at, from(d))
		}
		return fmt.Errorf("MySQL at %s: %s (error %d)", at, scrub(me.Message, d), me.Number)
	}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "connection refused"):
		return fmt.Errorf("cannot connect to MySQL at %s%s: connection refused; is the server running? Point siteplex elsewhere with --db URL or DATABASE_URL in the env file", at, from(d))
	case strings.HasPrefix(d.Host, "/") && errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("cannot connect to MySQL at %s%s: no socket there; is the server running? Point siteplex elsewhere with --db URL or DATABASE_URL in the env file", at, from(d))
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("cannot connect to MySQL at %s%s: permission denied on the socket; run siteplex as a user who may use it", at, from(d))
	case errors.As(err, &dnsErr):
		return fmt.Errorf("cannot connect to MySQL at %s%s: host %q does not resolve; point siteplex elsewhere with --db URL", at, from(d), d.Host)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "timeout"):
		return fmt.Errorf("cannot connect to MySQL at %s%s: timed out; is the server running and reachable? Point siteplex elsewhere with --db URL", at, from(d))
	}
	return fmt.Errorf("cannot connect to MySQL at %s%s: %s", at, from(d), scrub(err.Error(), d))
}
