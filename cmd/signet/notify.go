package main

import (
	"net"
	"os"
)

// sdNotify tells a service manager how serve is doing (systemd's
// Type=notify: "READY=1" once every listener is bound and serving,
// "STOPPING=1", "RELOADING=1"), by one datagram to the unix socket named
// by NOTIFY_SOCKET. Without that variable it does nothing.
func sdNotify(state string) error {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	if name[0] == '@' { // an abstract socket
		name = "\x00" + name[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}
