// The client matrix's steps (../README.md) with Go's database/sql and go-sql-driver/mysql.
// Built in GOPATH mode against Debian's packaged driver; prints one JSON line per step.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"
)

const (
	emoji     = "😀 ok 🎉 ünï"
	paramText = "it's \"q\" \\ ünï 😀"
	itemsFrom = "SELECT id, name, price FROM items WHERE id >= ? ORDER BY id LIMIT 3"
	sentence  = "I love this, thank you!"
)

var ctx = context.Background()

// verdict is a step's detail with its own judgement (the error step, the emoji round trip).
type verdict struct {
	detail interface{}
	ok     bool
}

type run struct {
	db   *sql.DB
	conn *sql.Conn
}

func dsn(options string) string {
	base := fmt.Sprintf("%s:%s@tcp(%s:%s)/%s", os.Getenv("MX_USER"), os.Getenv("MX_PASSWORD"),
		os.Getenv("MX_HOST"), os.Getenv("MX_PORT"), os.Getenv("MX_DATABASE"))
	if options == "" {
		return base
	}
	return base + "?" + options
}

// open returns one connection of a new pool (the steps need one session).
func open(options string) (*sql.DB, *sql.Conn, error) {
	db, err := sql.Open("mysql", dsn(options))
	if err != nil {
		return nil, nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, conn, nil
}

func (r *run) main() (*sql.Conn, error) {
	if r.conn == nil {
		db, conn, err := open("")
		if err != nil {
			return nil, err
		}
		r.db, r.conn = db, conn
	}
	return r.conn, nil
}

func text(value sql.NullString) interface{} {
	if !value.Valid {
		return nil
	}
	return value.String
}

func collect(rows *sql.Rows) ([][]interface{}, error) {
	defer rows.Close()
	return collectSet(rows)
}

func queryOn(conn *sql.Conn, query string, args ...interface{}) ([][]interface{}, error) {
	rows, err := conn.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows)
}

func (r *run) query(query string, args ...interface{}) ([][]interface{}, error) {
	conn, err := r.main()
	if err != nil {
		return nil, err
	}
	return queryOn(conn, query, args...)
}

func (r *run) exec(query string, args ...interface{}) error {
	conn, err := r.main()
	if err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, query, args...)
	return err
}

func (r *run) first(query string) (interface{}, error) {
	rows, err := r.query(query)
	if err != nil {
		return nil, err
	}
	return rows[0][0], nil
}

func items(conn *sql.Conn) (interface{}, error) {
	results := []interface{}{}
	for _, start := range []int{2, 8} {
		rows, err := queryOn(conn, itemsFrom, start)
		if err != nil {
			return nil, err
		}
		results = append(results, rows)
	}
	return results, nil
}

