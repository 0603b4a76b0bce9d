package hdfs

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferryml/ferry/stores"
)

// writeConf writes core-site.xml and hdfs-site.xml into a fresh
// directory, as HADOOP_CONF_DIR holds them.
func writeConf(t *testing.T, core, hdfsSite map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, props := range map[string]map[string]string{"core-site.xml": core, "hdfs-site.xml": hdfsSite} {
		var b strings.Builder
		b.WriteString("<?xml version=\"1.0\"?>\n<configuration>\n")
		for k, v := range props {
			fmt.Fprintf(&b, "  <property><name>%s</name><value>%s</value></property>\n", k, v)
		}
		b.WriteString("</configuration>\n")
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := stores.ParseURI(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestConfigNamenodes(t *testing.T) {
	haConf := writeConf(t,
		map[string]string{"fs.defaultFS": "hdfs://mycluster"},
		map[string]string{
			"dfs.nameservices":                       "mycluster,other",
			"dfs.ha.namenodes.mycluster":             "nn1, nn2",
			"dfs.namenode.rpc-address.mycluster.nn1": "nn1.example.com:8020",
			"dfs.namenode.rpc-address.mycluster.nn2": "nn2.example.com:8020",
			"dfs.namenode.rpc-address.other":         "other.example.com:9000",
		})
	plainConf := writeConf(t, map[string]string{"fs.defaultFS": "hdfs://namenode.example.com:9820"}, nil)
	noPortConf := writeConf(t, map[string]string{"fs.defaultFS": "hdfs://namenode.example.com"}, nil)
	tests := []struct {
		uri, confDir string
		addrs        []string
		root         string
	}{
		{"hdfs://nn:8020/mlflow/artifacts", "", []string{"nn:8020"}, "/mlflow/artifacts"},
		{"hdfs://nn/a", "", []string{"nn:8020"}, "/a"},
		{"hdfs://nn:0/a", "", []string{"nn:8020"}, "/a"},
		{"hdfs://nn:8020", "", []string{"nn:8020"}, "/"},
		{"hdfs://[::1]:9000/x/", "", []string{"[::1]:9000"}, "/x"},
		{"hdfs:///a/b", plainConf, []string{"namenode.example.com:9820"}, "/a/b"},
		{"hdfs:/a/b", plainConf, []string{"namenode.example.com:9820"}, "/a/b"},
		{"hdfs://default/a", plainConf, []string{"namenode.example.com:9820"}, "/a"},
		{"hdfs:///a", noPortConf, []string{"namenode.example.com:8020"}, "/a"},
		{"hdfs:///a", haConf, []string{"nn1.example.com:8020", "nn2.example.com:8020"}, "/a"},
		{"hdfs://mycluster/a", haConf, []string{"nn1.example.com:8020", "nn2.example.com:8020"}, "/a"},
		{"hdfs://other/a", haConf, []string{"other.example.com:9000"}, "/a"},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			cfg, err := ConfigFromEnv(mustParse(t, tt.uri), env(map[string]string{"HADOOP_CONF_DIR": tt.confDir, "HADOOP_USER_NAME": "u"}))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.Addresses, tt.addrs) || cfg.Root != tt.root {
				t.Fatalf("addresses %q root %q; want %q %q", cfg.Addresses, cfg.Root, tt.addrs, tt.root)
			}
		})
	}
	if _, err := ConfigFromEnv(mustParse(t, "hdfs:///a"), env(nil)); err == nil || !strings.Contains(err.Error(), "fs.defaultFS") {
		t.Fatalf("hdfs:/// without configuration = %v; want an error naming fs.defaultFS", err)
	}
	bad := writeConf(t, nil, map[string]string{"dfs.ha.namenodes.ns": "a,b", "dfs.namenode.rpc-address.ns.a": "h:1"})
	if _, err := ConfigFromEnv(mustParse(t, "hdfs://ns/x"), env(map[string]string{"HADOOP_CONF_DIR": bad})); err == nil || !strings.Contains(err.Error(), "rpc-address.ns.b") {
		t.Fatalf("HA nameservice missing an address = %v", err)
	}
}

