package sftp

import (
	"fmt"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"

	"github.com/ferryml/ferry/stores"
)

// Environment variables the driver reads (upstream MLflow has none for
// SFTP; these are Ferry's).
const (
	// EnvInsecureIgnoreHostKey ("true"/"1") turns off known_hosts
	// checking. Only for throw-away test servers: without the check a
	// man in the middle gets the password and the artifacts.
	EnvInsecureIgnoreHostKey = "FERRY_SFTP_INSECURE_IGNORE_HOST_KEY"
	// EnvKnownHosts is a list of known_hosts files separated by the OS
	// path-list separator, replacing ~/.ssh/known_hosts and
	// /etc/ssh/ssh_known_hosts.
	EnvKnownHosts = "FERRY_SFTP_KNOWN_HOSTS"
	// EnvIdentityFile is a private key file tried before the ones from
	// ~/.ssh/config (and before the default ~/.ssh/id_* files).
	EnvIdentityFile = "FERRY_SFTP_IDENTITY_FILE"
	// EnvMaxConnections bounds the SSH connections to one server
	// (default 8); more concurrent requests wait for a free one.
	EnvMaxConnections = "FERRY_SFTP_MAX_CONNECTIONS"
	// EnvRequestsInFlight sizes the data the store keeps in flight, in
	// 32 KiB requests (default DefaultRequestsInFlight: 2 MiB), shared by
	// the transfers running at once (inFlightBudget); larger requests
	// (EnvMaxPacket) are counted by their bytes. It sets the memory
	// transfers cost against the speed they reach on a link with latency.
	EnvRequestsInFlight = "FERRY_SFTP_REQUESTS_IN_FLIGHT"
	// EnvMaxPacket is the data size of one SFTP read or write request, in
	// bytes from 1024 to OpenSSHMaxPacket. Unset: OpenSSHMaxPacket when
	// the server is OpenSSH advertising limits@openssh.com, else the 32
	// KiB every server must accept. 32768 turns large packets off.
	EnvMaxPacket = "FERRY_SFTP_MAX_PACKET"
)

// Packet sizes (request payloads). BasePacket is what SFTP servers must
// accept (draft-ietf-secsh-filexfer); OpenSSHMaxPacket is OpenSSH's
// sftp-server read and write limit (its 256 KiB message limit less 1 KiB,
// what its limits@openssh.com reply states).
const (
	BasePacket       = 32 << 10
	OpenSSHMaxPacket = 255 << 10
)

// DefaultRequestsInFlight is the requests in flight per transfer when
// EnvRequestsInFlight is unset (see stores/sftp/NOTES.md for the
// measurements behind it).
const DefaultRequestsInFlight = 64

// Config is everything needed to reach one SFTP store.
type Config struct {
	// Alias is the host as written in the URI: a name ~/.ssh/config may
	// map to a HostName.
	Alias string
	// Host and Port are the address dialled.
	Host string
	Port int
	User string
	// Password, when HasPassword, is tried first (password and
	// keyboard-interactive).
	Password    string
	HasPassword bool
	// Root is the store's directory on the server ("." is the login
	// directory).
	Root string
	// IdentityFiles are private keys to try; unreadable or
	// passphrase-protected ones are skipped (the agent may hold them).
	IdentityFiles []string
	// UseAgent tries the keys of the ssh-agent at $SSH_AUTH_SOCK.
	UseAgent bool
	// KnownHosts are the known_hosts files checked; InsecureIgnoreHostKey
	// skips the check.
	KnownHosts            []string
	InsecureIgnoreHostKey bool
	// MaxConnections bounds the pool (default 8).
	MaxConnections int
	// RequestsInFlight, in 32 KiB requests, sizes the store's in-flight
	// budget: RequestsInFlight·32 KiB in all, shared by the transfers
	// running at once (default DefaultRequestsInFlight).
	RequestsInFlight int
	// MaxPacket is the request payload size; 0 chooses per server (see
	// EnvMaxPacket).
	MaxPacket int
	// DialTimeout bounds connecting and the SSH handshake (default 30 s).
	DialTimeout time.Duration
}

// Addr is "host:port".
func (c Config) Addr() string {
	return netJoin(c.Host, c.Port)
}

func netJoin(host string, port int) string {
	if strings.Contains(host, ":") {
		return fmt.Sprintf("[%s]:%d", host, port)
	}
	return fmt.Sprintf("%s:%d", host, port)
}