func (r *run) steps() []struct {
	name string
	run  func() (interface{}, error)
} {
	return []struct {
		name string
		run  func() (interface{}, error)
	}{
		{"connect", func() (interface{}, error) {
			r.conn = nil
			return r.first("SELECT CURRENT_USER()")
		}},
		{"connect_tls", func() (interface{}, error) {
			pem, err := os.ReadFile(os.Getenv("MX_TLS_CA"))
			if err != nil {
				return nil, err
			}
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(pem)
			// The driver checks the host name (ServerName) against the certificate.
			if err := mysql.RegisterTLSConfig("matrix", &tls.Config{RootCAs: roots}); err != nil {
				return nil, err
			}
			db, conn, err := open("tls=matrix")
			if err != nil {
				return nil, err
			}
			defer db.Close()
			defer conn.Close()
			rows, err := queryOn(conn, "SELECT CURRENT_USER()")
			if err != nil {
				return nil, err
			}
			return rows[0][0], nil
		}},
		// Without interpolateParams the driver prepares every statement with
		// arguments on the server.
		{"params", func() (interface{}, error) {
			return r.query("SELECT ? AS i, ? AS s, ? AS n", 42, paramText, nil)
		}},
		{"server_prepared", func() (interface{}, error) {
			conn, err := r.main()
			if err != nil {
				return nil, err
			}
			return items(conn)
		}},
		{"client_prepared", func() (interface{}, error) {
			db, conn, err := open("interpolateParams=true")
			if err != nil {
				return nil, err
			}
			defer db.Close()
			defer conn.Close()
			return items(conn)
		}},
		{"transaction", func() (interface{}, error) {
			if err := r.exec("DELETE FROM scratch"); err != nil {
				return nil, err
			}
			tx, err := r.conn.BeginTx(ctx, nil)
			if err != nil {
				return nil, err
			}
			defer tx.Rollback()
			if _, err := tx.Exec("INSERT INTO scratch (id, txt) VALUES (?, ?)", 1, "in a transaction"); err != nil {
				return nil, err
			}
			var inside, after sql.NullString
			if err := tx.QueryRow("SELECT COUNT(*) FROM scratch").Scan(&inside); err != nil {
				return nil, err
			}
			if err := tx.Rollback(); err != nil {
				return nil, err
			}
			if err := r.conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM scratch").Scan(&after); err != nil {
				return nil, err
			}
			return []interface{}{text(inside), text(after)}, nil
		}},
		{"call", func() (interface{}, error) {
			conn, err := r.main()
			if err != nil {
				return nil, err
			}
			rows, err := conn.QueryContext(ctx, "CALL items_upto(3)")
			if err != nil {
				return nil, err
			}
			all := [][]interface{}{}
			for {
				part, err := collectSet(rows)
				if err != nil {
					rows.Close()
					return nil, err
				}
				all = append(all, part...)
				if !rows.NextResultSet() {
					break
				}
			}
			rows.Close()
			after, err := r.first("SELECT 1")
			if err != nil {
				return nil, err
			}
			return map[string]interface{}{"rows": all, "after": after}, nil
		}},
		{"big_result", func() (interface{}, error) {
			conn, err := r.main()
			if err != nil {
				return nil, err
			}
			rows, err := conn.QueryContext(ctx, "SELECT seq, CONCAT('row-', seq) FROM seq_1_to_100000")
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var count, sum, chars int64
			for rows.Next() {
				var seq int64
				var label string
				if err := rows.Scan(&seq, &label); err != nil {
					return nil, err
				}
				count++
				sum += seq
				chars += int64(utf8.RuneCountInString(label))
			}
			if err := rows.Err(); err != nil {
				return nil, err
			}
			return map[string]interface{}{"rows": count, "sum": sum, "chars": chars}, nil
		}},
		{"emoji", func() (interface{}, error) {
			if err := r.exec("DELETE FROM scratch"); err != nil {
				return nil, err
			}
			if err := r.exec("INSERT INTO scratch (id, txt) VALUES (?, ?)", 2, emoji); err != nil {
				return nil, err
			}
			rows, err := r.query("SELECT txt, CHAR_LENGTH(txt), HEX(txt) FROM scratch")
			if err != nil {
				return nil, err
			}
			return verdict{rows[0], rows[0][0] == emoji}, nil
		}},
		{"ml_constant", func() (interface{}, error) {
			return r.query(fmt.Sprintf("SELECT aws_comprehend_detect_sentiment('%s', 'en'),"+
				" aws_comprehend_detect_sentiment_confidence('%s', 'en')", sentence, sentence))
		}},
		{"ml_column", func() (interface{}, error) {
			rows, err := r.query("SELECT id, aws_comprehend_detect_sentiment(txt, 'en') FROM ml_texts ORDER BY id")
			if err != nil {
				return nil, err
			}
			labels := make([]interface{}, len(rows))
			for i, row := range rows {
				labels[i] = row[1]
			}
			return map[string]interface{}{"rows": len(rows), "labels": labels}, nil
		}},
		{"error_1146", func() (interface{}, error) {
			_, err := r.query("SELECT * FROM no_such_table")
			var found *mysql.MySQLError
			if !errors.As(err, &found) {
				return verdict{map[string]interface{}{"error": fmt.Sprint(err)}, false}, nil
			}
			after, err := r.first("SELECT 1")
			if err != nil {
				return nil, err
			}
			// go-sql-driver 1.5 keeps no SQLSTATE.
			detail := map[string]interface{}{"code": found.Number, "sqlstate": nil, "after": after}
			return verdict{detail, found.Number == 1146}, nil
		}},
		{"close", func() (interface{}, error) {
			conn, err := r.main()
			if err != nil {
				return nil, err
			}
			r.conn = nil
			if err := conn.Close(); err != nil {
				return nil, err
			}
			return nil, r.db.Close()
		}},
	}
}

// collectSet reads the current result set without closing rows (CALL has several).
func collectSet(rows *sql.Rows) ([][]interface{}, error) {
	columns, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	out := [][]interface{}{}
	for rows.Next() {
		values := make([]sql.NullString, len(columns))
		targets := make([]interface{}, len(columns))
		for i := range values {
			targets[i] = &values[i]
		}
		if err := rows.Scan(targets...); err != nil {
			return nil, err
		}
		row := make([]interface{}, len(columns))
		for i, v := range values {
			row[i] = text(v)
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

func report(step string, ok bool, detail interface{}) {
	line, _ := json.Marshal(map[string]interface{}{"step": step, "ok": ok, "detail": detail})
	fmt.Println(string(line))
}

func (r *run) reset() {
	if r.conn == nil {
		return
	}
	if _, err := r.conn.ExecContext(ctx, "SELECT 1"); err != nil {
		r.conn.Close()
		r.db.Close()
		r.conn = nil
	}
}

func main() {
	r := &run{}
	for _, step := range r.steps() {
		result, err := step.run()
		if err != nil {
			detail := map[string]interface{}{"error": err.Error()}
			var found *mysql.MySQLError
			if errors.As(err, &found) {
				detail["code"] = found.Number
			}
			report(step.name, false, detail)
			r.reset()
			continue
		}
		if v, ok := result.(verdict); ok {
			report(step.name, v.ok, v.detail)
		} else {
			report(step.name, true, result)
		}
	}
}
