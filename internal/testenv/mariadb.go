package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql" // database/sql driver "mysql"
)

// MariaDB is a running throw-away MariaDB server.
type MariaDB struct {
	Host string
	Port int
	// User is the superuser; it has no password and may connect over TCP
	// from 127.0.0.1 and over Socket.
	User string
	// Socket is the server's unix socket.
	Socket string
	dir    string
	cmd    *exec.Cmd
	exited chan struct{} // closed when the server process has ended
}

// URL returns a mysql:// URL (dj-database-url form) for database name.
func (m *MariaDB) URL(name string) string {
	return fmt.Sprintf("mysql://%s@%s:%d/%s", m.User, m.Host, m.Port, name)
}

// dsn is a go-sql-driver DSN for database name as the superuser. Its
// sessions (the tests' own, not siteplex's) concatenate with || as on the
// other engines and may recurse deep enough for 10,000-row fixtures.
func (m *MariaDB) dsn(name string) string {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr, c.DBName = m.User, "tcp", net.JoinHostPort(m.Host, strconv.Itoa(m.Port)), name
	c.MultiStatements = true
	c.Params = map[string]string{"sql_mode": "CONCAT(@@sql_mode, ',PIPES_AS_CONCAT')", "max_recursive_iterations": "1000000"}
	return c.FormatDSN()
}

// Open connects to database name ("" = none) as the superuser; several
// statements per Exec are allowed.
func (m *MariaDB) Open(t testing.TB, name string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", m.dsn(name))
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	return db
}

// Exec runs statements (several, separated by ';', are fine) in database
// name.
func (m *MariaDB) Exec(t testing.TB, name, sqlText string) {
	t.Helper()
	db := m.Open(t, name)
	defer db.Close()
	execIn(t, db, name, sqlText)
}

// CreateDB creates a fresh database (utf8mb4, the server's default
// collation utf8mb4_general_ci, case-insensitive as in production) and
// returns its URL.
func (m *MariaDB) CreateDB(t testing.TB, name string) string {
	t.Helper()
	m.Exec(t, "", "DROP DATABASE IF EXISTS `"+name+"`; CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4")
	return m.URL(name)
}

// CreatePasswordUser creates user, who must give password to connect
// from 127.0.0.1 and may use every database, and returns a URL for
// database db as that user.
func (m *MariaDB) CreatePasswordUser(t testing.TB, name, password, db string) string {
	t.Helper()
	q := strings.ReplaceAll(password, `\`, `\\`)
	q = strings.ReplaceAll(q, "'", `\'`)
	m.Exec(t, "", fmt.Sprintf("DROP USER IF EXISTS '%[1]s'@'127.0.0.1'; CREATE USER '%[1]s'@'127.0.0.1' IDENTIFIED BY '%[2]s'; GRANT ALL ON *.* TO '%[1]s'@'127.0.0.1'", name, q))
	u := url.URL{Scheme: "mysql", User: url.UserPassword(name, password),
		Host: net.JoinHostPort(m.Host, strconv.Itoa(m.Port)), Path: "/" + db}
	return u.String()
}

// DjangoDB creates database name with the three Django tables, runs stmts
// in it and returns its URL.
func (m *MariaDB) DjangoDB(t testing.TB, name string, stmts ...string) string {
	t.Helper()
	u := m.CreateDB(t, name)
	db := m.Open(t, name)
	defer db.Close()
	for _, q := range djangoStmts("mysql", stmts) {
		execIn(t, db, name, q)
	}
	return u
}

var mariaDB service[*MariaDB]

// StartMariaDB starts (once per test binary) a MariaDB server in a temp
// folder on a free port, as the mysql user when running as root. Without
// mariadb-server installed the test is skipped loudly (Missing). Stop it
// with StopMariaDB from TestMain (Main does); on Linux it also ends with
// the test binary.
func StartMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	return mariaDB.get(t, "MariaDB", startMariaDB)
}

// StopMariaDB stops the server started by StartMariaDB, if any, and
// removes its folder. Call it from TestMain after m.Run.
func StopMariaDB() {
	if mariaDB.inst != nil {
		mariaDB.inst.stop()
	}
}

// stop ends the server and removes its folder.
func (m *MariaDB) stop() {
	stopProcess(m.cmd.Process, m.exited, 30*time.Second)
	os.RemoveAll(m.dir)
}

