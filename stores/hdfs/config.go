package hdfs

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/user"
	"path"
	"sort"
	"strings"

	"github.com/colinmarc/hdfs/v2/hadoopconf"
)

// DefaultPort is the namenode RPC port Hadoop assumes when a URI or
// fs.defaultFS names a host without one (dfs.namenode.rpc-address).
const DefaultPort = "8020"

// Config is how the driver reaches HDFS, built from the destination URI,
// the Hadoop configuration files and the environment variables upstream
// MLflow reads (see ConfigFromEnv).
type Config struct {
	// Addresses are the namenodes (host:port) to try, in order; more than
	// one for an HA nameservice.
	Addresses []string
	// Root is the absolute HDFS path the store lives under.
	Root string
	// User is the HDFS user for simple authentication:
	// MLFLOW_KERBEROS_USER, else HADOOP_USER_NAME, else the OS user. With
	// Kerberos the ticket's principal is the user.
	User string
	// Kerberos is set when the cluster wants Kerberos: a ticket cache in
	// MLFLOW_KERBEROS_TICKET_CACHE, or hadoop.security.authentication =
	// kerberos in the Hadoop configuration.
	Kerberos *KerberosConfig
	// UseDatanodeHostname is dfs.client.use.datanode.hostname.
	UseDatanodeHostname bool
	// DataTransferProtection is dfs.data.transfer.protection (or
	// "privacy" when dfs.encrypt.data.transfer is true).
	DataTransferProtection string
	// Conf is the merged Hadoop configuration: core-site.xml and
	// hdfs-site.xml from HADOOP_CONF_DIR (or HADOOP_HOME/conf), then the
	// pairs of MLFLOW_PYARROW_EXTRA_CONF on top.
	Conf hadoopconf.HadoopConf
}

// KerberosConfig is what the Kerberos login needs.
type KerberosConfig struct {
	// TicketCache is the credentials cache: MLFLOW_KERBEROS_TICKET_CACHE,
	// else KRB5CCNAME (without its "FILE:" prefix), else
	// /tmp/krb5cc_<uid>, as MIT Kerberos finds it.
	TicketCache string
	// Krb5Conf is KRB5_CONFIG, else /etc/krb5.conf.
	Krb5Conf string
	// ServicePrincipal is the namenode's principal without the realm
	// (dfs.namenode.kerberos.principal, e.g. "nn/_HOST"; _HOST is
	// replaced by each namenode's host name).
	ServicePrincipal string
}

// ConfigFromEnv builds the configuration for an hdfs:// or viewfs:// URI.
// getenv is os.Getenv outside tests.
//
//   - hdfs://host:port/path names the namenode; hdfs://nameservice/path an
//     HA nameservice (dfs.ha.namenodes.<ns> and
//     dfs.namenode.rpc-address.<ns>.<id>) or, failing that, host:8020;
//     hdfs:///path, hdfs:/path and hdfs://default/path take fs.defaultFS.
//   - viewfs://cluster/path resolves through the mount table
//     fs.viewfs.mounttable.<cluster>.link.<dir> (longest match), then
//     .linkFallback; the store root must lie inside one link.
//   - MLFLOW_PYARROW_EXTRA_CONF ("k1=v1,k2=v2") overrides configuration
//     keys; the ones the Go client acts on are listed on Config.
func ConfigFromEnv(u *url.URL, getenv func(string) string) (Config, error) {
	conf, err := loadConf(getenv)
	if err != nil {
		return Config{}, err
	}
	if extra := getenv("MLFLOW_PYARROW_EXTRA_CONF"); extra != "" {
		pairs, err := parseExtraConf(extra)
		if err != nil {
			return Config{}, err
		}
		for k, v := range pairs {
			conf[k] = v
		}
	}
	cfg := Config{Conf: conf}

	target := u
	if u.Scheme == "viewfs" {
		if target, err = resolveViewFS(u, conf); err != nil {
			return Config{}, err
		}
	}
	if target.Scheme != "hdfs" {
		return Config{}, fmt.Errorf("hdfs: %s resolves to %s://, which this driver does not serve", u.Scheme, target.Scheme)
	}
	if cfg.Addresses, err = namenodes(target.Host, conf); err != nil {
		return Config{}, err
	}
	root := target.Path
	if root == "" && target.Opaque != "" { // hdfs:relative is not a thing; keep it visible
		return Config{}, fmt.Errorf("hdfs: URI path %q is not absolute", target.Opaque)
	}
	cfg.Root = path.Clean("/" + root)

	cfg.User = getenv("MLFLOW_KERBEROS_USER")
	if cfg.User == "" {
		cfg.User = getenv("HADOOP_USER_NAME")
	}
	if cfg.User == "" {
		if cur, err := user.Current(); err == nil {
			cfg.User = cur.Username
		}
	}

	cfg.UseDatanodeHostname = conf["dfs.client.use.datanode.hostname"] == "true"
	prot := strings.Split(strings.ToLower(conf["dfs.data.transfer.protection"]), ",")
	for _, want := range []string{"privacy", "integrity", "authentication"} { // strongest first
		if containsTrimmed(prot, want) {
			cfg.DataTransferProtection = want
			break
		}
	}
	if strings.EqualFold(conf["dfs.encrypt.data.transfer"], "true") {
		cfg.DataTransferProtection = "privacy"
	}

	cache := getenv("MLFLOW_KERBEROS_TICKET_CACHE")
	if cache != "" || strings.EqualFold(conf["hadoop.security.authentication"], "kerberos") {
		k := &KerberosConfig{TicketCache: cache, Krb5Conf: getenv("KRB5_CONFIG")}
		if k.TicketCache == "" {
			k.TicketCache = strings.TrimPrefix(getenv("KRB5CCNAME"), "FILE:")
		}
		if k.TicketCache == "" {
			k.TicketCache = fmt.Sprintf("/tmp/krb5cc_%d", os.Getuid())
		}
		if k.Krb5Conf == "" {
			k.Krb5Conf = "/etc/krb5.conf"
		}
		spn := conf["dfs.namenode.kerberos.principal"]
		if spn == "" {
			return Config{}, errors.New("hdfs: Kerberos is enabled but dfs.namenode.kerberos.principal is not set " +
				"(hdfs-site.xml in HADOOP_CONF_DIR, or MLFLOW_PYARROW_EXTRA_CONF=dfs.namenode.kerberos.principal=nn/_HOST@REALM)")
		}
		k.ServicePrincipal, _, _ = strings.Cut(spn, "@")
		cfg.Kerberos = k
	}
	return cfg, nil
}