func TestConfigViewFS(t *testing.T) {
	dir := writeConf(t, map[string]string{
		"fs.viewfs.mounttable.cluster.link./data":        "hdfs://nn1:8020/warehouse",
		"fs.viewfs.mounttable.cluster.link./data/models": "hdfs://nn2:8020/models",
		"fs.viewfs.mounttable.cluster.link./user":        "hdfs://nn1:8020/home",
		"fs.viewfs.mounttable.default.link./ml":          "hdfs://nn3:8020/",
		"fs.viewfs.mounttable.fb.linkFallback":           "hdfs://nn4:8020/fallback",
	}, nil)
	tests := []struct{ uri, addr, root string }{
		{"viewfs://cluster/data/mlflow", "nn1:8020", "/warehouse/mlflow"},
		{"viewfs://cluster/data/models/m1", "nn2:8020", "/models/m1"}, // the longest link wins
		{"viewfs://cluster/data", "nn1:8020", "/warehouse"},
		{"viewfs://cluster/user/alice/art", "nn1:8020", "/home/alice/art"},
		{"viewfs:///ml/x", "nn3:8020", "/x"},
		{"viewfs://fb/anything", "nn4:8020", "/fallback/anything"},
	}
	for _, tt := range tests {
		cfg, err := ConfigFromEnv(mustParse(t, tt.uri), env(map[string]string{"HADOOP_CONF_DIR": dir, "HADOOP_USER_NAME": "u"}))
		if err != nil {
			t.Fatalf("%s: %v", tt.uri, err)
		}
		if !slices.Equal(cfg.Addresses, []string{tt.addr}) || cfg.Root != tt.root {
			t.Errorf("%s → %q %q; want %q %q", tt.uri, cfg.Addresses, cfg.Root, tt.addr, tt.root)
		}
	}
	for _, uri := range []string{"viewfs://cluster/elsewhere", "viewfs://cluster/", "viewfs://nosuch/x"} {
		if _, err := ConfigFromEnv(mustParse(t, uri), env(map[string]string{"HADOOP_CONF_DIR": dir})); err == nil {
			t.Errorf("%s resolved; want an error (no link covers it)", uri)
		}
	}
}

