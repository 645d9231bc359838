package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
)

func newForwardCmd(g *globals) *cobra.Command {
	var listen, to, check string
	c := &cobra.Command{
		Use:   "forward --listen 127.0.0.1:PORT --to /run/aar/lab.sock | --check 127.0.0.1:PORT",
		Short: "Forward a loopback TCP port to the lab's Unix socket (inside a sandbox, for agents that speak only HTTP over TCP)",
		Long: `Forward accepts TCP connections on --listen (a loopback address) and joins
each to the Unix socket --to, byte for byte, until both sides close. An
agent CLI in a sandbox (which has no network, only the lab's socket) can
then use http://127.0.0.1:PORT as the lab's address: the metering model
proxy (/v1/proxy/anthropic, /v1/proxy/openai/v1) and the API. The agent-cli
backend starts it. --check ADDR exits 0 once ADDR accepts connections.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if check != "" {
				conn, err := net.DialTimeout("tcp", check, time.Second)
				if err != nil {
					return err
				}
				conn.Close()
				return nil
			}
			if listen == "" || to == "" {
				return usagef("give --listen 127.0.0.1:PORT and --to SOCKET")
			}
			host, _, err := net.SplitHostPort(listen)
			if err != nil {
				return usagef("--listen %q: %v", listen, err)
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				return usagef("--listen %q: forward only listens on a loopback address (127.0.0.1)", listen)
			}
			return forward(cmd.Context(), listen, strings.TrimPrefix(to, "unix://"), g.stderr)
		},
	}
	f := c.Flags()
	f.StringVar(&listen, "listen", "", "loopback TCP address to accept on")
	f.StringVar(&to, "to", "", "the Unix socket to join connections to")
	f.StringVar(&check, "check", "", "exit 0 when this TCP address accepts a connection")
	return c
}

// forward serves until ctx ends.
func forward(ctx context.Context, listen, socket string, log io.Writer) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("unix", socket)
			if err != nil {
				fmt.Fprintf(log, "forward: %v\n", err)
				return
			}
			defer u.Close()
			var wg sync.WaitGroup
			wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer wg.Done()
				_, _ = io.Copy(dst, src)
				if cw, ok := dst.(interface{ CloseWrite() error }); ok {
					_ = cw.CloseWrite()
				}
			}
			go pipe(u, c)
			go pipe(c, u)
			wg.Wait()
		}()
	}
}