func startMariaDB() (*MariaDB, error) {
	install, err := findBin("mariadb-server", []string{"/usr/sbin"}, "mariadb-install-db", "mysql_install_db")
	if err != nil {
		return nil, err
	}
	server, err := findBin("mariadb-server", []string{"/usr/sbin"}, "mariadbd", "mysqld")
	if err != nil {
		return nil, err
	}
	dir, uid, gid, err := serverDir("siteplex-mariadb-", "mysql")
	if err != nil {
		return nil, err
	}
	var installUser []string
	if uid >= 0 {
		installUser = []string{"--user=mysql"}
	}
	data := filepath.Join(dir, "data")
	// Small InnoDB files: the server lives for one test binary.
	tuning := []string{"--innodb-log-file-size=16M", "--innodb-buffer-pool-size=64M"}
	args := append([]string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve"}, installUser...)
	cmd := exec.Command(install, append(args, tuning...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%s: %v: %s", filepath.Base(install), err, lastLines(out, 5))
	}
	port, err := FreePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	m := &MariaDB{Host: "127.0.0.1", Port: port, User: "root", Socket: filepath.Join(dir, "sock"), dir: dir, exited: make(chan struct{})}
	errLog := filepath.Join(dir, "error.log")
	// Debian's own configuration makes utf8mb4 with a case-insensitive
	// collation the default; --no-defaults would leave latin1.
	m.cmd = exec.Command(server, append([]string{"--no-defaults", "--datadir=" + data, "--socket=" + m.Socket,
		"--port=" + strconv.Itoa(port), "--bind-address=127.0.0.1", "--skip-networking=0", "--skip-name-resolve",
		"--pid-file=" + filepath.Join(dir, "pid"), "--log-error=" + errLog,
		"--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
		"--innodb-flush-log-at-trx-commit=0", "--skip-log-bin", "--max-connections=300"}, tuning...)...)
	m.cmd.SysProcAttr = serverProcAttr(uid, gid)
	if err := m.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting %s: %w", server, err)
	}
	go func() { m.cmd.Wait(); close(m.exited) }()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db, _ := sql.Open("mysql", m.dsn(""))
	defer db.Close()
	if err := waitReady(ctx, db, m.exited); err != nil {
		log, _ := os.ReadFile(errLog)
		m.stop()
		return nil, fmt.Errorf("%s %v: %s", filepath.Base(server), err, lastLines(log, 8))
	}
	return m, nil
}

// The Django 3.2 DDL of the three tables on MySQL/MariaDB, as
// `manage.py sqlmigrate` and the schema editor print it on MariaDB 10.11
// (python3-mysqldb): the domain's UNIQUE is a separate constraint after
// migrate (sites.0002), as in a real database.
const (
	mysqlSiteDDL = "CREATE TABLE `django_site` (`id` integer AUTO_INCREMENT NOT NULL PRIMARY KEY, `domain` varchar(100) NOT NULL, `name` varchar(50) NOT NULL);\n" +
		"ALTER TABLE `django_site` ADD CONSTRAINT `django_site_domain_a2e37b91_uniq` UNIQUE (`domain`);"
	mysqlAliasDDL = "CREATE TABLE `multisite_alias` (`id` integer AUTO_INCREMENT NOT NULL PRIMARY KEY, `domain` varchar(100) NOT NULL UNIQUE, `site_id` integer NOT NULL, `is_canonical` bool NULL, `redirect_to_canonical` bool NOT NULL);\n" +
		"ALTER TABLE `multisite_alias` ADD CONSTRAINT `multisite_alias_is_canonical_site_id_6bc86489_uniq` UNIQUE (`is_canonical`, `site_id`);\n" +
		"ALTER TABLE `multisite_alias` ADD CONSTRAINT `multisite_alias_site_id_e73f0f15_fk_django_site_id` FOREIGN KEY (`site_id`) REFERENCES `django_site` (`id`);"
	mysqlPlusDDL = "CREATE TABLE `django_multisite_plus_site` (`site_id` integer NOT NULL PRIMARY KEY, `real_domain` varchar(255) NOT NULL, `slug` varchar(255) NOT NULL UNIQUE, `is_enabled` bool NOT NULL, `last_updated_at` datetime(6) NOT NULL, `extra_uwsgi_ini` longtext NOT NULL);\n" +
		"ALTER TABLE `django_multisite_plus_site` ADD CONSTRAINT `django_multisite_plus_site_site_id_8c00306f_fk_django_site_id` FOREIGN KEY (`site_id`) REFERENCES `django_site` (`id`);"
)