// TestConfigEnv maps upstream's environment variables onto the client's
// options. Kerberos itself cannot be exercised here (no KDC): this checks
// what reaches the client, and that a broken setup fails at start-up with
// a message naming what is missing.
func TestConfigEnv(t *testing.T) {
	u := mustParse(t, "hdfs://nn:8020/a")
	t.Run("user", func(t *testing.T) {
		cfg, _ := ConfigFromEnv(u, env(map[string]string{"MLFLOW_KERBEROS_USER": "alice", "HADOOP_USER_NAME": "bob"}))
		if cfg.User != "alice" || cfg.Kerberos != nil {
			t.Fatalf("user %q, kerberos %+v; want alice without Kerberos (a user alone does not enable it)", cfg.User, cfg.Kerberos)
		}
		cfg, _ = ConfigFromEnv(u, env(map[string]string{"HADOOP_USER_NAME": "bob"}))
		if cfg.User != "bob" {
			t.Fatalf("user %q; want HADOOP_USER_NAME", cfg.User)
		}
	})
	t.Run("extra conf", func(t *testing.T) {
		cfg, err := ConfigFromEnv(u, env(map[string]string{"MLFLOW_PYARROW_EXTRA_CONF": "dfs.client.use.datanode.hostname=true, dfs.data.transfer.protection=integrity,x.y=a=b"}))
		if err != nil {
			t.Fatal(err)
		}
		if !cfg.UseDatanodeHostname || cfg.DataTransferProtection != "integrity" || cfg.Conf["x.y"] != "a=b" {
			t.Fatalf("config %+v", cfg)
		}
		for _, bad := range []string{"novalue", "=v", "a=1,,b=2"} {
			if _, err := ConfigFromEnv(u, env(map[string]string{"MLFLOW_PYARROW_EXTRA_CONF": bad})); err == nil {
				t.Errorf("MLFLOW_PYARROW_EXTRA_CONF=%q accepted", bad)
			}
		}
	})
	t.Run("extra conf overrides the files", func(t *testing.T) {
		dir := writeConf(t, map[string]string{"fs.defaultFS": "hdfs://from-file:1"}, map[string]string{"dfs.encrypt.data.transfer": "true"})
		cfg, err := ConfigFromEnv(mustParse(t, "hdfs:///a"), env(map[string]string{"HADOOP_CONF_DIR": dir, "MLFLOW_PYARROW_EXTRA_CONF": "fs.defaultFS=hdfs://from-env:2"}))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(cfg.Addresses, []string{"from-env:2"}) || cfg.DataTransferProtection != "privacy" {
			t.Fatalf("addresses %q protection %q", cfg.Addresses, cfg.DataTransferProtection)
		}
	})
	t.Run("kerberos", func(t *testing.T) {
		cfg, err := ConfigFromEnv(u, env(map[string]string{
			"MLFLOW_KERBEROS_TICKET_CACHE": "/tmp/krb5cc_ferry", "KRB5_CONFIG": "/etc/ferry-krb5.conf",
			"MLFLOW_PYARROW_EXTRA_CONF": "dfs.namenode.kerberos.principal=nn/_HOST@EXAMPLE.COM",
		}))
		if err != nil {
			t.Fatal(err)
		}
		want := KerberosConfig{TicketCache: "/tmp/krb5cc_ferry", Krb5Conf: "/etc/ferry-krb5.conf", ServicePrincipal: "nn/_HOST"}
		if cfg.Kerberos == nil || *cfg.Kerberos != want {
			t.Fatalf("kerberos %+v; want %+v", cfg.Kerberos, want)
		}
		// hadoop.security.authentication=kerberos alone: the cache comes
		// from KRB5CCNAME, as kinit leaves it.
		dir := writeConf(t, map[string]string{"hadoop.security.authentication": "Kerberos"}, map[string]string{"dfs.namenode.kerberos.principal": "hdfs/_HOST@R"})
		cfg, err = ConfigFromEnv(u, env(map[string]string{"HADOOP_CONF_DIR": dir, "KRB5CCNAME": "FILE:/tmp/cc"}))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Kerberos == nil || cfg.Kerberos.TicketCache != "/tmp/cc" || cfg.Kerberos.Krb5Conf != "/etc/krb5.conf" || cfg.Kerberos.ServicePrincipal != "hdfs/_HOST" {
			t.Fatalf("kerberos %+v", cfg.Kerberos)
		}
		// No namenode principal: refused with the key to set.
		_, err = ConfigFromEnv(u, env(map[string]string{"MLFLOW_KERBEROS_TICKET_CACHE": "/tmp/x"}))
		if err == nil || !strings.Contains(err.Error(), "dfs.namenode.kerberos.principal") {
			t.Fatalf("Kerberos without a principal = %v", err)
		}
		// A ticket cache that is not there fails New, naming the file.
		krb5 := filepath.Join(t.TempDir(), "krb5.conf")
		os.WriteFile(krb5, []byte("[libdefaults]\n default_realm = EXAMPLE.COM\n"), 0o644)
		cfg.Kerberos = &KerberosConfig{TicketCache: filepath.Join(t.TempDir(), "missing"), Krb5Conf: krb5, ServicePrincipal: "nn/_HOST"}
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "ticket cache") {
			t.Fatalf("New with a missing ticket cache = %v", err)
		}
	})
}

// TestOpenByURI goes through the scheme table as the server does.
func TestOpenByURI(t *testing.T) {
	t.Setenv("HADOOP_USER_NAME", "ferry")
	t.Setenv("HADOOP_CONF_DIR", "")
	for _, uri := range []string{"hdfs://127.0.0.1:1/x", "viewfs://c/x"} {
		_, err := stores.Open(t.Context(), uri)
		if strings.HasPrefix(uri, "viewfs") {
			if err == nil || errors.Is(err, stores.ErrUnsupported) {
				t.Errorf("Open(%s) = %v; want the viewfs driver's mount-table error", uri, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Open(%s) = %v; the driver must not connect before the first request", uri, err)
		}
	}
}