func containsTrimmed(list []string, s string) bool {
	for _, v := range list {
		if strings.TrimSpace(v) == s {
			return true
		}
	}
	return false
}

// loadConf reads the Hadoop configuration directory; no directory is an
// empty configuration.
func loadConf(getenv func(string) string) (hadoopconf.HadoopConf, error) {
	var dirs []string
	if d := getenv("HADOOP_CONF_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	if h := getenv("HADOOP_HOME"); h != "" {
		dirs = append(dirs, path.Join(h, "etc", "hadoop"), path.Join(h, "conf"))
	}
	for _, d := range dirs {
		conf, err := hadoopconf.Load(d)
		if err != nil {
			return nil, fmt.Errorf("hdfs: Hadoop configuration in %s: %w", d, err)
		}
		if conf != nil {
			return conf, nil
		}
	}
	return hadoopconf.HadoopConf{}, nil
}

// parseExtraConf parses MLFLOW_PYARROW_EXTRA_CONF: comma-separated
// key=value pairs (a value may itself contain '=').
func parseExtraConf(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("hdfs: MLFLOW_PYARROW_EXTRA_CONF: %q is not key=value", pair)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}

// namenodes turns the authority of an hdfs URI into namenode addresses.
func namenodes(authority string, conf hadoopconf.HadoopConf) ([]string, error) {
	if authority == "" || authority == "default" {
		def := conf["fs.defaultFS"]
		if def == "" {
			def = conf["fs.default.name"] // the pre-2.0 name, still honoured by Hadoop
		}
		if def == "" {
			return nil, errors.New("hdfs: the URI names no namenode and no fs.defaultFS is configured " +
				"(set HADOOP_CONF_DIR to the directory holding core-site.xml, or write hdfs://host:port/path)")
		}
		du, err := url.Parse(def)
		if err != nil || du.Scheme != "hdfs" || du.Host == "" || du.Host == "default" {
			return nil, fmt.Errorf("hdfs: fs.defaultFS %q is not an hdfs://host URI", def)
		}
		authority = du.Host
	}
	host, port, err := net.SplitHostPort(authority)
	if err != nil { // no port
		host, port = authority, ""
	}
	if port != "" && port != "0" {
		return []string{net.JoinHostPort(host, port)}, nil
	}
	if ids := conf["dfs.ha.namenodes."+host]; ids != "" {
		var addrs []string
		for _, id := range strings.Split(ids, ",") {
			id = strings.TrimSpace(id)
			a := conf["dfs.namenode.rpc-address."+host+"."+id]
			if a == "" {
				return nil, fmt.Errorf("hdfs: nameservice %s lists namenode %s but dfs.namenode.rpc-address.%s.%s is not set", host, id, host, id)
			}
			addrs = append(addrs, a)
		}
		return addrs, nil
	}
	if a := conf["dfs.namenode.rpc-address."+host]; a != "" { // a federated nameservice without HA
		return []string{a}, nil
	}
	return []string{net.JoinHostPort(host, DefaultPort)}, nil
}

// resolveViewFS maps a viewfs URI through its mount table onto the URI of
// the file system that holds its path.
func resolveViewFS(u *url.URL, conf hadoopconf.HadoopConf) (*url.URL, error) {
	cluster := u.Host
	if cluster == "" {
		cluster = "default"
	}
	p := path.Clean("/" + u.Path)
	prefix := "fs.viewfs.mounttable." + cluster + ".link."
	var links []string
	for k := range conf {
		if strings.HasPrefix(k, prefix) {
			links = append(links, k[len(prefix):])
		}
	}
	sort.Slice(links, func(i, j int) bool { return len(links[i]) > len(links[j]) }) // longest first
	for _, link := range links {
		l := path.Clean("/" + link)
		if p != l && !strings.HasPrefix(p, strings.TrimSuffix(l, "/")+"/") {
			continue
		}
		return joinTarget(conf[prefix+link], strings.TrimPrefix(p, l))
	}
	for _, link := range links {
		if strings.HasPrefix(strings.TrimSuffix(path.Clean("/"+link), "/")+"/", strings.TrimSuffix(p, "/")+"/") {
			return nil, fmt.Errorf("hdfs: %s spans several viewfs mount points (%s among them); point the store at a path inside one", u.Redacted(), link)
		}
	}
	if fb := conf["fs.viewfs.mounttable."+cluster+".linkFallback"]; fb != "" {
		return joinTarget(fb, p)
	}
	return nil, fmt.Errorf("hdfs: no viewfs mount link of cluster %q covers %s (fs.viewfs.mounttable.%s.link.*)", cluster, p, cluster)
}

func joinTarget(target, rest string) (*url.URL, error) {
	t, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("hdfs: viewfs link target %q: %w", target, err)
	}
	t.Path = path.Join("/", t.Path, rest)
	return t, nil
}
