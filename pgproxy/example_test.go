package pgproxy_test

import (
	"context"
	"log/slog"
	"net"
	"os"

	"github.com/bastion-dev/bastion/pgproxy"
)

// A local listener in front of a database target: each accepted connection
// (or an SSH direct-tcpip channel wrapped as a net.Conn) is one Serve call.
// The client connects without a password; the proxy logs in as the target.
func ExampleProxy_Serve() {
	p := &pgproxy.Proxy{
		Target: pgproxy.Target{
			Name: "orders", Addr: "db.internal:5432", Database: "orders",
			User: "agent_rw", Password: os.Getenv("ORDERS_DB_PASSWORD"),
		},
		Hooks: pgproxy.Hooks{
			Statement: func(ev pgproxy.StatementEvent) error {
				slog.Info("sql", "target", ev.Target, "stmt", ev.Text,
					"decision", ev.Result.Decision, "rows", ev.Rows, "error", ev.SQLState)
				return nil // an error here closes the connection
			},
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:6432")
	if err != nil {
		return
	}
	defer ln.Close()
	ctx := context.Background()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go p.Serve(ctx, c)
	}
}