// ConfigFromURL builds the configuration for
// sftp://[user[:password]@]host[:port]/path as upstream does: the URI
// first, then ~/.ssh/config (HostName, User, Port, IdentityFile) for what
// it leaves out, then the defaults (local user name, port 22). Errors
// never repeat the password.
func ConfigFromURL(u *url.URL) (Config, error) {
	c := Config{Alias: u.Hostname(), UseAgent: os.Getenv("SSH_AUTH_SOCK") != ""}
	if c.Alias == "" {
		return c, fmt.Errorf("sftp URI names no host: %w", stores.ErrInvalidKey)
	}
	if u.User != nil {
		c.User = u.User.Username()
		c.Password, c.HasPassword = u.User.Password()
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return c, fmt.Errorf("sftp URI: invalid port %q: %w", p, stores.ErrInvalidKey)
		}
		c.Port = n
	}
	c.Root = u.Path
	if c.Root == "" {
		c.Root = "."
	}

	home, _ := os.UserHomeDir()
	sshCfg := loadSSHConfig(home)
	c.Host = sshCfg.get(c.Alias, "HostName")
	if c.Host == "" {
		c.Host = c.Alias
	}
	if c.User == "" {
		c.User = sshCfg.get(c.Alias, "User")
	}
	if c.User == "" {
		if cu, err := user.Current(); err == nil {
			c.User = cu.Username
		}
	}
	if c.Port == 0 {
		if p := sshCfg.get(c.Alias, "Port"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n <= 0 || n > 65535 {
				return c, fmt.Errorf("~/.ssh/config: invalid Port %q for %s: %w", p, c.Alias, stores.ErrInvalidKey)
			}
			c.Port = n
		}
	}
	if c.Port == 0 {
		c.Port = 22
	}
	c.Host = expandTokens(c.Host, c, home)

	if f := os.Getenv(EnvIdentityFile); f != "" {
		c.IdentityFiles = append(c.IdentityFiles, expandTokens(f, c, home))
	}
	ids := sshCfg.getAll(c.Alias, "IdentityFile")
	if len(ids) == 0 && home != "" {
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			ids = append(ids, filepath.Join(home, ".ssh", n))
		}
	}
	for _, f := range ids {
		c.IdentityFiles = append(c.IdentityFiles, expandTokens(f, c, home))
	}
	if strings.EqualFold(sshCfg.get(c.Alias, "IdentitiesOnly"), "yes") {
		c.UseAgent = false
	}

	if v := os.Getenv(EnvKnownHosts); v != "" {
		c.KnownHosts = filepath.SplitList(v)
	} else {
		for _, f := range strings.Fields(sshCfg.get(c.Alias, "UserKnownHostsFile")) {
			c.KnownHosts = append(c.KnownHosts, expandTokens(f, c, home))
		}
		if len(c.KnownHosts) == 0 && home != "" {
			c.KnownHosts = append(c.KnownHosts, filepath.Join(home, ".ssh", "known_hosts"))
		}
		c.KnownHosts = append(c.KnownHosts, "/etc/ssh/ssh_known_hosts")
	}
	insecure, err := parseBool(EnvInsecureIgnoreHostKey)
	if err != nil {
		return c, err
	}
	c.InsecureIgnoreHostKey = insecure

	if c.MaxConnections, err = intEnv(EnvMaxConnections, 8, 1, 1024); err != nil {
		return c, err
	}
	if c.RequestsInFlight, err = intEnv(EnvRequestsInFlight, DefaultRequestsInFlight, 1, 1024); err != nil {
		return c, err
	}
	if c.MaxPacket, err = intEnv(EnvMaxPacket, 0, 1024, OpenSSHMaxPacket); err != nil {
		return c, err
	}
	c.DialTimeout = 30 * time.Second
	return c, nil
}

// intEnv reads a number from lo to hi from the env var name, def when it
// is unset.
func intEnv(name string, def, lo, hi int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return def, fmt.Errorf("%s=%q: want a number from %d to %d", name, v, lo, hi)
	}
	return n, nil
}

// parseBool reads a boolean env var the way MLflow does: true/false/1/0,
// case-insensitive, anything else is an error.
func parseBool(name string) (bool, error) {
	switch strings.ToLower(os.Getenv(name)) {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	}
	return false, fmt.Errorf("%s=%q: want true, false, 1 or 0", name, os.Getenv(name))
}

// sshConfigs are the user's and the system's ssh_config, in precedence
// order; a missing or unparsable file is skipped, as ssh would refuse it
// loudly but upstream's paramiko ignores what it cannot read.
type sshConfigs []*ssh_config.Config

func loadSSHConfig(home string) sshConfigs {
	var out sshConfigs
	var files []string
	if home != "" {
		files = append(files, filepath.Join(home, ".ssh", "config"))
	}
	files = append(files, "/etc/ssh/ssh_config")
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		cfg, err := ssh_config.Decode(fh)
		fh.Close()
		if err == nil {
			out = append(out, cfg)
		}
	}
	return out
}

func (cs sshConfigs) get(alias, key string) string {
	for _, c := range cs {
		if v, err := c.Get(alias, key); err == nil && v != "" {
			return v
		}
	}
	return ""
}

func (cs sshConfigs) getAll(alias, key string) []string {
	for _, c := range cs {
		if v, err := c.GetAll(alias, key); err == nil && len(v) > 0 {
			return v
		}
	}
	return nil
}

// expandTokens expands the ssh_config tokens Ferry's users meet in
// IdentityFile and HostName: a leading ~, %d (home), %u (local user), %h
// (host), %r (remote user), %p (port) and %%.
func expandTokens(s string, c Config, home string) string {
	if strings.HasPrefix(s, "~/") && home != "" {
		s = filepath.Join(home, s[2:])
	}
	if !strings.Contains(s, "%") {
		return s
	}
	local := ""
	if cu, err := user.Current(); err == nil {
		local = cu.Username
	}
	return strings.NewReplacer("%%", "%", "%d", home, "%u", local, "%h", c.Host,
		"%r", c.User, "%p", strconv.Itoa(c.Port)).Replace(s)
}
